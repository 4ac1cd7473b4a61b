package mst

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

// Tree is a Merkle Search Tree over a BlockGetter, loaded lazily: nodes are
// read when an operation first looks inside them, and changed nodes are
// re-encoded only by Root. A Tree is not safe for concurrent use, not even
// for reads (they load nodes into the tree).
type Tree struct {
	bg     BlockGetter
	root   link
	height int       // the root's height
	buf    []byte    // encoding scratch
	arena  []byte    // holds copies of inserted keys
	loaded []cid.Cid // every node read from bg, for RemovedBlocks
}

// keyCopy returns a copy of key that the tree owns. Copies are carved from
// shared chunks, to spare an allocation per insert.
func (t *Tree) keyCopy(key []byte) []byte {
	if len(key) > cap(t.arena)-len(t.arena) {
		t.arena = make([]byte, 0, max(16<<10, len(key)))
	}
	start := len(t.arena)
	t.arena = append(t.arena, key...)
	return t.arena[start:len(t.arena):len(t.arena)]
}

// NewEmpty returns a tree with no keys. bg, which may be nil for a tree built
// purely in memory, is where Load'ed subtrees would come from; a tree that
// starts empty never needs it.
func NewEmpty(bg BlockGetter) *Tree {
	return &Tree{bg: bg, root: link{n: newEmptyRoot()}}
}

func newEmptyRoot() *node { return &node{kids: make([]link, 1)} }

// Load returns the tree whose root node has CID root. It reads and checks
// only the root node; other nodes are read from bg when an operation needs
// them, so bg may hold just part of the tree (see the package doc).
func Load(bg BlockGetter, root cid.Cid) (*Tree, error) {
	if bg == nil {
		return nil, fmt.Errorf("mst: load %s: nil BlockGetter", root)
	}
	if !dagcbor.IsBlessed(root, dagcbor.CodecDagCBOR) {
		return nil, fmt.Errorf("mst: load %s: %w: root is not a dag-cbor sha-256 CIDv1", root, ErrInvalidNode)
	}
	data, err := bg.GetBlock(root)
	if err != nil {
		return nil, fmt.Errorf("mst: load root %s: %w", root, err)
	}
	n, err := decodeNode(data, rootHeight, root)
	if err != nil {
		return nil, fmt.Errorf("mst: load root %s: %w", root, err)
	}
	return &Tree{bg: bg, root: link{cid: root, n: n}, height: n.height, loaded: []cid.Cid{root}}, nil
}

// load returns the node l points at, reading and decoding it if it is a stub.
// height is the height the parent implies.
func (t *Tree) load(l *link, height int) (*node, error) {
	if l.n != nil {
		return l.n, nil
	}
	if t.bg == nil {
		return nil, fmt.Errorf("node %s: no BlockGetter: %w", l.cid, ErrNotFound)
	}
	data, err := t.bg.GetBlock(l.cid)
	if err != nil {
		return nil, fmt.Errorf("node %s at height %d: %w", l.cid, height, err)
	}
	n, err := decodeNode(data, height, l.cid)
	if err != nil {
		return nil, fmt.Errorf("node %s at height %d: %w", l.cid, height, err)
	}
	l.n = n
	t.loaded = append(t.loaded, l.cid)
	return n, nil
}

// rootNode returns the loaded root, loading (and trimming) it if a delete
// left it as a stub.
func (t *Tree) rootNode() (*node, error) {
	for t.root.n == nil {
		if _, err := t.load(&t.root, t.height); err != nil {
			return nil, err
		}
		if err := t.trim(); err != nil {
			return nil, err
		}
	}
	return t.root.n, nil
}

// trim restores the rule that the root is not an entry-less node: it
// replaces such a root by its only child, repeatedly, or by the empty tree's
// node. A child that is not in the BlockGetter is taken as the root without
// looking inside it; its CID is all the new root needs, and a valid tree's
// root is never an entry-less pointer (a partial tree in inversion stops
// here, see the package doc).
func (t *Tree) trim() error {
	for {
		n := t.root.n
		if n == nil {
			var err error
			if n, err = t.load(&t.root, t.height); err != nil {
				if errors.Is(err, ErrNotFound) {
					return nil
				}
				return err
			}
		}
		if len(n.entries) > 0 {
			return nil
		}
		if n.kids[0].empty() {
			n.height, t.height = 0, 0
			return nil
		}
		t.root = n.kids[0]
		t.height--
	}
}

// Get returns the value stored under key, or cid.Undef if key is absent.
// It loads only the nodes on the search path.
func (t *Tree) Get(key []byte) (cid.Cid, error) {
	if err := checkKeyLen(key); err != nil {
		return cid.Undef, fmt.Errorf("mst: get: %w", err)
	}
	n, err := t.rootNode()
	if err != nil {
		return cid.Undef, fmt.Errorf("mst: get %q: %w", key, err)
	}
	h := HeightForKey(key)
	for {
		i, found := n.search(key)
		if found {
			return n.entries[i].val, nil
		}
		if n.height <= h || n.kids[i].empty() {
			return cid.Undef, nil
		}
		if n, err = t.load(&n.kids[i], n.height-1); err != nil {
			return cid.Undef, fmt.Errorf("mst: get %q: %w", key, err)
		}
	}
}

// Root encodes the nodes changed since the last call, bottom-up, and returns
// the root CID. Without changes it only returns the known CID.
func (t *Tree) Root() (cid.Cid, error) {
	n := t.root.n
	if n == nil {
		return t.root.cid, nil
	}
	if !n.cid.Defined() {
		t.hash(n)
	}
	return n.cid, nil
}

// hash encodes a dirty node after its dirty descendants.
func (t *Tree) hash(n *node) {
	for _, k := range n.kids {
		if k.n != nil && !k.n.cid.Defined() {
			t.hash(k.n)
		}
	}
	t.buf = appendNode(t.buf[:0], n.entries, n.kids)
	n.cid = dagcbor.SumCBOR(t.buf)
	if n.cid != n.orig {
		n.data = bytes.Clone(t.buf)
	}
}

// NewBlocks calls fn for every node block that changes since Load or NewEmpty
// created and that the current root reaches, each CID once, in pre-order. (A
// tree from NewEmpty counts its empty root node as new.) It calls Root first.
// fn must not modify data; it may keep it. An error from fn stops the walk and
// is returned.
func (t *Tree) NewBlocks(fn func(c cid.Cid, data []byte) error) error {
	if _, err := t.Root(); err != nil {
		return err
	}
	seen := make(map[cid.Cid]struct{})
	var visit func(n *node) error
	visit = func(n *node) error {
		if n == nil || n.data == nil {
			return nil // unchanged, and so is everything below it
		}
		if _, dup := seen[n.cid]; dup {
			return nil
		}
		seen[n.cid] = struct{}{}
		if err := fn(n.cid, n.data); err != nil {
			return err
		}
		for _, k := range n.kids {
			if err := visit(k.n); err != nil {
				return err
			}
		}
		return nil
	}
	return visit(t.root.n)
}

// LoadedBlocks calls fn for the CID of every node read from the
// BlockGetter so far (the root of Load included): nodes of the tree as it
// was loaded.
func (t *Tree) LoadedBlocks(fn func(c cid.Cid)) {
	for _, c := range t.loaded {
		fn(c)
	}
}

// RemovedBlocks calls fn for every node block the tree had when loaded that
// the current root no longer reaches: what a commit makes garbage. It calls
// Root first. A node can only leave the tree after an edit read it, so the
// nodes read so far are the only candidates.
func (t *Tree) RemovedBlocks(fn func(c cid.Cid) error) error {
	if _, err := t.Root(); err != nil {
		return err
	}
	live := make(map[cid.Cid]struct{}, len(t.loaded))
	var visit func(l link)
	visit = func(l link) {
		if l.n == nil {
			if l.cid.Defined() {
				live[l.cid] = struct{}{}
			}
			return
		}
		live[l.n.cid] = struct{}{}
		for _, k := range l.n.kids {
			visit(k)
		}
	}
	visit(t.root)
	for _, c := range t.loaded {
		if _, ok := live[c]; ok {
			continue
		}
		live[c] = struct{}{} // report each CID once
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}
