package mst

import (
	"fmt"

	"github.com/ipfs/go-cid"
)

// Proof calls fn for each node of the covering proof of key, each once: what
// the reference implementation's MST.getCoveringProof(key) returns. That is
// the union of
//
//   - the search path: the nodes from the root down to the one holding key,
//     or, for an absent key, down to the last node with a subtree in the
//     key's slot (which proves absence);
//   - when key is present, the path from its node down the right edge of the
//     subtree just before it, toward its predecessor;
//   - and the path down the left edge of the subtree just after it, toward
//     its successor.
//
// (For an absent key the reference's left and right walks follow the search
// path, so they add nothing.) Those are exactly the nodes a verifier must
// read to check the key's presence or absence and to insert or remove the
// key again, so a firehose commit carries NewBlocks plus Proof of every key it
// touched. Proof calls Root first. fn must not modify data; it may keep it.
func (t *Tree) Proof(key []byte, fn func(c cid.Cid, data []byte) error) error {
	if err := checkKeyLen(key); err != nil {
		return fmt.Errorf("mst: proof: %w", err)
	}
	if _, err := t.Root(); err != nil {
		return err
	}
	n, err := t.rootNode()
	if err != nil {
		return fmt.Errorf("mst: proof %q: %w", key, err)
	}
	var emitted []cid.Cid
	emit := func(n *node) error {
		for _, c := range emitted {
			if c == n.cid {
				return nil
			}
		}
		emitted = append(emitted, n.cid)
		data := n.data
		if data == nil {
			// A node read from the store: strict decoding admits only the
			// canonical form, so encoding it again gives the stored bytes.
			data = appendNode(make([]byte, 0, sizeHint(n.entries)), n.entries, n.kids)
		}
		return fn(n.cid, data)
	}
	for {
		if err := emit(n); err != nil {
			return err
		}
		i, found := n.search(key)
		if found {
			if err := t.proveEdge(&n.kids[i], n.height-1, true, emit); err != nil {
				return fmt.Errorf("mst: proof %q: %w", key, err)
			}
			if err := t.proveEdge(&n.kids[i+1], n.height-1, false, emit); err != nil {
				return fmt.Errorf("mst: proof %q: %w", key, err)
			}
			return nil
		}
		if n.kids[i].empty() {
			return nil
		}
		if n, err = t.load(&n.kids[i], n.height-1); err != nil {
			return fmt.Errorf("mst: proof %q: %w", key, err)
		}
	}
}

// proveEdge emits the nodes down the right (rightEdge) or left edge of the
// subtree at l.
func (t *Tree) proveEdge(l *link, height int, rightEdge bool, emit func(*node) error) error {
	for !l.empty() {
		n, err := t.load(l, height)
		if err != nil {
			return err
		}
		if err := emit(n); err != nil {
			return err
		}
		if rightEdge {
			l = &n.kids[len(n.kids)-1]
		} else {
			l = &n.kids[0]
		}
		height--
	}
	return nil
}
