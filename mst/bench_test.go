package mst

import (
	"math/rand"
	"runtime"
	"slices"
	"sort"
	"testing"

	"github.com/ipfs/go-cid"
)

// benchKeys returns n distinct random TID keys under app.bsky.feed.post/.
func benchKeys(n int, seed int64) [][]byte {
	r := rand.New(rand.NewSource(seed))
	seen := make(map[string]bool, n)
	keys := make([][]byte, 0, n)
	for len(keys) < n {
		k := "app.bsky.feed.post/" + randTID(r)
		if !seen[k] {
			seen[k] = true
			keys = append(keys, []byte(k))
		}
	}
	return keys
}

// benchStore builds a tree of the keys into a MemBlocks and returns its root.
func benchStore(b *testing.B, keys [][]byte, val cid.Cid) (MemBlocks, cid.Cid) {
	b.Helper()
	sorted := slices.Clone(keys)
	sort.Slice(sorted, func(i, j int) bool { return string(sorted[i]) < string(sorted[j]) })
	store := MemBlocks{}
	bl := NewBuilder(func(c cid.Cid, data []byte) error { store[c] = slices.Clone(data); return nil })
	for _, k := range sorted {
		if err := bl.Add(k, val); err != nil {
			b.Fatal(err)
		}
	}
	root, err := bl.Finish()
	if err != nil {
		b.Fatal(err)
	}
	return store, root
}

func benchInsert(b *testing.B, n int) {
	keys := benchKeys(n, 1)
	val := testValue()
	b.ReportAllocs()
	for b.Loop() {
		tree := NewEmpty(nil)
		for _, k := range keys {
			if _, err := tree.Insert(k, val); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := tree.Root(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/key")
}

// BenchmarkInsert100k inserts 100k random TID keys into an empty tree, then
// computes the root once.
func BenchmarkInsert100k(b *testing.B) { benchInsert(b, 100_000) }

// BenchmarkInsert1M is the same with a million keys.
func BenchmarkInsert1M(b *testing.B) { benchInsert(b, 1_000_000) }

// BenchmarkBuilder1M streams a million sorted keys through the Builder,
// generating them on the fly so the heap holds only the Builder's state;
// peak-live-B is the largest live heap (after a GC) seen during the build,
// above the live heap at the start.
func BenchmarkBuilder1M(b *testing.B) {
	const n = 1_000_000
	val := testValue()
	var emitted int64
	var peak uint64
	var ms runtime.MemStats
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		base := ms.HeapAlloc
		b.StartTimer()
		r := rand.New(rand.NewSource(1))
		bl := NewBuilder(func(_ cid.Cid, data []byte) error { emitted += int64(len(data)); return nil })
		key := []byte("app.bsky.feed.post/")
		prefix := len(key)
		tid := uint64(1_700_000_000_000_000) << 10
		for i := 0; i < n; i++ {
			tid += 1 + uint64(r.Intn(1<<20))
			key = appendTID(key[:prefix], tid)
			if err := bl.Add(key, val); err != nil {
				b.Fatal(err)
			}
			if i%(n/16) == 0 {
				b.StopTimer()
				runtime.GC()
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc-min(base, ms.HeapAlloc))
				b.StartTimer()
			}
		}
		if _, err := bl.Finish(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(peak), "peak-live-B")
	b.SetBytes(emitted / int64(b.N))
}

func appendTID(b []byte, v uint64) []byte {
	var t [13]byte
	for i := 12; i >= 0; i-- {
		t[i] = base32Sortable[v&31]
		v >>= 5
	}
	return append(b, t[:]...)
}

// BenchmarkDiff100k diffs two 100k-key trees, lazy over a MemBlocks, that
// differ in 1% of their keys (updates, creates and deletes).
func BenchmarkDiff100k(b *testing.B) {
	keys := benchKeys(100_000, 2)
	val := testValue()
	store, rootA := benchStore(b, keys, val)
	tree, _ := Load(store, rootA)
	r := rand.New(rand.NewSource(3))
	for i := 0; i < 1000; i++ {
		var err error
		switch i % 3 {
		case 0:
			_, err = tree.Insert(keys[r.Intn(len(keys))], randValue(r))
		case 1:
			_, err = tree.Insert([]byte("app.bsky.feed.post/"+randTID(r)), val)
		default:
			_, err = tree.Delete(keys[r.Intn(len(keys))])
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	rootB := mustRoot(b, tree)
	if err := tree.NewBlocks(func(c cid.Cid, data []byte) error { store[c] = data; return nil }); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var ops int
	for b.Loop() {
		ta, _ := Load(store, rootA)
		tb, _ := Load(store, rootB)
		d, err := Diff(ta, tb)
		if err != nil {
			b.Fatal(err)
		}
		ops = len(d.Ops)
	}
	b.ReportMetric(float64(ops), "ops")
}

// BenchmarkProof100k computes the covering proof of one key of a 100k-key
// tree already in memory (a different key each time).
func BenchmarkProof100k(b *testing.B) {
	keys := benchKeys(100_000, 4)
	store, root := benchStore(b, keys, testValue())
	tree, _ := Load(store, root)
	if err := tree.Verify(); err != nil { // loads every node
		b.Fatal(err)
	}
	b.ReportAllocs()
	i, blocks := 0, 0
	for b.Loop() {
		err := tree.Proof(keys[i%len(keys)], func(cid.Cid, []byte) error { blocks++; return nil })
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(blocks)/float64(i), "blocks/proof")
}

// BenchmarkGet100k looks up keys of a 100k-key tree loaded from a
// MemBlocks: warm once every node has been read, cold from a fresh Load.
func BenchmarkGet100k(b *testing.B) {
	keys := benchKeys(100_000, 5)
	val := testValue()
	store, root := benchStore(b, keys, val)
	b.Run("warm", func(b *testing.B) {
		tree, _ := Load(store, root)
		for _, k := range keys {
			tree.Get(k)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if v, err := tree.Get(keys[i%len(keys)]); err != nil || v != val {
				b.Fatal(v, err)
			}
			i++
		}
	})
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			tree, _ := Load(store, root)
			if v, err := tree.Get(keys[i%len(keys)]); err != nil || v != val {
				b.Fatal(v, err)
			}
			i++
		}
	})
}
