package mst

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

// Keys from the interop example set, with the heights their second
// character states.
const (
	keyA0 = "A0/374913"
	keyC0 = "C0/451630"
	keyB1 = "B1/986427"
	keyD2 = "D2/269196"
)

func marshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := dagcbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nodeMap builds a node in the generic model; entries are full keys with
// correct prefix compression, each with its right link.
func nodeMap(left any, keys []string, rights []any) map[string]any {
	entries := []any{}
	prev := ""
	for i, k := range keys {
		p := CountPrefixLen([]byte(prev), []byte(k))
		var tt any
		if rights != nil {
			tt = rights[i]
		}
		entries = append(entries, map[string]any{"k": []byte(k[p:]), "p": int64(p), "t": tt, "v": testValue()})
		prev = k
	}
	return map[string]any{"e": entries, "l": left}
}

func entryMap(k string, p int64) map[string]any {
	return map[string]any{"k": []byte(k), "p": p, "t": nil, "v": testValue()}
}

// invalidNodes are blocks that must never decode as a root.
func invalidNodes(t testing.TB) map[string][]byte {
	leafChild := dagcbor.SumCBOR(marshal(t, nodeMap(nil, []string{keyA0}, nil)))
	valid := marshal(t, nodeMap(nil, []string{keyA0}, nil))
	// Two height-0 keys that share a prefix.
	var shared []string
	for i := 0; len(shared) < 2; i++ {
		k := "com.example.record/" + strings.Repeat("k", i%7+1) + string(rune('a'+i%26))
		if HeightForKey([]byte(k)) == 0 && (len(shared) == 0 || k > shared[0]) {
			shared = append(shared, k)
		}
	}
	noT := entryMap(keyA0, 0)
	delete(noT, "t")
	extraEntryKey := entryMap(keyA0, 0)
	extraEntryKey["x"] = int64(1)
	nullV := entryMap(keyA0, 0)
	nullV["v"] = nil
	textK := entryMap(keyA0, 0)
	textK["k"] = keyA0
	return map[string][]byte{
		"missing t":              marshal(t, map[string]any{"e": []any{noT}, "l": nil}),
		"extra key in entry":     marshal(t, map[string]any{"e": []any{extraEntryKey}, "l": nil}),
		"extra key in node":      marshal(t, map[string]any{"e": []any{}, "l": nil, "x": nil}),
		"missing l":              marshal(t, map[string]any{"e": []any{}}),
		"wrong key order":        {0xa2, 0x61, 'l', 0xf6, 0x61, 'e', 0x80},
		"p too large":            marshal(t, map[string]any{"e": []any{entryMap(keyA0, 3)}, "l": nil}),
		"p too large later":      marshal(t, map[string]any{"e": []any{entryMap(keyA0, 0), entryMap("x", 10)}, "l": nil}),
		"prefix not compressed":  marshal(t, map[string]any{"e": []any{entryMap(shared[0], 0), entryMap(shared[1], 0)}, "l": nil}),
		"empty key":              marshal(t, map[string]any{"e": []any{entryMap("", 0)}, "l": nil}),
		"key too long":           marshal(t, map[string]any{"e": []any{entryMap(strings.Repeat("k", MaxKeyLen+1), 0)}, "l": nil}),
		"null value":             marshal(t, map[string]any{"e": []any{nullV}, "l": nil}),
		"text key":               marshal(t, map[string]any{"e": []any{textK}, "l": nil}),
		"raw-codec child link":   marshal(t, nodeMap(dagcbor.SumRaw([]byte("x")), []string{keyB1}, nil)),
		"raw-codec right link":   marshal(t, nodeMap(nil, []string{keyB1}, []any{dagcbor.SumRaw([]byte("x"))})),
		"unsorted keys":          marshal(t, nodeMap(nil, []string{keyC0, keyA0}, nil)),
		"duplicate keys":         marshal(t, map[string]any{"e": []any{entryMap(keyA0, 0), entryMap("", int64(len(keyA0)))}, "l": nil}),
		"mixed heights":          marshal(t, nodeMap(nil, []string{keyA0, keyB1}, nil)),
		"height 0 with child":    marshal(t, nodeMap(leafChild, []string{keyA0}, nil)),
		"untrimmed root":         marshal(t, nodeMap(leafChild, nil, nil)),
		"entries not an array":   marshal(t, map[string]any{"e": map[string]any{}, "l": nil}),
		"trailing byte":          append(bytes.Clone(valid), 0x00),
		"non-minimal p":          bytes.Replace(valid, []byte{0x61, 'p', 0x00}, []byte{0x61, 'p', 0x18, 0x00}, 1),
		"not a map":              {0x80},
		"truncated":              valid[:len(valid)-3],
		"indefinite entry array": {0xa2, 0x61, 'e', 0x9f, 0xff, 0x61, 'l', 0xf6},
	}
}

func TestStrictNodeDecoding(t *testing.T) {
	for name, data := range invalidNodes(t) {
		c := dagcbor.SumCBOR(data)
		if _, err := Load(MemBlocks{c: data}, c); !errors.Is(err, ErrInvalidNode) {
			t.Errorf("%s: Load = %v, want ErrInvalidNode", name, err)
		}
	}
	// Rules of the underlying codec stay visible.
	data := invalidNodes(t)["trailing byte"]
	c := dagcbor.SumCBOR(data)
	if _, err := Load(MemBlocks{c: data}, c); !errors.Is(err, dagcbor.ErrTrailing) {
		t.Errorf("trailing byte: %v, want dagcbor.ErrTrailing too", err)
	}
}

// TestInvalidChildren: nodes that are only wrong in their place in the tree
// are caught when an operation (or Verify) reaches them.
func TestInvalidChildren(t *testing.T) {
	cases := map[string]func(store MemBlocks) any{
		"empty node below the root": func(s MemBlocks) any {
			return nodeMap(s.Put(marshal(t, nodeMap(nil, nil, nil))), []string{keyB1}, nil)
		},
		"skipped level": func(s MemBlocks) any {
			return nodeMap(s.Put(marshal(t, nodeMap(nil, []string{keyA0}, nil))), []string{keyD2}, nil)
		},
		"child too high": func(s MemBlocks) any {
			return nodeMap(nil, []string{keyB1}, []any{s.Put(marshal(t, nodeMap(nil, []string{keyD2}, nil)))})
		},
		"key on the wrong side": func(s MemBlocks) any {
			return nodeMap(nil, []string{keyB1}, []any{s.Put(marshal(t, nodeMap(nil, []string{keyA0}, nil)))})
		},
	}
	for name, build := range cases {
		store := MemBlocks{}
		root := store.Put(marshal(t, build(store)))
		tree, err := Load(store, root)
		if err != nil {
			t.Fatalf("%s: the root alone is valid, Load = %v", name, err)
		}
		if err := tree.Verify(); !errors.Is(err, ErrInvalidNode) {
			t.Errorf("%s: Verify = %v, want ErrInvalidNode", name, err)
		}
	}
	// Operations that descend into a bad child fail too.
	store := MemBlocks{}
	root := store.Put(marshal(t, cases["skipped level"](store)))
	tree, _ := Load(store, root)
	if _, err := tree.Get([]byte(keyA0)); !errors.Is(err, ErrInvalidNode) {
		t.Errorf("Get through a skipped level: %v, want ErrInvalidNode", err)
	}
	if _, err := tree.Insert([]byte(keyC0), testValue()); !errors.Is(err, ErrInvalidNode) {
		t.Errorf("Insert through a skipped level: %v, want ErrInvalidNode", err)
	}
}

// TestNodeEncodingRoundTrip: every node of random trees decodes and encodes
// back to the same bytes.
func TestNodeEncodingRoundTrip(t *testing.T) {
	for _, v := range validNodes(t) {
		data := v.data
		c := dagcbor.SumCBOR(data)
		n, err := decodeNode(data, v.height, c)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendNode(nil, n.entries, n.kids); !bytes.Equal(got, data) {
			t.Fatalf("re-encoding differs:\n%x\n%x", got, data)
		}
	}
}

type heightBlock struct {
	data   []byte
	height int // rootHeight for roots
}

// validNodes returns the blocks of a few small trees, roots and inner nodes,
// with the height each is decoded at.
func validNodes(t testing.TB) []heightBlock {
	var out []heightBlock
	for _, keys := range [][]string{nil, {keyA0}, {keyA0, keyC0, keyB1, keyD2}, {keyA0, keyD2}, {keyD2, keyB1}} {
		kv := map[string]cid.Cid{}
		top := 0
		for _, k := range keys {
			kv[k] = testValue()
			top = max(top, refHeight(k))
		}
		store := MemBlocks{}
		root := refBuild(t, kv, store)
		var visit func(c cid.Cid, h int)
		visit = func(c cid.Cid, h int) {
			at := h
			if c == root {
				at = rootHeight
			}
			out = append(out, heightBlock{store[c], at})
			v, _ := dagcbor.Unmarshal(store[c])
			m := v.(map[string]any)
			if l, ok := m["l"].(cid.Cid); ok {
				visit(l, h-1)
			}
			for _, e := range m["e"].([]any) {
				if r, ok := e.(map[string]any)["t"].(cid.Cid); ok {
					visit(r, h-1)
				}
			}
		}
		visit(root, top)
	}
	return out
}
