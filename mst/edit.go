package mst

import (
	"fmt"
	"slices"

	"github.com/ipfs/go-cid"
)

// Insert stores val under key, replacing any previous value, and returns the
// previous value (cid.Undef if key was new). key must be a repo path (see
// CheckPath). Only the nodes on the key's search path are loaded. If an
// error is returned the tree is unchanged.
func (t *Tree) Insert(key []byte, val cid.Cid) (prev cid.Cid, err error) {
	if err := CheckPath(key); err != nil {
		return cid.Undef, fmt.Errorf("mst: insert: %w", err)
	}
	if !val.Defined() {
		return cid.Undef, fmt.Errorf("mst: insert %q: %w: cid.Undef", key, ErrInvalidValue)
	}
	root, err := t.rootNode()
	if err != nil {
		return cid.Undef, fmt.Errorf("mst: insert %q: %w", key, err)
	}
	h := HeightForKey(key)
	switch {
	case root.isEmpty():
		t.root, t.height = link{n: leafNode(t.keyCopy(key), val, h)}, h
		return cid.Undef, nil
	case h > root.height:
		// The key goes above the whole tree: the old tree splits around it
		// into the new root's two children, each lifted with entry-less
		// nodes to one level below the key.
		left, right, err := t.split(&t.root, key, t.height)
		if err != nil {
			return cid.Undef, fmt.Errorf("mst: insert %q: %w", key, err)
		}
		n := newNode(h, 1)
		n.entries = append(n.entries, entry{t.keyCopy(key), val})
		n.kids = append(n.kids, lift(left, t.height, h-1), lift(right, t.height, h-1))
		t.root, t.height = link{n: n}, h
		return cid.Undef, nil
	}
	prev, _, err = t.insert(root, key, h, val)
	if err != nil {
		return cid.Undef, fmt.Errorf("mst: insert %q: %w", key, err)
	}
	return prev, nil
}

// insert adds key (of height h <= n.height) below n. changed is false when
// the key already had the value val.
func (t *Tree) insert(n *node, key []byte, h int, val cid.Cid) (prev cid.Cid, changed bool, err error) {
	i, found := n.search(key)
	if n.height == h {
		if found {
			prev = n.entries[i].val
			if prev == val {
				return prev, false, nil
			}
			n.entries[i].val = val
			n.markDirty()
			return prev, true, nil
		}
		// The subtree in the key's slot holds keys on both sides of it.
		left, right, err := t.split(&n.kids[i], key, n.height-1)
		if err != nil {
			return cid.Undef, false, err
		}
		n.entries = slices.Insert(n.entries, i, entry{t.keyCopy(key), val})
		n.kids[i] = left
		n.kids = slices.Insert(n.kids, i+1, right)
		n.markDirty()
		return cid.Undef, true, nil
	}
	if n.kids[i].empty() {
		n.kids[i] = lift(link{n: leafNode(t.keyCopy(key), val, h)}, h, n.height-1)
		n.markDirty()
		return cid.Undef, true, nil
	}
	child, err := t.load(&n.kids[i], n.height-1)
	if err != nil {
		return cid.Undef, false, err
	}
	if prev, changed, err = t.insert(child, key, h, val); changed {
		n.markDirty()
	}
	return prev, changed, err
}

// leafNode returns a new node holding just key, which it keeps.
func leafNode(key []byte, val cid.Cid, h int) *node {
	n := newNode(h, 1)
	n.entries = append(n.entries, entry{key, val})
	n.kids = append(n.kids, link{}, link{})
	return n
}

// lift wraps a subtree of height from in entry-less nodes up to height to, so
// that no link skips a level.
func lift(l link, from, to int) link {
	if l.empty() {
		return l
	}
	for h := from + 1; h <= to; h++ {
		n := newNode(h, 0)
		n.kids = append(n.kids, l)
		l = link{n: n}
	}
	return l
}

// split divides the subtree at l (of the given height, which is below key's)
// into the part before key and the part after it. A side that keeps the whole
// subtree is returned as l itself, unchanged and unloaded below; a side with
// no keys is an empty link. Only the nodes on key's search path are loaded,
// and nothing is modified until all of them are.
func (t *Tree) split(l *link, key []byte, height int) (left, right link, err error) {
	if l.empty() {
		return link{}, link{}, nil
	}
	n, err := t.load(l, height)
	if err != nil {
		return link{}, link{}, err
	}
	i, found := n.search(key)
	if found {
		return link{}, link{}, fmt.Errorf("%w: key %q in a node of height %d, below its own", ErrInvalidNode, key, height)
	}
	last := len(n.entries)
	if i == last && n.kids[i].empty() {
		return *l, link{}, nil // all of n is before key
	}
	if i == 0 && n.kids[0].empty() {
		return link{}, *l, nil // all of n is after key
	}
	subLeft, subRight, err := t.split(&n.kids[i], key, height-1)
	if err != nil {
		return link{}, link{}, err
	}
	if i == last && subRight.empty() {
		return *l, link{}, nil
	}
	if i == 0 && subLeft.empty() {
		return link{}, *l, nil
	}
	r := newNode(height, last-i)
	r.entries = append(r.entries, n.entries[i:]...)
	r.kids = append(append(r.kids, subRight), n.kids[i+1:]...)
	// The left part reuses n.
	clear(n.entries[i:])
	clear(n.kids[i+1:])
	n.entries = n.entries[:i]
	n.kids = append(n.kids[:i], subLeft)
	n.markDirty()
	return link{n: n}, link{n: r}, nil
}

// Delete removes key and returns the value it had, or cid.Undef (and no
// change) if it was absent. Only the nodes on the key's search path, and
// those along the facing edges of the two subtrees beside the key (which
// merge), are loaded. If an error is returned the tree is unchanged.
func (t *Tree) Delete(key []byte) (prev cid.Cid, err error) {
	if err := checkKeyLen(key); err != nil {
		return cid.Undef, fmt.Errorf("mst: delete: %w", err)
	}
	root, err := t.rootNode()
	if err != nil {
		return cid.Undef, fmt.Errorf("mst: delete %q: %w", key, err)
	}
	h := HeightForKey(key)
	if h > root.height {
		return cid.Undef, nil
	}
	if prev, err = t.delete(root, key, h); err != nil {
		return cid.Undef, fmt.Errorf("mst: delete %q: %w", key, err)
	}
	if prev.Defined() && len(root.entries) == 0 {
		if err := t.trim(); err != nil {
			return cid.Undef, fmt.Errorf("mst: delete %q: trimming the root: %w", key, err)
		}
	}
	return prev, nil
}

// delete removes key (of height h <= n.height) from below n.
func (t *Tree) delete(n *node, key []byte, h int) (cid.Cid, error) {
	i, found := n.search(key)
	if n.height == h {
		if !found {
			return cid.Undef, nil
		}
		// The subtrees on either side of the key become neighbours: merge them.
		merged, err := t.merge(n.kids[i], n.kids[i+1], n.height-1)
		if err != nil {
			return cid.Undef, err
		}
		prev := n.entries[i].val
		n.entries = slices.Delete(n.entries, i, i+1)
		n.kids[i] = merged
		n.kids = slices.Delete(n.kids, i+1, i+2)
		n.markDirty()
		return prev, nil
	}
	if n.kids[i].empty() {
		return cid.Undef, nil
	}
	child, err := t.load(&n.kids[i], n.height-1)
	if err != nil {
		return cid.Undef, err
	}
	prev, err := t.delete(child, key, h)
	if err != nil || !prev.Defined() {
		return cid.Undef, err
	}
	if child.isEmpty() {
		n.kids[i] = link{}
	}
	n.markDirty()
	return prev, nil
}

// merge joins two adjacent subtrees of the same height (every key of a below
// every key of b). When one is empty the other is returned as it is, without
// loading it; otherwise the facing edges (a's right spine, b's left spine)
// are loaded and merged down to where one side ends.
func (t *Tree) merge(a, b link, height int) (link, error) {
	if a.empty() {
		return b, nil
	}
	if b.empty() {
		return a, nil
	}
	an, err := t.load(&a, height)
	if err != nil {
		return link{}, err
	}
	bn, err := t.load(&b, height)
	if err != nil {
		return link{}, err
	}
	last := len(an.kids) - 1
	mid, err := t.merge(an.kids[last], bn.kids[0], height-1)
	if err != nil {
		return link{}, err
	}
	an.entries = append(an.entries, bn.entries...)
	an.kids = append(append(an.kids[:last], mid), bn.kids[1:]...)
	an.markDirty()
	return link{n: an}, nil
}
