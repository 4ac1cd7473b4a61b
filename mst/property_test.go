package mst

import (
	"bytes"
	"errors"
	"maps"
	"math/rand"
	"slices"
	"sort"
	"testing"

	"github.com/ipfs/go-cid"
)

var seeds = []int64{1, 2, 3, 42, 20240607}

// TestShapeIndependentOfOrder: inserting in random order, inserting in
// sorted order and streaming through the Builder all give the reference
// construction's root and exactly its nodes.
func TestShapeIndependentOfOrder(t *testing.T) {
	sizes := []int{0, 1, 2, 3, 5, 10, 40, 200, 1000, 2000}
	for _, seed := range seeds {
		r := rand.New(rand.NewSource(seed))
		for _, size := range sizes {
			if testing.Short() && size > 200 {
				continue
			}
			kv := randKeySet(r, size)
			refStore := MemBlocks{}
			want := refBuild(t, kv, refStore)
			wantNodes := reachable(t, refStore, want)
			keys := sortedKeys(kv)

			shuffled := slices.Clone(keys)
			r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			for name, order := range map[string][]string{"random": shuffled, "sorted": keys} {
				tree := NewEmpty(nil)
				for _, k := range order {
					if prev, err := tree.Insert([]byte(k), kv[k]); err != nil || prev.Defined() {
						t.Fatalf("seed %d size %d: insert %q: %s, %v", seed, size, k, prev, err)
					}
				}
				if got := mustRoot(t, tree); got != want {
					t.Fatalf("seed %d size %d %s order: root %s, want %s", seed, size, name, got, want)
				}
				if err := tree.Verify(); err != nil {
					t.Fatal(err)
				}
				if got := storeTree(t, tree); !sameSet(keysOf(got), wantNodes) {
					t.Fatalf("seed %d size %d: NewBlocks of a new tree is not exactly its nodes", seed, size)
				}
			}

			built := MemBlocks{}
			b := NewBuilder(collect(t, built))
			for _, k := range keys {
				if err := b.Add([]byte(k), kv[k]); err != nil {
					t.Fatal(err)
				}
			}
			got, err := b.Finish()
			if err != nil || got != want {
				t.Fatalf("seed %d size %d: Builder root %s, %v; want %s", seed, size, got, err, want)
			}
			if !sameSet(keysOf(built), wantNodes) {
				t.Fatalf("seed %d size %d: Builder emitted %d nodes, tree has %d", seed, size, len(built), len(wantNodes))
			}
		}
	}
}

func keysOf(m MemBlocks) map[cid.Cid]bool {
	out := make(map[cid.Cid]bool, len(m))
	for c := range m {
		out[c] = true
	}
	return out
}

func sameSet(a, b map[cid.Cid]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for c := range a {
		if !b[c] {
			return false
		}
	}
	return true
}

// TestRandomOpsAgainstModel runs random inserts, updates, deletes and gets on
// a tree loaded lazily from a store, checking every result against a map,
// and the root against the reference construction of the map.
func TestRandomOpsAgainstModel(t *testing.T) {
	for _, seed := range seeds {
		r := rand.New(rand.NewSource(seed))
		model := randKeySet(r, r.Intn(600))
		store := MemBlocks{}
		root := refBuild(t, model, store)
		tree, err := Load(store, root)
		if err != nil {
			t.Fatal(err)
		}
		keys := sortedKeys(model)
		for step := 0; step < 1500; step++ {
			switch op := r.Intn(10); {
			case op < 3 || len(model) == 0: // create
				k, v := randKey(r), randValue(r)
				prev, err := tree.Insert([]byte(k), v)
				if err != nil || prev != model[k] {
					t.Fatalf("seed %d step %d: insert %q: prev %s, %v; want %s", seed, step, k, prev, err, model[k])
				}
				if _, ok := model[k]; !ok {
					keys = append(keys, k)
				}
				model[k] = v
			case op < 5: // update
				k, v := keys[r.Intn(len(keys))], randValue(r)
				if prev, err := tree.Insert([]byte(k), v); err != nil || prev != model[k] {
					t.Fatalf("seed %d step %d: update %q: prev %s, %v; want %s", seed, step, k, prev, err, model[k])
				}
				model[k] = v
			case op < 8: // delete, usually of a present key
				k := randKey(r)
				if r.Intn(4) > 0 {
					k = keys[r.Intn(len(keys))]
				}
				prev, err := tree.Delete([]byte(k))
				if err != nil || prev != model[k] {
					t.Fatalf("seed %d step %d: delete %q: prev %s, %v; want %s", seed, step, k, prev, err, model[k])
				}
				if _, ok := model[k]; ok {
					delete(model, k)
					i := slices.Index(keys, k)
					keys = slices.Delete(keys, i, i+1)
				}
			default: // get, present or absent
				k := randKey(r)
				if len(keys) > 0 && r.Intn(2) == 0 {
					k = keys[r.Intn(len(keys))]
				}
				if got, err := tree.Get([]byte(k)); err != nil || got != model[k] {
					t.Fatalf("seed %d step %d: get %q = %s, %v; want %s", seed, step, k, got, err, model[k])
				}
			}
			if step%250 == 249 {
				if got, want := mustRoot(t, tree), refBuild(t, model, nil); got != want {
					t.Fatalf("seed %d step %d: root %s, want %s", seed, step, got, want)
				}
			}
		}
		if err := tree.Verify(); err != nil {
			t.Fatal(err)
		}
		if got := treeContents(t, tree); !sameContents(got, model) {
			t.Fatalf("seed %d: walk does not match the model", seed)
		}
		// NewBlocks holds exactly the nodes of the new tree the store lacks
		// (ignoring nodes whose content came back to an old block).
		final := mustRoot(t, tree)
		added := MemBlocks{}
		if err := tree.NewBlocks(collect(t, added)); err != nil {
			t.Fatal(err)
		}
		both := MemBlocks{}
		for _, m := range []MemBlocks{store, added} {
			for c, b := range m {
				both[c] = b
			}
		}
		nodes := reachable(t, both, final)
		for c := range nodes {
			if _, old := store[c]; !old {
				if _, ok := added[c]; !ok {
					t.Fatalf("seed %d: new node %s missing from NewBlocks", seed, c)
				}
			}
		}
		for c := range added {
			if !nodes[c] {
				t.Fatalf("seed %d: NewBlocks gave %s, not reachable from the root", seed, c)
			}
		}
	}
}

func sameContents(a, b map[string]cid.Cid) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// commitOp is one record change of a random commit.
type commitOp struct {
	key      string
	old, new cid.Cid
}

// randCommit picks n ops on distinct keys: creates, updates and deletes.
func randCommit(r *rand.Rand, model map[string]cid.Cid, keys []string, n int) []commitOp {
	used := map[string]bool{}
	var ops []commitOp
	for len(ops) < n {
		var k string
		if len(keys) > 0 && r.Intn(3) > 0 {
			k = keys[r.Intn(len(keys))]
		} else {
			k = randKey(r)
		}
		if used[k] {
			continue
		}
		used[k] = true
		op := commitOp{key: k, old: model[k]}
		if !op.old.Defined() || r.Intn(2) == 0 {
			op.new = randValue(r)
		}
		ops = append(ops, op)
	}
	return ops
}

// TestInversionOfRandomCommits: the blocks a commit carries (NewBlocks plus
// the covering proof of each op key) are enough to invert its ops, in any
// order, back to the previous root, on a partial tree.
func TestInversionOfRandomCommits(t *testing.T) {
	for _, seed := range seeds {
		r := rand.New(rand.NewSource(seed))
		for round := 0; round < 40; round++ {
			model := randKeySet(r, r.Intn(1500))
			store := MemBlocks{}
			before := refBuild(t, model, store)
			tree, err := Load(store, before)
			if err != nil {
				t.Fatal(err)
			}
			ops := randCommit(r, model, sortedKeys(model), 1+r.Intn(12))
			after := map[string]cid.Cid{}
			for k, v := range model {
				after[k] = v
			}
			for _, op := range ops {
				var prev cid.Cid
				if op.new.Defined() {
					prev, err = tree.Insert([]byte(op.key), op.new)
					after[op.key] = op.new
				} else {
					prev, err = tree.Delete([]byte(op.key))
					delete(after, op.key)
				}
				if err != nil || prev != op.old {
					t.Fatalf("applying %v: prev %s, %v", op, prev, err)
				}
			}
			afterRoot := mustRoot(t, tree)
			if want := refBuild(t, after, nil); afterRoot != want {
				t.Fatalf("seed %d round %d: root after commit %s, want %s", seed, round, afterRoot, want)
			}
			blocks := MemBlocks{}
			if err := tree.NewBlocks(collect(t, blocks)); err != nil {
				t.Fatal(err)
			}
			for _, op := range ops {
				if err := tree.Proof([]byte(op.key), collect(t, blocks)); err != nil {
					t.Fatal(err)
				}
			}
			for attempt := 0; attempt < 3; attempt++ {
				r.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
				if attempt == 0 { // the verifier's order: deletions first, then by path
					sort.Slice(ops, func(i, j int) bool {
						di, dj := !ops[i].new.Defined(), !ops[j].new.Defined()
						if di != dj {
							return di
						}
						return ops[i].key < ops[j].key
					})
				}
				partial, err := Load(blocks, afterRoot)
				if err != nil {
					t.Fatal(err)
				}
				for _, op := range ops {
					var prev cid.Cid
					if op.old.Defined() {
						prev, err = partial.Insert([]byte(op.key), op.old)
					} else {
						prev, err = partial.Delete([]byte(op.key))
					}
					if err != nil {
						t.Fatalf("seed %d round %d: inverting %v: %v", seed, round, op, err)
					}
					if prev != op.new {
						t.Fatalf("seed %d round %d: inverting %v: found %s", seed, round, op, prev)
					}
				}
				if got := mustRoot(t, partial); got != before {
					t.Fatalf("seed %d round %d: inverted root %s, want %s", seed, round, got, before)
				}
			}
		}
	}
}

// TestProofMatchesReference compares Proof with a transcription of the
// reference getCoveringProof, and checks that the proof alone lets a
// partial tree answer Get and redo a Delete or Insert of the key.
func TestProofMatchesReference(t *testing.T) {
	for _, seed := range seeds {
		r := rand.New(rand.NewSource(seed))
		for _, size := range []int{0, 1, 7, 60, 400, 2000} {
			model := randKeySet(r, size)
			store := MemBlocks{}
			root := refBuild(t, model, store)
			tree, err := Load(store, root)
			if err != nil {
				t.Fatal(err)
			}
			keys := sortedKeys(model)
			probes := []string{"a/a", "zzz/z", randKey(r), randKey(r)}
			for i := 0; i < 20 && len(keys) > 0; i++ {
				probes = append(probes, keys[r.Intn(len(keys))])
			}
			for _, k := range probes {
				proof := MemBlocks{}
				if err := tree.Proof([]byte(k), collect(t, proof)); err != nil {
					t.Fatal(err)
				}
				if want := refCoveringProof(t, store, root, k); !sameSet(keysOf(proof), want) {
					t.Fatalf("seed %d size %d: Proof(%q) has %d blocks, reference %d", seed, size, k, len(proof), len(want))
				}
				partial, err := Load(proof, root)
				if err != nil {
					t.Fatal(err)
				}
				if got, err := partial.Get([]byte(k)); err != nil || got != model[k] {
					t.Fatalf("proof of %q: Get = %s, %v; want %s", k, got, err, model[k])
				}
				next := map[string]cid.Cid{}
				for kk, v := range model {
					next[kk] = v
				}
				if _, ok := model[k]; ok {
					_, err = partial.Delete([]byte(k))
					delete(next, k)
				} else {
					v := randValue(r)
					_, err = partial.Insert([]byte(k), v)
					next[k] = v
				}
				if err != nil {
					t.Fatalf("proof of %q does not cover the change: %v", k, err)
				}
				if got, want := mustRoot(t, partial), refBuild(t, next, nil); got != want {
					t.Fatalf("proof of %q: changed root %s, want %s", k, got, want)
				}
			}
		}
	}
}

// TestDiffAgainstModel: Diff's ops are the map difference, its node lists the
// set differences of reachable nodes, and applying the ops to the old tree
// gives the new root.
func TestDiffAgainstModel(t *testing.T) {
	for _, seed := range seeds {
		r := rand.New(rand.NewSource(seed))
		for round := 0; round < 25; round++ {
			a := randKeySet(r, r.Intn(1500))
			b := map[string]cid.Cid{}
			for k, v := range a {
				b[k] = v
			}
			for _, op := range randCommit(r, a, sortedKeys(a), r.Intn(40)) {
				if op.new.Defined() {
					b[op.key] = op.new
				} else {
					delete(b, op.key)
				}
			}
			store := MemBlocks{}
			rootA, rootB := refBuild(t, a, store), refBuild(t, b, store)
			ta, err := Load(store, rootA)
			if err != nil {
				t.Fatal(err)
			}
			var tb *Tree
			if round%2 == 0 {
				tb, err = Load(store, rootB)
			} else {
				// The new tree as unsaved changes on top of the old one.
				tb, err = Load(store, rootA)
				for _, op := range mapDiff(a, b) {
					if op.New.Defined() {
						_, err = tb.Insert([]byte(op.Key), op.New)
					} else {
						_, err = tb.Delete([]byte(op.Key))
					}
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			d, err := Diff(ta, tb)
			if err != nil {
				t.Fatal(err)
			}
			if want := mapDiff(a, b); !slices.Equal(d.Ops, want) {
				t.Fatalf("seed %d round %d: %d ops, want %d:\n%v\n%v", seed, round, len(d.Ops), len(want), d.Ops, want)
			}
			na, nb := reachable(t, store, rootA), reachable(t, store, rootB)
			if !sameList(d.NewNodes, minusSet(nb, na)) || !sameList(d.RemovedNodes, minusSet(na, nb)) {
				t.Fatalf("seed %d round %d: node sets differ: new %d want %d, removed %d want %d", seed, round,
					len(d.NewNodes), len(minusSet(nb, na)), len(d.RemovedNodes), len(minusSet(na, nb)))
			}
			apply, err := Load(store, rootA)
			if err != nil {
				t.Fatal(err)
			}
			if err := apply.Apply(d.Ops); err != nil {
				t.Fatalf("seed %d round %d: applying the diff: %v", seed, round, err)
			}
			if got := mustRoot(t, apply); got != rootB {
				t.Fatalf("seed %d round %d: diff applied gives %s, want %s", seed, round, got, rootB)
			}
		}
	}
}

// Apply refuses a batch whose Old values do not match, and changes nothing.
func TestApplyConflict(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	keys := randKeySet(r, 300)
	store := MemBlocks{}
	root := refBuild(t, keys, store)
	tree, err := Load(store, root)
	if err != nil {
		t.Fatal(err)
	}
	k := sortedKeys(keys)
	v := keys[k[0]]
	other := store.Put([]byte{0xa0})
	cases := map[string][]Op{
		"create over existing": {{Key: "com.example.new/a", New: v}, {Key: k[1], New: v}},
		"update wrong old":     {{Key: k[2], Old: other, New: v}},
		"delete absent":        {{Key: "com.example.absent/x", Old: v}},
		"same key twice":       {{Key: k[3], Old: keys[k[3]], New: other}, {Key: k[3], Old: other}},
	}
	for name, ops := range cases {
		if err := tree.Apply(ops); !errors.Is(err, ErrConflict) {
			t.Errorf("%s: got %v, want ErrConflict", name, err)
		}
		if got := mustRoot(t, tree); got != root {
			t.Fatalf("%s: a refused batch changed the tree", name)
		}
	}
}

func TestDiffFromEmpty(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	for _, size := range []int{0, 1, 300} {
		kv := randKeySet(r, size)
		store := MemBlocks{}
		root := refBuild(t, kv, store)
		to, err := Load(store, root)
		if err != nil {
			t.Fatal(err)
		}
		d, err := Diff(NewEmpty(nil), to)
		if err != nil {
			t.Fatal(err)
		}
		if want := mapDiff(nil, kv); !slices.Equal(d.Ops, want) {
			t.Fatalf("size %d: ops differ", size)
		}
		empty := map[cid.Cid]bool{EmptyTreeCID(): true}
		nodes := reachable(t, store, root)
		if !sameList(d.NewNodes, minusSet(nodes, empty)) || !sameList(d.RemovedNodes, minusSet(empty, nodes)) {
			t.Fatalf("size %d: node sets differ", size)
		}
	}
}

// mapDiff lists, in key order, every key whose value differs.
func mapDiff(a, b map[string]cid.Cid) []Op {
	var ops []Op
	for k, v := range a {
		if b[k] != v {
			ops = append(ops, Op{Key: k, Old: v, New: b[k]})
		}
	}
	for k, v := range b {
		if _, ok := a[k]; !ok {
			ops = append(ops, Op{Key: k, New: v})
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].Key < ops[j].Key })
	return ops
}

func minusSet(a, b map[cid.Cid]bool) map[cid.Cid]bool {
	out := map[cid.Cid]bool{}
	for c := range a {
		if !b[c] {
			out[c] = true
		}
	}
	return out
}

func sameList(l []cid.Cid, set map[cid.Cid]bool) bool {
	got := map[cid.Cid]bool{}
	for _, c := range l {
		if got[c] {
			return false
		}
		got[c] = true
	}
	return sameSet(got, set)
}

// TestWalkFrom checks Walk(from) and WalkPrefix against the sorted model.
func TestWalkFrom(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	kv := randKeySet(r, 1200)
	store := MemBlocks{}
	root := refBuild(t, kv, store)
	keys := sortedKeys(kv)
	froms := []string{"", "a", "app.bsky.feed.like/", "app.bsky.feed.post/3", "zzz", randKey(r), keys[0], keys[len(keys)-1]}
	for i := 0; i < 20; i++ {
		froms = append(froms, keys[r.Intn(len(keys))])
	}
	for _, from := range froms {
		tree, err := Load(store, root)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		if err := tree.Walk([]byte(from), func(k []byte, v cid.Cid) error {
			if kv[string(k)] != v {
				t.Fatalf("walk: %q has %s", k, v)
			}
			got = append(got, string(k))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		i := sort.SearchStrings(keys, from)
		if !slices.Equal(got, keys[i:]) && !(len(got) == 0 && i == len(keys)) {
			t.Fatalf("Walk(%q): %d keys, want %d", from, len(got), len(keys)-i)
		}
	}
	tree, _ := Load(store, root)
	for _, coll := range append(slices.Clone(collections), "app.bsky.feed.", "nothing.here/", "") {
		var got, want []string
		for _, k := range keys {
			if bytes.HasPrefix([]byte(k), []byte(coll)) {
				want = append(want, k)
			}
		}
		if err := tree.WalkPrefix([]byte(coll), func(k []byte, _ cid.Cid) error {
			got = append(got, string(k))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("WalkPrefix(%q): %d keys, want %d", coll, len(got), len(want))
		}
	}
	// ErrStop ends the walk with no error; other errors come back as they are.
	n := 0
	if err := tree.Walk(nil, func([]byte, cid.Cid) error {
		if n++; n == 5 {
			return ErrStop
		}
		return nil
	}); err != nil || n != 5 {
		t.Fatalf("ErrStop: walked %d, err %v", n, err)
	}
	boom := errors.New("boom")
	if err := tree.Walk(nil, func([]byte, cid.Cid) error { return boom }); err != boom {
		t.Fatalf("Walk returned %v, want the callback's error", err)
	}
}

// TestRemovedBlocks: after random commits on a loaded tree, RemovedBlocks is
// exactly the nodes reachable before and not after, and NewBlocks the nodes
// reachable after and not before.
func TestRemovedBlocks(t *testing.T) {
	for _, seed := range seeds {
		r := rand.New(rand.NewSource(seed))
		for round := 0; round < 30; round++ {
			model := randKeySet(r, r.Intn(1200))
			store := MemBlocks{}
			before := refBuild(t, model, store)
			tree, err := Load(store, before)
			if err != nil {
				t.Fatal(err)
			}
			for _, op := range randCommit(r, model, sortedKeys(model), 1+r.Intn(30)) {
				if op.new.Defined() {
					_, err = tree.Insert([]byte(op.key), op.new)
				} else {
					_, err = tree.Delete([]byte(op.key))
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			after := mustRoot(t, tree)
			got := map[cid.Cid]bool{}
			if err := tree.RemovedBlocks(func(c cid.Cid) error {
				if got[c] {
					t.Fatalf("seed %d round %d: %s reported twice", seed, round, c)
				}
				got[c] = true
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if err := tree.NewBlocks(func(c cid.Cid, b []byte) error { store[c] = b; return nil }); err != nil {
				t.Fatal(err)
			}
			old, cur := reachable(t, store, before), reachable(t, store, after)
			if want := minusSet(old, cur); !maps.Equal(got, want) {
				t.Fatalf("seed %d round %d: removed %d nodes, want %d", seed, round, len(got), len(want))
			}
		}
	}
}
