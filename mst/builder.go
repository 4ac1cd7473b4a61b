package mst

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

// Builder constructs a tree from keys given in increasing order, emitting
// each node as soon as it is complete (children before parents). It holds
// only the open node of each level, the right edge of the tree built so far,
// so memory stays proportional to depth times entries per node however many
// keys go in. The root equals that of inserting the same keys into a Tree.
// A Builder is used by one goroutine; after an error it returns that error
// from every call.
type Builder struct {
	emit   func(c cid.Cid, data []byte) error
	levels []openNode // levels[h] is the open node of height h
	top    int        // greatest height added so far, -1 before any key
	last   []byte
	buf    []byte
	err    error
}

// openNode is a node still receiving entries: len(kids) == len(entries),
// the slot after the last entry being filled by the level below.
type openNode struct {
	entries []entry
	kids    []link
	keys    []byte // backing store for the entries' keys, reused
}

// NewBuilder returns a Builder that passes every finished node to emit. data
// is only valid during the call (the Builder reuses it); copy it to keep it.
// An error from emit stops the build and is returned.
func NewBuilder(emit func(c cid.Cid, data []byte) error) *Builder {
	return &Builder{emit: emit, top: -1}
}

// Add appends key with value val. key must be a repo path and sort strictly
// after the previous key.
func (b *Builder) Add(key []byte, val cid.Cid) error {
	if b.err != nil {
		return b.err
	}
	if err := CheckPath(key); err != nil {
		return fmt.Errorf("mst: builder: %w", err)
	}
	if !val.Defined() {
		return fmt.Errorf("mst: builder: key %q: %w: cid.Undef", key, ErrInvalidValue)
	}
	if b.top >= 0 && bytes.Compare(b.last, key) >= 0 {
		return fmt.Errorf("mst: builder: %w: %q does not sort after %q", ErrInvalidKey, key, b.last)
	}
	b.last = append(b.last[:0], key...)
	h := HeightForKey(key)
	for len(b.levels) <= h {
		b.levels = append(b.levels, openNode{})
	}
	// Everything open below h is the subtree just before key: close it.
	var left link
	if h > 0 {
		var err error
		if left, err = b.close(h - 1); err != nil {
			b.err = err
			return err
		}
	}
	lv := &b.levels[h]
	start := len(lv.keys)
	lv.keys = append(lv.keys, key...)
	lv.kids = append(lv.kids, left)
	lv.entries = append(lv.entries, entry{key: lv.keys[start:len(lv.keys):len(lv.keys)], val: val})
	b.top = max(b.top, h)
	return nil
}

// close finishes the open node of height h and those below it, emits them,
// and returns the link to the finished subtree (empty if it has no keys).
func (b *Builder) close(h int) (link, error) {
	var right link
	if h > 0 {
		var err error
		if right, err = b.close(h - 1); err != nil {
			return link{}, err
		}
	}
	if h >= len(b.levels) {
		return right, nil // no key this high yet: nothing open
	}
	lv := &b.levels[h]
	lv.kids = append(lv.kids, right)
	defer lv.reset()
	if len(lv.entries) == 0 && right.empty() {
		return link{}, nil
	}
	b.buf = appendNode(b.buf[:0], lv.entries, lv.kids)
	c := dagcbor.SumCBOR(b.buf)
	if err := b.emit(c, b.buf); err != nil {
		return link{}, fmt.Errorf("mst: builder: emit %s: %w", c, err)
	}
	return link{cid: c}, nil
}

func (lv *openNode) reset() {
	clear(lv.entries)
	clear(lv.kids)
	lv.entries, lv.kids, lv.keys = lv.entries[:0], lv.kids[:0], lv.keys[:0]
}

var errFinished = errors.New("mst: builder: already finished")

// Finish closes every open node and returns the root CID: the empty tree's
// (whose node it emits) when no key was added. It ends the build.
func (b *Builder) Finish() (cid.Cid, error) {
	if b.err != nil {
		return cid.Undef, b.err
	}
	if b.top < 0 {
		data := appendNode(b.buf[:0], nil, []link{{}})
		if err := b.emit(emptyNodeCID, data); err != nil {
			b.err = fmt.Errorf("mst: builder: emit %s: %w", emptyNodeCID, err)
			return cid.Undef, b.err
		}
		b.err = errFinished
		return emptyNodeCID, nil
	}
	root, err := b.close(b.top)
	if err != nil {
		b.err = err
		return cid.Undef, err
	}
	b.err = errFinished
	return root.cid, nil
}
