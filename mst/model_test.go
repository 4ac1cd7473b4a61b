package mst

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand"
	"slices"
	"sort"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

// This file holds the independent expectations the tests compare against: a
// reference construction written straight from the spec's pseudo-code with
// the generic dagcbor encoder, a reachability walk with the generic decoder,
// and generators of realistic keys.

// refHeight is the spec's key height, computed bit by bit.
func refHeight(key string) int {
	d := sha256.Sum256([]byte(key))
	zeros := 0
	for _, b := range d {
		for bit := 7; bit >= 0; bit-- {
			if b>>bit&1 != 0 {
				return zeros / 2
			}
			zeros++
		}
	}
	return zeros / 2
}

// refBuild returns the root CID of the tree holding kv, built recursively
// (sync-spec §4.4 "Deterministic construction"), storing every node in store.
func refBuild(t testing.TB, kv map[string]cid.Cid, store MemBlocks) cid.Cid {
	t.Helper()
	keys := make([]string, 0, len(kv))
	heights := make(map[string]int, len(kv))
	top := 0
	for k := range kv {
		keys = append(keys, k)
		heights[k] = refHeight(k)
		top = max(top, heights[k])
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		return refPut(t, store, map[string]any{"e": []any{}, "l": nil})
	}
	return refBuildLevel(t, keys, kv, heights, top, store)
}

func refBuildLevel(t testing.TB, keys []string, kv map[string]cid.Cid, heights map[string]int, h int, store MemBlocks) cid.Cid {
	var runs [][]string // runs[0] before the first height-h key, runs[i+1] after the i-th
	var here []string
	run := []string{}
	for _, k := range keys {
		if heights[k] == h {
			runs = append(runs, run)
			here = append(here, k)
			run = []string{}
		} else {
			run = append(run, k)
		}
	}
	runs = append(runs, run)
	sub := func(r []string) any {
		if len(r) == 0 {
			return nil
		}
		return refBuildLevel(t, r, kv, heights, h-1, store)
	}
	entries := []any{}
	prev := ""
	for i, k := range here {
		p := 0
		for p < len(prev) && p < len(k) && prev[p] == k[p] {
			p++
		}
		entries = append(entries, map[string]any{
			"k": []byte(k[p:]),
			"p": int64(p),
			"t": sub(runs[i+1]),
			"v": kv[k],
		})
		prev = k
	}
	return refPut(t, store, map[string]any{"e": entries, "l": sub(runs[0])})
}

func refPut(t testing.TB, store MemBlocks, v any) cid.Cid {
	b, err := dagcbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if store == nil {
		return dagcbor.SumCBOR(b)
	}
	return store.Put(b)
}

// reachable returns the CIDs of every node reachable from root in store,
// decoding blocks with the generic decoder.
func reachable(t testing.TB, store MemBlocks, root cid.Cid) map[cid.Cid]bool {
	t.Helper()
	seen := map[cid.Cid]bool{}
	var visit func(c cid.Cid)
	visit = func(c cid.Cid) {
		if seen[c] {
			t.Fatalf("node %s reached twice", c)
		}
		seen[c] = true
		data, ok := store[c]
		if !ok {
			t.Fatalf("node %s missing from store", c)
		}
		v, err := dagcbor.Unmarshal(data)
		if err != nil {
			t.Fatal(err)
		}
		m := v.(map[string]any)
		if l, ok := m["l"].(cid.Cid); ok {
			visit(l)
		}
		for _, e := range m["e"].([]any) {
			if r, ok := e.(map[string]any)["t"].(cid.Cid); ok {
				visit(r)
			}
		}
	}
	visit(root)
	return seen
}

// collect stores every block fn is given into a MemBlocks, checking that
// each block's CID is right and that none comes twice.
func collect(t testing.TB, into MemBlocks) func(c cid.Cid, data []byte) error {
	return func(c cid.Cid, data []byte) error {
		t.Helper()
		if got := dagcbor.SumCBOR(data); got != c {
			t.Fatalf("block given as %s hashes to %s", c, got)
		}
		into[c] = slices.Clone(data)
		return nil
	}
}

const base32Sortable = "234567abcdefghijklmnopqrstuvwxyz"

// randTID returns a TID-shaped record key near the present.
func randTID(r *rand.Rand) string {
	v := uint64(1_700_000_000_000_000+r.Int63n(100_000_000_000_000))<<10 | uint64(r.Intn(1024))
	var b [13]byte
	for i := 12; i >= 0; i-- {
		b[i] = base32Sortable[v&31]
		v >>= 5
	}
	return string(b[:])
}

var collections = []string{"app.bsky.feed.post", "app.bsky.feed.like", "app.bsky.graph.follow", "com.example.record"}

// randKey returns a repo path: a collection and a TID, or sometimes a short
// random record key from the whole allowed alphabet.
func randKey(r *rand.Rand) string {
	coll := collections[r.Intn(len(collections))]
	if r.Intn(4) > 0 {
		return coll + "/" + randTID(r)
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._~:-"
	n := 1 + r.Intn(12)
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.Intn(len(alphabet))]
	}
	return coll + "/" + string(b)
}

// randValue returns a distinct-looking record CID.
func randValue(r *rand.Rand) cid.Cid {
	var b [8]byte
	r.Read(b[:])
	return dagcbor.SumCBOR(b[:])
}

func randKeySet(r *rand.Rand, n int) map[string]cid.Cid {
	kv := make(map[string]cid.Cid, n)
	for len(kv) < n {
		kv[randKey(r)] = randValue(r)
	}
	return kv
}

func sortedCopy(keys []string) []string {
	s := slices.Clone(keys)
	sort.Strings(s)
	return s
}

func sortedKeys(kv map[string]cid.Cid) []string {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// treeContents returns everything Walk yields, checking the order.
func treeContents(t testing.TB, tree *Tree) map[string]cid.Cid {
	t.Helper()
	got := map[string]cid.Cid{}
	var prev []byte
	err := tree.Walk(nil, func(k []byte, v cid.Cid) error {
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			return fmt.Errorf("walk out of order: %q after %q", k, prev)
		}
		prev = slices.Clone(k)
		got[string(k)] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func mustRoot(t testing.TB, tree *Tree) cid.Cid {
	t.Helper()
	c, err := tree.Root()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// storeTree writes every node of a fully in-memory tree into a new MemBlocks.
func storeTree(t testing.TB, tree *Tree) MemBlocks {
	t.Helper()
	store := MemBlocks{}
	if err := tree.NewBlocks(collect(t, store)); err != nil {
		t.Fatal(err)
	}
	return store
}

func TestRefHeightMatches(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 2000; i++ {
		k := randKey(r)
		if HeightForKey([]byte(k)) != refHeight(k) {
			t.Fatalf("height mismatch for %q", k)
		}
	}
}

// refCoveringProof is the reference implementation's getCoveringProof
// (proofForKey ∪ proofForLeftSib ∪ proofForRightSib), transcribed over nodes
// decoded with the generic decoder and viewed, as the reference does, as a
// flat list of subtrees and leaves.
func refCoveringProof(t testing.TB, store MemBlocks, root cid.Cid, key string) map[cid.Cid]bool {
	t.Helper()
	type item struct {
		tree cid.Cid // defined for a subtree
		key  string  // for a leaf
	}
	flat := func(c cid.Cid) []item {
		v, err := dagcbor.Unmarshal(store[c])
		if err != nil {
			t.Fatal(err)
		}
		m := v.(map[string]any)
		var out []item
		if l, ok := m["l"].(cid.Cid); ok {
			out = append(out, item{tree: l})
		}
		prev := ""
		for _, e := range m["e"].([]any) {
			em := e.(map[string]any)
			k := prev[:em["p"].(int64)] + string(em["k"].([]byte))
			out = append(out, item{key: k})
			if r, ok := em["t"].(cid.Cid); ok {
				out = append(out, item{tree: r})
			}
			prev = k
		}
		return out
	}
	gteIndex := func(f []item, key string) int {
		for i, it := range f {
			if !it.tree.Defined() && it.key >= key {
				return i
			}
		}
		return len(f)
	}
	at := func(f []item, i int) *item {
		if i < 0 || i >= len(f) {
			return nil
		}
		return &f[i]
	}
	out := map[cid.Cid]bool{}
	var forKey, leftSib, rightSib func(c cid.Cid) bool
	forKey = func(c cid.Cid) bool {
		f := flat(c)
		i := gteIndex(f, key)
		if found := at(f, i); !(found != nil && !found.tree.Defined() && found.key == key) {
			prev := at(f, i-1)
			if prev == nil || !prev.tree.Defined() {
				return false
			}
			forKey(prev.tree)
		}
		out[c] = true
		return true
	}
	leftSib = func(c cid.Cid) bool {
		f := flat(c)
		if prev := at(f, gteIndex(f, key)-1); prev != nil && prev.tree.Defined() {
			leftSib(prev.tree)
		}
		out[c] = true
		return true
	}
	rightSib = func(c cid.Cid) bool {
		f := flat(c)
		i := gteIndex(f, key)
		found := at(f, i)
		if found == nil {
			found = at(f, i-1)
		}
		if found != nil {
			if found.tree.Defined() {
				rightSib(found.tree)
			} else {
				next := at(f, i-1)
				if found.key == key {
					next = at(f, i+1)
				}
				if next != nil && next.tree.Defined() {
					rightSib(next.tree)
				}
			}
		}
		out[c] = true
		return true
	}
	forKey(root)
	leftSib(root)
	rightSib(root)
	return out
}
