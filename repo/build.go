package repo

import (
	"errors"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/car"
	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/mst"
)

// MaxRecordSize is the largest record block a commit may carry.
const MaxRecordSize = 1_000_000

// Errors of BuildCommit for writes that do not fit the repository.
var (
	ErrRecordExists   = errors.New("record already exists")
	ErrRecordNotFound = errors.New("record not found")
	ErrInvalidRecord  = errors.New("invalid record")
)

// Write is one requested record change. Record is the record's canonical
// DAG-CBOR (nil for a delete).
type Write struct {
	Action Action // create: the path must be free; update: create or replace; delete: the path must exist
	Path   string
	Record []byte
}

// Block is one content-addressed block.
type Block struct {
	CID  cid.Cid
	Data []byte
}

// CommitOptions says who signs a commit and where its rev comes from.
type CommitOptions struct {
	DID   syntax.DID
	Key   atcrypto.PrivateKey
	Clock *RevClock // nil: a fresh clock with id 0
}

// CommitResult is a signed commit with everything a host stores and sends.
type CommitResult struct {
	Commit    *Commit
	CID       cid.Cid
	Since     syntax.TID // previous rev, "" for the first commit
	PrevData  cid.Cid    // previous data CID, cid.Undef for the first commit
	Ops       []Op       // in the order of the writes, with prev CIDs for updates and deletes; unchanged updates dropped
	NewBlocks []Block    // the commit, new MST nodes and new record blocks: what the store adds
	Slice     []byte     // the #commit blocks CAR: NewBlocks plus the proof nodes consumers need to invert the ops
	// DeadNodes are the MST nodes the commit removes, with their bytes,
	// when they are known without the tree (a verified upstream commit's
	// TreeDelta); nil when the tree says (BuildCommit).
	DeadNodes []Block
}

// BuildCommit applies writes to tree (the repository's MST at prev.Data, or
// an empty tree when prev is nil), then builds and signs the next commit.
// All writes are checked before the tree is changed, so a refused write
// (ErrRecordExists, ErrRecordNotFound, ErrInvalidRecord, ErrInvalidOp,
// ErrTooManyOps) leaves the tree as it was. Any later error (a missing or
// corrupt block, ErrTooLarge) leaves it changed: discard it then.
func BuildCommit(tree *mst.Tree, prev *Commit, writes []Write, opts CommitOptions) (*CommitResult, error) {
	if len(writes) > MaxCommitOps {
		return nil, fmt.Errorf("repo: %w: %d writes > %d", ErrTooManyOps, len(writes), MaxCommitOps)
	}
	type staged struct {
		op     Op
		record []byte
	}
	stage := make([]staged, 0, len(writes))
	seen := make(map[string]struct{}, len(writes))
	for _, w := range writes {
		if _, _, err := syntax.ParseRepoPath(w.Path); err != nil {
			return nil, fmt.Errorf("repo: %w: path %q: %v", ErrInvalidOp, w.Path, err)
		}
		if _, dup := seen[w.Path]; dup {
			return nil, fmt.Errorf("repo: %w: duplicate path %s", ErrInvalidOp, w.Path)
		}
		seen[w.Path] = struct{}{}
		old, err := tree.Get([]byte(w.Path))
		if err != nil {
			return nil, fmt.Errorf("repo: reading %s: %w", w.Path, err)
		}
		op := Op{Path: w.Path, Prev: old}
		switch w.Action {
		case ActionCreate, ActionUpdate:
			if err := checkRecord(w.Record); err != nil {
				return nil, fmt.Errorf("repo: %s: %w", w.Path, err)
			}
			op.CID = dagcbor.SumCBOR(w.Record)
			switch {
			case w.Action == ActionCreate && old.Defined():
				return nil, fmt.Errorf("repo: %w: %s", ErrRecordExists, w.Path)
			case old == op.CID:
				continue // an update to the same record changes nothing
			case old.Defined():
				op.Action = ActionUpdate
			default:
				op.Action = ActionCreate
			}
		case ActionDelete:
			if !old.Defined() {
				return nil, fmt.Errorf("repo: %w: %s", ErrRecordNotFound, w.Path)
			}
			op.Action = ActionDelete
		default:
			return nil, fmt.Errorf("repo: %w: unknown action %q", ErrInvalidOp, w.Action)
		}
		stage = append(stage, staged{op: op, record: w.Record})
	}

	res := &CommitResult{}
	for _, s := range stage {
		var err error
		if s.op.Action == ActionDelete {
			_, err = tree.Delete([]byte(s.op.Path))
		} else {
			_, err = tree.Insert([]byte(s.op.Path), s.op.CID)
		}
		if err != nil {
			return nil, fmt.Errorf("repo: applying %s %s: %w", s.op.Action, s.op.Path, err)
		}
		res.Ops = append(res.Ops, s.op)
	}
	data, err := tree.Root()
	if err != nil {
		return nil, fmt.Errorf("repo: computing the MST root: %w", err)
	}

	clock := opts.Clock
	if clock == nil {
		clock = NewRevClock(0)
	}
	commit := &Commit{DID: opts.DID, Version: Version, Data: data}
	if prev != nil {
		res.Since = prev.Rev
		res.PrevData = prev.Data
	}
	commit.Rev = clock.Next(res.Since)
	if err := commit.Sign(opts.Key); err != nil {
		return nil, err
	}
	commitBytes := commit.Bytes()
	res.Commit = commit
	res.CID = dagcbor.SumCBOR(commitBytes)

	// The store gets the commit, the new nodes and the new records; the
	// slice adds the covering proofs of every op key on the new tree.
	res.NewBlocks = append(res.NewBlocks, Block{res.CID, commitBytes})
	inSlice := map[cid.Cid]struct{}{res.CID: {}}
	slice := car.AppendHeader(nil, res.CID)
	slice = car.AppendBlock(slice, res.CID, commitBytes)
	add := func(c cid.Cid, b []byte) error {
		if _, ok := inSlice[c]; ok {
			return nil
		}
		inSlice[c] = struct{}{}
		slice = car.AppendBlock(slice, c, b)
		return nil
	}
	if err := tree.NewBlocks(func(c cid.Cid, b []byte) error {
		res.NewBlocks = append(res.NewBlocks, Block{c, b})
		return add(c, b)
	}); err != nil {
		return nil, fmt.Errorf("repo: collecting new MST nodes: %w", err)
	}
	for _, s := range stage {
		if s.op.Action == ActionDelete {
			continue
		}
		if _, ok := inSlice[s.op.CID]; !ok {
			res.NewBlocks = append(res.NewBlocks, Block{s.op.CID, s.record})
		}
		_ = add(s.op.CID, s.record)
	}
	for _, op := range res.Ops {
		if err := tree.Proof([]byte(op.Path), add); err != nil {
			return nil, fmt.Errorf("repo: proof for %s: %w", op.Path, err)
		}
	}
	if len(slice) > MaxCommitBlocksBytes {
		return nil, fmt.Errorf("repo: %w: the commit's blocks take %d bytes > %d", ErrTooLarge, len(slice), MaxCommitBlocksBytes)
	}
	res.Slice = slice
	return res, nil
}

// checkRecord accepts a record block: strict DAG-CBOR, a map at the top
// level, at most MaxRecordSize bytes.
func checkRecord(b []byte) error {
	if len(b) > MaxRecordSize {
		return fmt.Errorf("%w: %d bytes > %d", ErrInvalidRecord, len(b), MaxRecordSize)
	}
	if len(b) == 0 || b[0]>>5 != 5 {
		return fmt.Errorf("%w: not a CBOR map", ErrInvalidRecord)
	}
	if err := dagcbor.Validate(b); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRecord, err)
	}
	return nil
}
