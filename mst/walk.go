package mst

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
)

// Walk calls fn for every key >= from (every key when from is nil), in key
// order. Subtrees whose keys all sort before from are skipped without being
// loaded. fn must not modify key, which stays valid after the call. If fn
// returns ErrStop the walk ends and Walk returns nil; any other error from fn
// ends it and is returned as is.
func (t *Tree) Walk(from []byte, fn func(key []byte, val cid.Cid) error) error {
	root, err := t.rootNode()
	if err == nil {
		err = t.walk(root, from, fn)
	}
	if errors.Is(err, ErrStop) {
		return nil
	}
	return err
}

// walk visits n's subtree in order. Only kids[i], the slot where from would
// be, can hold keys on both sides of from; the kids before it are skipped and
// those after it are walked whole.
func (t *Tree) walk(n *node, from []byte, fn func([]byte, cid.Cid) error) error {
	i := 0
	if from != nil {
		i, _ = n.search(from)
	}
	for j := i; j < len(n.kids); j++ {
		if !n.kids[j].empty() {
			child, err := t.load(&n.kids[j], n.height-1)
			if err != nil {
				return fmt.Errorf("mst: walk: %w", err)
			}
			sub := from
			if j > i {
				sub = nil
			}
			if err := t.walk(child, sub, fn); err != nil {
				return err
			}
		}
		if j < len(n.entries) {
			if err := fn(n.entries[j].key, n.entries[j].val); err != nil {
				return err
			}
		}
	}
	return nil
}

// errPrefixDone ends a WalkPrefix at the first key past the prefix.
var errPrefixDone = errors.New("mst: past prefix")

// WalkPrefix calls fn, in key order, for every key that starts with prefix
// (such as "app.bsky.feed.post/"), and stops at the first key after them.
// fn and ErrStop behave as in Walk.
func (t *Tree) WalkPrefix(prefix []byte, fn func(key []byte, val cid.Cid) error) error {
	err := t.Walk(prefix, func(key []byte, val cid.Cid) error {
		if !bytes.HasPrefix(key, prefix) {
			return errPrefixDone
		}
		return fn(key, val)
	})
	if errors.Is(err, errPrefixDone) {
		return nil
	}
	return err
}
