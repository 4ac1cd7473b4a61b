package mst

import (
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
)

// ErrConflict: Apply was given an op whose Old value is not the key's
// current value.
var ErrConflict = errors.New("op does not match the tree")

// Apply changes the tree by a batch of ops, such as a Diff returns: for each
// op, the key's current value must be Old (cid.Undef: absent) and becomes
// New (cid.Undef: deleted). Every op is checked before any is applied, so a
// conflict (ErrConflict) leaves the tree unchanged; a missing block met while
// applying leaves it partly changed, and it should then be discarded. As
// with single edits, hashing waits for the next Root.
func (t *Tree) Apply(ops []Op) error {
	seen := make(map[string]struct{}, len(ops))
	for _, op := range ops {
		if _, dup := seen[op.Key]; dup {
			return fmt.Errorf("mst: apply: %w: key %q twice", ErrConflict, op.Key)
		}
		seen[op.Key] = struct{}{}
		cur, err := t.Get([]byte(op.Key))
		if err != nil {
			return fmt.Errorf("mst: apply: %w", err)
		}
		if cur != op.Old {
			return fmt.Errorf("mst: apply: %w: %q is %s, op expects %s", ErrConflict, op.Key, cidString(cur), cidString(op.Old))
		}
	}
	for _, op := range ops {
		var err error
		if op.New.Defined() {
			_, err = t.Insert([]byte(op.Key), op.New)
		} else {
			_, err = t.Delete([]byte(op.Key))
		}
		if err != nil {
			return fmt.Errorf("mst: apply %q: %w", op.Key, err)
		}
	}
	return nil
}

func cidString(c cid.Cid) string {
	if !c.Defined() {
		return "absent"
	}
	return c.String()
}
