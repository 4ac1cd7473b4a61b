package dagcbor

import (
	"fmt"
	"testing"

	"github.com/ipfs/go-cid"
)

// samplePostJSON is a typical app.bsky.feed.post reply with a hashtag facet
// (strongRef CIDs are strings in the lexicon): 554 bytes of CBOR, most of
// them the two reply refs.
var samplePostJSON = []byte(`{
  "$type": "app.bsky.feed.post",
  "text": "Reading the #sync spec again. MST heights are neat.",
  "createdAt": "2024-11-25T18:04:12.345Z",
  "langs": ["en"],
  "reply": {
    "root": {
      "cid": "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a",
      "uri": "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3lbqta5lnck2i"
    },
    "parent": {
      "cid": "bafyreiclp443lavogvhj3d2ob2cxbfuscni2k5jk7bebjzg7khl3esabwq",
      "uri": "at://did:plc:ewvi7nxzyoun6zhxrhs64oiz/app.bsky.feed.post/3lbqtb2jv4s2n"
    }
  },
  "facets": [{
    "$type": "app.bsky.richtext.facet",
    "index": {"byteStart": 12, "byteEnd": 17},
    "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "sync"}]
  }]
}`)

func samplePost(tb testing.TB) map[string]any {
	v, err := ParseRecordJSON(samplePostJSON)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func samplePostCBOR(tb testing.TB) []byte {
	b, err := Marshal(samplePost(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// sampleMSTNode is a typical MST node: a left link and four entries with
// prefix-compressed keys, record links and two subtree links, written with
// the Append* functions the way the mst package does.
func sampleMSTNode(tb testing.TB) []byte {
	link := func(i int) cid.Cid { return SumCBOR([]byte(fmt.Sprint(i))) }
	keys := []string{
		"app.bsky.feed.like/3lbqsz6n4ak2a",
		"app.bsky.feed.post/3lbqta5lnck2i",
		"app.bsky.feed.post/3lbqtb2jv4s2n",
		"app.bsky.graph.follow/3lbqtc7xyzk2c",
	}
	b := AppendMapHeader(nil, 2)
	b = AppendText(b, "e")
	b = AppendArrayHeader(b, len(keys))
	prev := ""
	for i, k := range keys {
		p := 0
		for p < len(prev) && p < len(k) && prev[p] == k[p] {
			p++
		}
		b = AppendMapHeader(b, 4)
		b = AppendBytes(AppendText(b, "k"), []byte(k[p:]))
		b = AppendUint(AppendText(b, "p"), uint64(p))
		t := cid.Undef
		if i%2 == 1 {
			t = link(100 + i)
		}
		b = AppendNullableCID(AppendText(b, "t"), t)
		b = AppendCID(AppendText(b, "v"), link(i))
		prev = k
	}
	b = AppendCID(AppendText(b, "l"), link(99))
	if _, err := Unmarshal(b); err != nil {
		tb.Fatalf("sample MST node: %v", err)
	}
	return b
}

func benchInputs(b *testing.B) map[string][]byte {
	return map[string][]byte{"post": samplePostCBOR(b), "mst-node": sampleMSTNode(b)}
}

func BenchmarkUnmarshal(b *testing.B) {
	for name, data := range benchInputs(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := Unmarshal(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkValidate(b *testing.B) {
	for name, data := range benchInputs(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if err := Validate(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkMarshal(b *testing.B) {
	for name, data := range benchInputs(b) {
		v, err := Unmarshal(data)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			buf := make([]byte, 0, len(data))
			for b.Loop() {
				if buf, err = Append(buf[:0], v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFromJSON compares FromJSON with the encoding/json-based reference
// reader (json.Decoder with UseNumber into any, then conversion), the
// approach FromJSON was measured against before it was hand-written.
func BenchmarkFromJSON(b *testing.B) {
	data := samplePostJSON
	b.Run("post", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := FromJSON(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("post/encoding-json-reference", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := refFromJSON(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	node, err := Unmarshal(sampleMSTNode(b))
	if err != nil {
		b.Fatal(err)
	}
	nodeJSON, err := ToJSON(node)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("mst-node", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(nodeJSON)))
		for b.Loop() {
			if _, err := FromJSON(nodeJSON); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkToJSON(b *testing.B) {
	for name, data := range benchInputs(b) {
		v, err := Unmarshal(data)
		if err != nil {
			b.Fatal(err)
		}
		js, err := ToJSON(v)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(js)))
			for b.Loop() {
				if _, err := ToJSON(v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestSampleSizes(t *testing.T) {
	post, node := samplePostCBOR(t), sampleMSTNode(t)
	t.Logf("post %d bytes, MST node %d bytes", len(post), len(node))
	if len(post) < 300 || len(post) > 700 || len(node) < 200 || len(node) > 600 {
		t.Errorf("samples are not typical sizes: post %d, node %d bytes", len(post), len(node))
	}
}
