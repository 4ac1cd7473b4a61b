package mst

import (
	"fmt"

	"github.com/ipfs/go-cid"
)

// WalkBlocks visits the whole tree in the streamable order of the
// repository spec: each node block (node), then for each of its slots in
// order, the subtree (recursively) or the record CID (leaf). It calls Root
// first. Subtrees that were not loaded before the walk are dropped again
// once visited, so walking a tree of any size holds only the current path.
// node must not modify data.
func (t *Tree) WalkBlocks(node func(c cid.Cid, data []byte) error, leaf func(c cid.Cid) error) error {
	if _, err := t.Root(); err != nil {
		return err
	}
	n, err := t.rootNode()
	if err != nil {
		return fmt.Errorf("mst: walk blocks: %w", err)
	}
	return t.walkBlocks(n, node, leaf)
}

func (t *Tree) walkBlocks(n *node, node func(cid.Cid, []byte) error, leaf func(cid.Cid) error) error {
	data := n.data
	if data == nil {
		// Read from the store and decoded strictly: encoding it again gives
		// the stored bytes.
		data = appendNode(make([]byte, 0, sizeHint(n.entries)), n.entries, n.kids)
	}
	if err := node(n.cid, data); err != nil {
		return err
	}
	for i := range n.kids {
		if k := &n.kids[i]; !k.empty() {
			wasStub := k.n == nil
			child, err := t.load(k, n.height-1)
			if err != nil {
				return fmt.Errorf("mst: walk blocks: %w", err)
			}
			if err := t.walkBlocks(child, node, leaf); err != nil {
				return err
			}
			if wasStub {
				k.n = nil // back to a stub: memory follows the path, not the tree
			}
		}
		if i < len(n.entries) {
			if err := leaf(n.entries[i].val); err != nil {
				return err
			}
		}
	}
	return nil
}
