package host

import (
	"context"
	"errors"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/store"
)

// Write is one record write of an applyWrites call, with its optional
// compare-and-swap on the record: SwapRecord, when SwapSet, is the CID the
// record must have now (cid.Undef: the record must not exist).
type Write struct {
	repo.Write
	SwapRecord cid.Cid
	SwapSet    bool
}

// WriteResult is the outcome of a write call.
type WriteResult struct {
	Commit cid.Cid
	Rev    string
	Seq    int64
	Ops    []repo.Op
}

// ApplyWrites signs and applies one commit of writes to a hosted
// repository. swapCommit, when defined, must be the current head commit.
func (h *Host) ApplyWrites(ctx context.Context, did string, writes []Write, swapCommit cid.Cid) (*WriteResult, error) {
	unlock := h.locks.Lock(did)
	defer unlock()
	a, err := h.account(did)
	if err != nil {
		return nil, err
	}
	if !a.Status.Active() {
		return nil, fmt.Errorf("host: %s is %s: %w", did, a.Status, ErrNotActive)
	}
	if swapCommit.Defined() && swapCommit != a.Head.Commit {
		return nil, fmt.Errorf("host: swapCommit %s, head is %s: %w", swapCommit, a.Head.Commit, ErrInvalidSwap)
	}
	tree, err := h.repos.Tree(a)
	if err != nil {
		return nil, err
	}
	plain := make([]repo.Write, len(writes))
	for i, w := range writes {
		if w.SwapSet {
			cur, err := tree.Get([]byte(w.Path))
			if err != nil {
				return nil, err
			}
			if cur != w.SwapRecord {
				return nil, fmt.Errorf("host: swapRecord of %s does not match: %w", w.Path, ErrInvalidSwap)
			}
		}
		if w.Record != nil {
			if err := h.checkRecordBlobs(a.UID, w.Record); err != nil {
				return nil, err
			}
		}
		plain[i] = w.Write
	}
	sec, err := h.secrets(a.UID)
	if err != nil {
		return nil, err
	}
	var prev *repo.Commit
	if a.Head.Defined() {
		prev = &repo.Commit{Rev: syntax.TID(a.Head.Rev), Data: a.Head.Data}
	}
	res, err := repo.BuildCommit(tree, prev, plain, repo.CommitOptions{DID: syntax.DID(did), Key: sec.signing, Clock: h.opts.Clock})
	if err != nil {
		return nil, fmt.Errorf("host: %w", err)
	}
	out := &WriteResult{Commit: a.Head.Commit, Rev: a.Head.Rev, Ops: res.Ops}
	if len(res.Ops) == 0 {
		return out, nil // nothing changed: no commit (e.g. an identical putRecord)
	}
	c, err := h.repos.CommitChange(a, res, tree, h.opts.Now())
	if err != nil {
		return nil, err
	}
	r, err := h.db.Apply(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("host: committing to %s: %w", did, err)
	}
	out.Commit, out.Rev, out.Seq = res.CID, string(res.Commit.Rev), r.Seqs[0]
	return out, nil
}

// Account returns a hosted or mirrored account, or an error wrapping
// ErrRepoNotFound.
func (h *Host) Account(did string) (*store.Account, error) {
	a, err := h.db.Account(did)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("host: %s: %w", did, ErrRepoNotFound)
	}
	return a, err
}
