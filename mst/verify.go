package mst

import (
	"bytes"
	"fmt"
)

// Verify checks every node of the tree, loading all of them: keys valid,
// strictly increasing in order across the whole tree, each in a node of its
// own height; every link one level down (none skipped, none below height 0);
// no entry-less node without a child, and a root that is not an entry-less
// pointer. (Prefix compression and the encoding itself are checked whenever a
// node is read.) It reports the first violation, wrapping ErrInvalidNode.
func (t *Tree) Verify() error {
	root, err := t.rootNode()
	if err != nil {
		return fmt.Errorf("mst: verify: %w", err)
	}
	if len(root.entries) == 0 && !root.kids[0].empty() {
		return fmt.Errorf("mst: verify: %w: root is an empty node pointing to a child", ErrInvalidNode)
	}
	if root.height != t.height {
		return fmt.Errorf("mst: verify: %w: root height %d, tree height %d", ErrInvalidNode, root.height, t.height)
	}
	if err := t.verify(root, nil, nil, true); err != nil {
		return fmt.Errorf("mst: verify: %w", err)
	}
	return nil
}

// verify checks n's subtree, whose keys must lie strictly between lo and hi
// (nil: unbounded).
func (t *Tree) verify(n *node, lo, hi []byte, root bool) error {
	switch {
	case n.height < 0:
		return fmt.Errorf("%w: node below height 0", ErrInvalidNode)
	case len(n.kids) != len(n.entries)+1:
		return fmt.Errorf("%w: %d entries and %d child slots", ErrInvalidNode, len(n.entries), len(n.kids))
	case !root && n.isEmpty():
		return fmt.Errorf("%w: empty node below the root", ErrInvalidNode)
	}
	prev := lo
	for _, e := range n.entries {
		if err := checkKeyLen(e.key); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidNode, err)
		}
		if prev != nil && bytes.Compare(prev, e.key) >= 0 {
			return fmt.Errorf("%w: key %q does not sort after %q", ErrInvalidNode, e.key, prev)
		}
		if h := HeightForKey(e.key); h != n.height {
			return fmt.Errorf("%w: key %q of height %d in a node of height %d", ErrInvalidNode, e.key, h, n.height)
		}
		if !e.val.Defined() {
			return fmt.Errorf("%w: key %q has no value", ErrInvalidNode, e.key)
		}
		prev = e.key
	}
	if hi != nil && prev != nil && bytes.Compare(prev, hi) >= 0 {
		return fmt.Errorf("%w: key %q does not sort before %q", ErrInvalidNode, prev, hi)
	}
	for i := range n.kids {
		if n.kids[i].empty() {
			continue
		}
		if n.height == 0 {
			return fmt.Errorf("%w: node of height 0 has a child", ErrInvalidNode)
		}
		child, err := t.load(&n.kids[i], n.height-1)
		if err != nil {
			return err
		}
		if child.height != n.height-1 {
			return fmt.Errorf("%w: child of height %d below a node of height %d", ErrInvalidNode, child.height, n.height)
		}
		clo, chi := lo, hi
		if i > 0 {
			clo = n.entries[i-1].key
		}
		if i < len(n.entries) {
			chi = n.entries[i].key
		}
		if err := t.verify(child, clo, chi, false); err != nil {
			return err
		}
	}
	return nil
}
