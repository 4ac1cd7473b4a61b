package mst

import (
	"bytes"
	"fmt"

	"github.com/ipfs/go-cid"
)

// Op is one key whose value differs between two trees: a create has Old
// undefined, a delete has New undefined, an update has both.
type Op struct {
	Key      string
	Old, New cid.Cid
}

// TreeDiff is what changed from one tree to another: Ops in key order, and
// the node CIDs reachable only from the new tree (NewNodes) or only from the
// old one (RemovedNodes), each in the order the diff met them.
type TreeDiff struct {
	Ops          []Op
	NewNodes     []cid.Cid
	RemovedNodes []cid.Cid
}

// Diff compares two trees by walking both in key order at once and skipping
// every pair of subtrees with equal CIDs, so its cost follows the size of the
// change, not of the trees; both may be lazy over stores, and only nodes that
// differ are loaded. It calls Root on both. from may be an empty tree.
//
// Why skipping is sound: each side is consumed in key order, so when both
// next items are subtrees with the same CID, everything consumed so far on
// either side sorts before that subtree's keys and everything left after
// it; dropping the identical subtree from both leaves the merge unchanged.
// A subtree is opened only when it cannot be matched: its partner is a leaf,
// a subtree of lower height (which may equal one of its descendants), or a
// different subtree of the same height.
func Diff(from, to *Tree) (*TreeDiff, error) {
	a, err := newCursor(from)
	if err != nil {
		return nil, fmt.Errorf("mst: diff: old tree: %w", err)
	}
	b, err := newCursor(to)
	if err != nil {
		return nil, fmt.Errorf("mst: diff: new tree: %w", err)
	}
	d := &TreeDiff{}
	for {
		fa, okA := a.front()
		fb, okB := b.front()
		switch {
		case !okA && !okB:
			// A node opened on one side only is reachable from that side
			// only: had it been reachable from the other too, it would have
			// been met there and either opened as well or skipped as part of
			// an equal pair (and then not opened here, since a tree holds a
			// given node in one place only).
			d.NewNodes = minus(b.opened, a.opened)
			d.RemovedNodes = minus(a.opened, b.opened)
			return d, nil
		case !okA: // the rest of the new tree is new
			err = b.drain(d, false)
		case !okB: // the rest of the old tree is gone
			err = a.drain(d, true)
		case fa.leaf() && fb.leaf():
			d.compareLeaves(a, b, fa.entry(), fb.entry())
		case fa.leaf():
			err = b.expand()
		case fb.leaf():
			err = a.expand()
		case fa.link().CID() == fb.link().CID():
			a.advance()
			b.advance()
		case fa.height > fb.height:
			err = a.expand()
		case fb.height > fa.height:
			err = b.expand()
		default:
			if err = a.expand(); err == nil {
				err = b.expand()
			}
		}
		if err != nil {
			return nil, fmt.Errorf("mst: diff: %w", err)
		}
	}
}

// compareLeaves consumes the smaller of two keys, or both when equal,
// recording the op.
func (d *TreeDiff) compareLeaves(a, b *cursor, ea, eb *entry) {
	switch cmp := bytes.Compare(ea.key, eb.key); {
	case cmp < 0:
		d.Ops = append(d.Ops, Op{Key: string(ea.key), Old: ea.val})
		a.advance()
	case cmp > 0:
		d.Ops = append(d.Ops, Op{Key: string(eb.key), New: eb.val})
		b.advance()
	default:
		if ea.val != eb.val {
			d.Ops = append(d.Ops, Op{Key: string(ea.key), Old: ea.val, New: eb.val})
		}
		a.advance()
		b.advance()
	}
}

func minus(x, y []cid.Cid) []cid.Cid {
	in := make(map[cid.Cid]struct{}, len(y))
	for _, c := range y {
		in[c] = struct{}{}
	}
	var out []cid.Cid
	for _, c := range x {
		if _, ok := in[c]; !ok {
			out = append(out, c)
		}
	}
	return out
}

// cursor walks one tree in key order, item by item, where an item is a leaf
// entry or a whole subtree that can be opened (expand) or skipped (advance).
type cursor struct {
	t      *Tree
	stack  []frame
	opened []cid.Cid
	top    node // holds the root as its only child
}

// frame is a node being walked; pos counts slots: kids[pos/2] when pos is
// even, entries[pos/2] when odd.
type frame struct {
	n   *node
	pos int
}

// item is the cursor's next item: a slot of the top frame.
type item struct {
	n      *node
	pos    int
	height int // a subtree's height
}

func (it *item) leaf() bool    { return it.pos%2 == 1 }
func (it *item) entry() *entry { return &it.n.entries[it.pos/2] }
func (it *item) link() *link   { return &it.n.kids[it.pos/2] }

func newCursor(t *Tree) (*cursor, error) {
	if _, err := t.Root(); err != nil {
		return nil, err
	}
	if _, err := t.rootNode(); err != nil {
		return nil, err
	}
	if _, err := t.Root(); err != nil { // rootNode may have trimmed
		return nil, err
	}
	c := &cursor{t: t}
	c.top = node{height: t.height + 1, kids: []link{t.root}}
	c.stack = append(c.stack, frame{n: &c.top})
	return c, nil
}

// front returns the next item; ok is false at the end.
func (c *cursor) front() (it item, ok bool) {
	for len(c.stack) > 0 {
		f := &c.stack[len(c.stack)-1]
		switch {
		case f.pos > 2*len(f.n.entries):
			c.stack = c.stack[:len(c.stack)-1]
		case f.pos%2 == 0 && f.n.kids[f.pos/2].empty():
			f.pos++
		default:
			return item{n: f.n, pos: f.pos, height: f.n.height - 1}, true
		}
	}
	return item{}, false
}

// advance moves past the next item.
func (c *cursor) advance() { c.stack[len(c.stack)-1].pos++ }

// expand opens the next item, a subtree, loading it if needed.
func (c *cursor) expand() error {
	f := &c.stack[len(c.stack)-1]
	l := &f.n.kids[f.pos/2]
	n, err := c.t.load(l, f.n.height-1)
	if err != nil {
		return err
	}
	f.pos++
	c.opened = append(c.opened, n.cid)
	c.stack = append(c.stack, frame{n: n})
	return nil
}

// drain records everything left as removed (old) or new.
func (c *cursor) drain(d *TreeDiff, old bool) error {
	for it, ok := c.front(); ok; it, ok = c.front() {
		if !it.leaf() {
			if err := c.expand(); err != nil {
				return err
			}
			continue
		}
		e := it.entry()
		if old {
			d.Ops = append(d.Ops, Op{Key: string(e.key), Old: e.val})
		} else {
			d.Ops = append(d.Ops, Op{Key: string(e.key), New: e.val})
		}
		c.advance()
	}
	return nil
}
