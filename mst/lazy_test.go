package mst

import (
	"math/rand"
	"testing"

	"github.com/ipfs/go-cid"
)

// countingGetter counts the blocks a tree reads.
type countingGetter struct {
	bg    BlockGetter
	reads int
}

func (g *countingGetter) GetBlock(c cid.Cid) ([]byte, error) {
	g.reads++
	return g.bg.GetBlock(c)
}

func TestLazyLoading(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	kv := randKeySet(r, 10000)
	store := MemBlocks{}
	root := refBuild(t, kv, store)
	top := 0
	for k := range kv {
		top = max(top, refHeight(k))
	}
	total := len(reachable(t, store, root))
	keys := sortedKeys(kv)

	// Get of a key of height h reads one node per level from the root's
	// down to h, no more.
	for i := 0; i < 50; i++ {
		k := keys[r.Intn(len(keys))]
		g := &countingGetter{bg: store}
		tree, err := Load(g, root)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := tree.Get([]byte(k)); err != nil || v != kv[k] {
			t.Fatalf("Get(%q) = %s, %v", k, v, err)
		}
		if want := top - refHeight(k) + 1; g.reads != want {
			t.Fatalf("Get of a height-%d key in a height-%d tree read %d nodes, want %d", refHeight(k), top, g.reads, want)
		}
	}

	// Insert then Root read exactly the new key's search path (its proof of
	// absence), and Root reads nothing more. A delete reads within the
	// key's covering proof.
	for i := 0; i < 50; i++ {
		k := randKey(r)
		if _, ok := kv[k]; ok {
			continue
		}
		path := refCoveringProof(t, store, root, k)
		g := &countingGetter{bg: store}
		tree, err := Load(g, root)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tree.Insert([]byte(k), randValue(r)); err != nil {
			t.Fatal(err)
		}
		if g.reads != len(path) {
			t.Fatalf("Insert(%q) read %d nodes; its search path has %d (tree: %d nodes)", k, g.reads, len(path), total)
		}
		mustRoot(t, tree)
		if g.reads != len(path) {
			t.Fatalf("Root read %d more nodes", g.reads-len(path))
		}

		del := keys[r.Intn(len(keys))]
		proof := refCoveringProof(t, store, root, del)
		g.reads = 0
		tree, _ = Load(g, root)
		if _, err := tree.Delete([]byte(del)); err != nil {
			t.Fatal(err)
		}
		if mustRoot(t, tree); g.reads > len(proof) {
			t.Fatalf("Delete(%q) read %d nodes, more than its covering proof's %d", del, g.reads, len(proof))
		}
	}
}

// TestDeferredHashing: Insert and Delete only mark nodes dirty; Root encodes
// each dirty node once.
func TestDeferredHashing(t *testing.T) {
	r := rand.New(rand.NewSource(9))
	store := MemBlocks{}
	root := refBuild(t, randKeySet(r, 3000), store)
	tree, err := Load(store, root)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		if _, err := tree.Insert([]byte(randKey(r)), randValue(r)); err != nil {
			t.Fatal(err)
		}
	}
	dirty, clean := countNodes(tree.root.n)
	if dirty == 0 || tree.root.n.cid.Defined() {
		t.Fatalf("after inserts: %d dirty nodes, root hashed: %v", dirty, tree.root.n.cid.Defined())
	}
	mustRoot(t, tree)
	if d, c := countNodes(tree.root.n); d != 0 || c != dirty+clean {
		t.Fatalf("after Root: %d dirty, %d clean; want 0, %d", d, c, dirty+clean)
	}
	// Nothing changed: Root returns the same CID without work.
	if a, b := mustRoot(t, tree), mustRoot(t, tree); a != b {
		t.Fatal("Root changed without edits")
	}
}

// countNodes counts the loaded nodes of a subtree by whether they await
// encoding.
func countNodes(n *node) (dirty, clean int) {
	if n.cid.Defined() {
		clean++
	} else {
		dirty++
	}
	for _, k := range n.kids {
		if k.n != nil {
			d, c := countNodes(k.n)
			dirty, clean = dirty+d, clean+c
		}
	}
	return dirty, clean
}

// TestPartialTreeErrors: touching a node that is not in the store fails with
// ErrNotFound naming it, and leaves the tree as it was.
func TestPartialTreeErrors(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	kv := randKeySet(r, 500)
	store := MemBlocks{}
	root := refBuild(t, kv, store)
	rootOnly := MemBlocks{root: store[root]}
	tree, err := Load(rootOnly, root)
	if err != nil {
		t.Fatal(err)
	}
	var missing cid.Cid
	for _, k := range sortedKeys(kv) {
		if refHeight(k) == tree.height {
			continue // lives in the root
		}
		_, err := tree.Get([]byte(k))
		if !errorsIs(err, ErrNotFound) {
			t.Fatalf("Get(%q) on a root-only tree: %v, want ErrNotFound", k, err)
		}
		// The message names a block of the tree that is not in the store.
		for c := range store {
			if _, ok := rootOnly[c]; !ok && containsString(err.Error(), c.String()) {
				missing = c
			}
		}
		if !missing.Defined() {
			t.Fatalf("error does not name the missing block: %v", err)
		}
		if _, err := tree.Insert([]byte(k), randValue(r)); !errorsIs(err, ErrNotFound) {
			t.Fatalf("Insert: %v, want ErrNotFound", err)
		}
		if _, err := tree.Delete([]byte(k)); !errorsIs(err, ErrNotFound) {
			t.Fatalf("Delete: %v, want ErrNotFound", err)
		}
		break
	}
	if got := mustRoot(t, tree); got != root {
		t.Fatalf("failed operations changed the root to %s", got)
	}
	if err := tree.Verify(); !errorsIs(err, ErrNotFound) {
		t.Fatalf("Verify: %v, want ErrNotFound", err)
	}
	if err := tree.Walk(nil, func([]byte, cid.Cid) error { return nil }); !errorsIs(err, ErrNotFound) {
		t.Fatalf("Walk: %v, want ErrNotFound", err)
	}
}
