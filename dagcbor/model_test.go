package dagcbor

import (
	"errors"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

const blobLink = "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity" // from the fixtures

func TestParseRecordJSON(t *testing.T) {
	valid := []string{
		`{}`,
		`{"$type":"app.bsky.feed.post","text":"hi","createdAt":"2024-01-01T00:00:00Z"}`,
		`{"a":{"$type":"x","b":[{"$type":"y"}]}}`,
		`{"img":{"$type":"blob","ref":{"$link":"` + blobLink + `"},"mimeType":"image/png","size":0}}`,
		`{"img":{"cid":"` + blobLink + `","mimeType":"image/png"}}`,
		`{"$foo":1,"$bar":{"$baz":null}}`,
		`{"cid":"not a CID","mimeType":"x","other":1}`, // three keys: not a legacy blob
		`{"cid":1}`,
	}
	for _, in := range valid {
		if _, err := ParseRecordJSON([]byte(in)); err != nil {
			t.Errorf("%s: %v", in, err)
		}
	}
	invalid := []struct {
		json string
		rule error
	}{
		{`[]`, ErrDataModel},
		{`"blah"`, ErrDataModel},
		{`null`, ErrDataModel},
		{`{"a":1.5}`, ErrFloat},
		{`{"a":`, ErrInvalidJSON},
		{`{"$type":null}`, ErrDataModel},
		{`{"$type":""}`, ErrDataModel},
		{`{"$type":1}`, ErrDataModel},
		{`{"$type":["x"]}`, ErrDataModel},
		{`{"a":[{"b":{"$type":""}}]}`, ErrDataModel},
		{`{"b":{"$type":"blob","ref":{"$link":"` + blobLink + `"},"mimeType":"image/png","size":-1}}`, ErrDataModel},
		{`{"b":{"$type":"blob","ref":{"$link":"` + blobLink + `"},"mimeType":"","size":1}}`, ErrDataModel},
		{`{"b":{"$type":"blob","ref":{"$link":"` + blobLink + `"},"mimeType":1,"size":1}}`, ErrDataModel},
		{`{"b":{"$type":"blob","ref":"` + blobLink + `","mimeType":"image/png","size":1}}`, ErrDataModel},
		{`{"b":{"$type":"blob","ref":{"$link":"` + blobLink + `"},"mimeType":"image/png","size":1,"x":1}}`, ErrDataModel},
		{`{"b":{"$type":"blob","ref":{"$link":"` + blobLink + `"},"mimeType":"image/png"}}`, ErrDataModel},
		{`{"b":{"$type":"blob","ref":{"$link":"` + blobLink + `"},"size":1,"x":"image/png"}}`, ErrDataModel},
		{`{"b":{"cid":"nope","mimeType":"image/png"}}`, ErrCID},
		{`{"b":{"cid":1,"mimeType":"image/png"}}`, ErrDataModel},
		{`{"b":{"cid":"` + blobLink + `","mimeType":""}}`, ErrDataModel},
		{`{"a":1,"a":2}`, ErrDuplicateKey},
	}
	for _, c := range invalid {
		_, err := ParseRecordJSON([]byte(c.json))
		if !errors.Is(err, c.rule) {
			t.Errorf("%s: %v, want %v", c.json, err, c.rule)
		}
	}
	// Record JSON is limited to MaxRecordJSONLen bytes.
	big := []byte(`{"a":"` + strings.Repeat("x", MaxRecordJSONLen) + `"}`)
	if _, err := ParseRecordJSON(big); !errors.Is(err, ErrDataModel) {
		t.Errorf("oversized record: %v", err)
	}
}

func TestValidateRecordCBORSide(t *testing.T) {
	ref := testutil.MustCID(t, blobLink)
	cases := []struct {
		name string
		rec  map[string]any
		rule error // nil: valid
	}{
		{"empty", map[string]any{}, nil},
		{"nil map", nil, nil},
		{"blob", map[string]any{"b": map[string]any{"$type": "blob", "ref": ref, "mimeType": "a/b", "size": int64(5)}}, nil},
		{"legacy blob", map[string]any{"b": map[string]any{"cid": blobLink, "mimeType": "a/b"}}, nil},
		{"non-blessed link", map[string]any{"l": testutil.MustCID(t, linkV0)}, nil},
		{"$link key", map[string]any{"$link": blobLink}, ErrDataModel},
		{"$bytes key", map[string]any{"x": map[string]any{"$bytes": []byte{}}}, ErrDataModel},
		{"blob size not int64", map[string]any{"b": map[string]any{"$type": "blob", "ref": ref, "mimeType": "a/b", "size": 5}}, ErrDataModel},
		{"blob ref bytes", map[string]any{"b": map[string]any{"$type": "blob", "ref": ref.Bytes(), "mimeType": "a/b", "size": int64(5)}}, ErrDataModel},
		{"blob ref undefined", map[string]any{"b": map[string]any{"$type": "blob", "ref": cid.Undef, "mimeType": "a/b", "size": int64(5)}}, ErrCID},
		{"undefined link", map[string]any{"l": cid.Undef}, ErrCID},
		{"float", map[string]any{"f": 1.0}, ErrDataModel},
		{"int", map[string]any{"i": 1}, ErrDataModel},
		{"typed map", map[string]any{"m": map[string]string{}}, ErrDataModel},
		{"invalid UTF-8 value", map[string]any{"s": "\xff"}, ErrUTF8},
		{"invalid UTF-8 key", map[string]any{"\xff": nil}, ErrUTF8},
		{"key too long", map[string]any{strings.Repeat("k", MaxKeyLen+1): nil}, ErrKeySize},
		{"$type in array", map[string]any{"a": []any{nil, map[string]any{"$type": false}}}, ErrDataModel},
	}
	for _, c := range cases {
		err := ValidateRecord(c.rec)
		if c.rule == nil && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if c.rule != nil && (!errors.Is(err, c.rule) || !errors.Is(err, ErrDataModel)) {
			t.Errorf("%s: %v, want %v", c.name, err, c.rule)
		}
	}
	deep := map[string]any{}
	m := deep
	for range MaxDepth + 1 {
		next := map[string]any{}
		m["a"] = next
		m = next
	}
	if err := ValidateRecord(deep); !errors.Is(err, ErrDepth) {
		t.Errorf("deep record: %v", err)
	}
}

// The error names where in the record the rule broke.
func TestValidateRecordPath(t *testing.T) {
	_, err := ParseRecordJSON([]byte(`{"a":[1,{"b":{"$type":""}}]}`))
	if err == nil || !strings.Contains(err.Error(), "/a/1/b") {
		t.Errorf("error %v does not name /a/1/b", err)
	}
}

func TestUnmarshalRecord(t *testing.T) {
	rec, err := UnmarshalRecord(testutil.Unhex(t, "a2 6161 01 65 2474797065 6178")) // {"$type":"x","a":1}
	if err != nil || rec["$type"] != "x" || rec["a"] != int64(1) {
		t.Errorf("UnmarshalRecord = %v, %v", rec, err)
	}
	for _, c := range []struct {
		hex  string
		rule error
	}{
		{"80", ErrDataModel},                  // array
		{"a1 65 2474797065 60", ErrDataModel}, // $type ""
		{"a1 6161 18 00", ErrNonMinimal},
		{"a1 65 246c696e6b 01", ErrDataModel}, // $link key
	} {
		if _, err := UnmarshalRecord(testutil.Unhex(t, c.hex)); !errors.Is(err, c.rule) {
			t.Errorf("%s: %v, want %v", c.hex, err, c.rule)
		}
	}
	big, _ := Marshal(map[string]any{"a": strings.Repeat("x", MaxRecordCBORLen)})
	if _, err := UnmarshalRecord(big); !errors.Is(err, ErrDataModel) {
		t.Errorf("oversized record: %v", err)
	}
}

func TestParseBlob(t *testing.T) {
	ref := testutil.MustCID(t, blobLink)
	b, err := ParseBlob(map[string]any{"$type": "blob", "ref": ref, "mimeType": "image/png", "size": int64(0)})
	if err != nil || b != (Blob{Ref: ref, MimeType: "image/png", Size: 0}) {
		t.Errorf("ParseBlob = %+v, %v", b, err)
	}
	b, err = ParseBlob(map[string]any{"cid": blobLink, "mimeType": "image/png"})
	if err != nil || b != (Blob{Ref: ref, MimeType: "image/png", Size: -1}) {
		t.Errorf("legacy ParseBlob = %+v, %v", b, err)
	}
	for _, m := range []map[string]any{
		{},
		{"$type": "other", "ref": ref, "mimeType": "image/png", "size": int64(0)},
		{"$type": "blob", "ref": ref, "mimeType": "image/png", "size": "0"},
		{"$type": "blob", "ref": ref, "size": int64(0), "mime": "image/png"},
	} {
		if _, err := ParseBlob(m); !errors.Is(err, ErrDataModel) {
			t.Errorf("ParseBlob(%v) = %v", m, err)
		}
	}
}

func TestRecordBlobs(t *testing.T) {
	img := SumRaw([]byte("image"))
	vid := SumRaw([]byte("video"))
	rec, err := ParseRecordJSON([]byte(`{
		"$type": "app.bsky.feed.post",
		"text": "hi",
		"embed": {"images": [
			{"alt": "a", "image": {"$type": "blob", "ref": {"$link": "` + img.String() + `"}, "mimeType": "image/png", "size": 5}},
			{"alt": "b", "image": {"cid": "` + vid.String() + `", "mimeType": "video/mp4"}}
		]},
		"notABlob": {"$type": "blob", "ref": "a string"}
	}`))
	if err == nil {
		t.Fatal("a malformed blob passed ParseRecordJSON")
	}
	rec, err = ParseRecordJSON([]byte(`{
		"$type": "app.bsky.feed.post",
		"embed": {"images": [
			{"alt": "a", "image": {"$type": "blob", "ref": {"$link": "` + img.String() + `"}, "mimeType": "image/png", "size": 5}},
			{"alt": "b", "image": {"cid": "` + vid.String() + `", "mimeType": "video/mp4"}}
		]}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	got := RecordBlobs(rec)
	if len(got) != 2 || got[0].Ref != img || got[0].Size != 5 || got[1].Ref != vid || got[1].Size != -1 {
		t.Fatalf("blobs %+v", got)
	}
	if n := len(RecordBlobs(map[string]any{"text": "no blobs", "list": []any{int64(1), "x"}})); n != 0 {
		t.Fatalf("%d blobs in a record without any", n)
	}
}
