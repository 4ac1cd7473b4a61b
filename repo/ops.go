package repo

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
)

// Action is what a repository operation does to one record.
type Action string

const (
	ActionCreate Action = "create"
	ActionUpdate Action = "update"
	ActionDelete Action = "delete"
)

// Op is one record change of a commit, as a #commit frame lists it.
//
//	create: CID = new record, Prev undefined
//	update: CID = new record, Prev = old record
//	delete: CID undefined (null on the wire), Prev = old record
type Op struct {
	Action Action
	Path   string // collection/rkey
	CID    cid.Cid
	Prev   cid.Cid
}

// ErrInvalidOp is the class of malformed operation lists.
var ErrInvalidOp = errors.New("invalid repo op")

// Validate checks the action/field combination and the path syntax.
func (op *Op) Validate() error {
	if _, _, err := syntax.ParseRepoPath(op.Path); err != nil {
		return fmt.Errorf("%w: path %q: %v", ErrInvalidOp, op.Path, err)
	}
	switch op.Action {
	case ActionCreate:
		if !op.CID.Defined() || op.Prev.Defined() {
			return fmt.Errorf("%w: create %s needs cid and no prev", ErrInvalidOp, op.Path)
		}
	case ActionUpdate:
		if !op.CID.Defined() || !op.Prev.Defined() {
			return fmt.Errorf("%w: update %s needs cid and prev", ErrInvalidOp, op.Path)
		}
	case ActionDelete:
		if op.CID.Defined() || !op.Prev.Defined() {
			return fmt.Errorf("%w: delete %s needs prev and a null cid", ErrInvalidOp, op.Path)
		}
	default:
		return fmt.Errorf("%w: unknown action %q", ErrInvalidOp, op.Action)
	}
	return nil
}

// NormalizeOps validates ops and returns them in inversion order: deletions
// first, then by path. A path may appear only once.
func NormalizeOps(ops []Op) ([]Op, error) {
	out := slices.Clone(ops)
	for i := range out {
		if err := out[i].Validate(); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b Op) int {
		ad, bd := a.Action == ActionDelete, b.Action == ActionDelete
		if ad != bd {
			if ad {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Path, b.Path)
	})
	paths := make(map[string]struct{}, len(out))
	for _, op := range out {
		if _, dup := paths[op.Path]; dup {
			return nil, fmt.Errorf("%w: duplicate path %s", ErrInvalidOp, op.Path)
		}
		paths[op.Path] = struct{}{}
	}
	return out, nil
}
