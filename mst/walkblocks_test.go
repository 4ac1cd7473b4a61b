package mst

import (
	"math/rand"
	"testing"

	"github.com/ipfs/go-cid"
)

// WalkBlocks visits every node exactly once, the root first, each before its
// subtrees, and the leaves in key order, with the stored bytes.
func TestWalkBlocks(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	for round := 0; round < 20; round++ {
		kv := randKeySet(r, r.Intn(2000))
		store := MemBlocks{}
		root := refBuild(t, kv, store)
		tree, err := Load(store, root)
		if err != nil {
			t.Fatal(err)
		}
		var nodes []cid.Cid
		var leaves []cid.Cid
		err = tree.WalkBlocks(func(c cid.Cid, data []byte) error {
			if string(store[c]) != string(data) {
				t.Fatalf("node %s: bytes differ from the stored block", c)
			}
			nodes = append(nodes, c)
			return nil
		}, func(c cid.Cid) error {
			leaves = append(leaves, c)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes) == 0 || nodes[0] != root {
			t.Fatalf("round %d: the root is not first", round)
		}
		want := reachable(t, store, root)
		if len(nodes) != len(want) {
			t.Fatalf("round %d: %d nodes visited, %d reachable", round, len(nodes), len(want))
		}
		keys := sortedKeys(kv)
		if len(leaves) != len(keys) {
			t.Fatalf("round %d: %d leaves, %d keys", round, len(leaves), len(keys))
		}
		for i, k := range keys {
			if leaves[i] != kv[k] {
				t.Fatalf("round %d: leaf %d is %s, want the value of %s", round, i, leaves[i], k)
			}
		}
		// The walk leaves the tree as lazy as it found it.
		if tree.root.n != nil {
			for _, k := range tree.root.n.kids {
				if k.n != nil {
					t.Fatalf("round %d: a subtree stayed loaded after the walk", round)
				}
			}
		}
	}
}
