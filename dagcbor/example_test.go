package dagcbor_test

import (
	"errors"
	"fmt"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

// A record's JSON form becomes its canonical CBOR block and CID.
func ExampleFromJSON() {
	v, err := dagcbor.FromJSON([]byte(`{"text": "hi", "$type": "app.bsky.feed.post", "n": 1.0}`))
	if err != nil {
		panic(err)
	}
	block, err := dagcbor.Marshal(v)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%x\n", block)
	fmt.Println(dagcbor.SumCBOR(block))
	// Output:
	// a3616e016474657874626869652474797065726170702e62736b792e666565642e706f7374
	// bafyreiawpeiwkj3d2pgoavmizeya2j2ccby6o4gphvsysdet3oiqgkucl4
}

// The strict decoder names the rule an input breaks.
func ExampleUnmarshal() {
	_, err := dagcbor.Unmarshal([]byte{0xa2, 0x61, 'b', 0x01, 0x61, 'a', 0x02}) // {"b":1,"a":2}
	fmt.Println(errors.Is(err, dagcbor.ErrKeyOrder))
	fmt.Println(err)
	// Output:
	// true
	// dagcbor: map keys not in canonical order (length first, then bytes) at offset 4: a
}

// Links and bytes take their $link and $bytes forms in JSON.
func ExampleToJSON() {
	node := map[string]any{"e": []any{}, "l": nil, "k": []byte("app.bsky.feed.post/3l")}
	js, err := dagcbor.ToJSON(node)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(js))
	block, _ := dagcbor.Marshal(map[string]any{"e": []any{}, "l": nil})
	js, _ = dagcbor.ToJSON(map[string]any{"root": dagcbor.SumCBOR(block)})
	fmt.Println(string(js))
	// Output:
	// {"e":[],"k":{"$bytes":"YXBwLmJza3kuZmVlZC5wb3N0LzNs"},"l":null}
	// {"root":{"$link":"bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"}}
}

// Records are checked against the data-model rules.
func ExampleParseRecordJSON() {
	_, err := dagcbor.ParseRecordJSON([]byte(`{"$type": "com.example.x", "img": {"$type": "blob", "mimeType": "image/png", "size": 10}}`))
	fmt.Println(err)
	// Output:
	// dagcbor: record: at /img: not in the atproto data model: blob: 3 keys, want $type, ref, mimeType, size
}
