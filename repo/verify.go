package repo

import (
	"errors"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/car"
	"github.com/reservoir-atproto/reservoir/mst"
)

// Limits of a #commit message (lexicon and sync-spec §5.1).
const (
	MaxCommitBlocksBytes = 2_000_000
	MaxCommitOps         = 200
	MaxRevSkew           = 5 * time.Minute
)

// CommitMessage holds the fields of a firehose #commit that verification
// reads. Since is "" when the wire value is null; PrevData is cid.Undef when
// the field is absent.
type CommitMessage struct {
	Repo     string
	Rev      string
	Since    string
	Commit   cid.Cid
	PrevData cid.Cid
	Blocks   []byte // CAR slice
	Ops      []Op
	TooBig   bool
	Rebase   bool
}

// RepoState is what a verifier knows of a repository before a commit: the
// rev and data CID of the last accepted commit.
type RepoState struct {
	Rev  syntax.TID
	Data cid.Cid
}

// VerifyOptions configures VerifyCommitMessage.
type VerifyOptions struct {
	// Key is the account's current #atproto signing key. Required.
	Key atcrypto.PublicKey
	// Prev is the last accepted state of the repository, nil if unknown.
	Prev *RepoState
	// Now is the reference time for the future-rev check; zero means time.Now().
	Now time.Time
	// Lenient accepts a commit without prevData (pre-sync-1.1 producers) and
	// then skips the inversion check. Chain checks still run.
	Lenient bool
}

// VerifiedCommit is a commit message that passed every check.
type VerifiedCommit struct {
	Commit    *Commit
	CommitCID cid.Cid
	Blocks    mst.MemBlocks // every block of the slice, each checked against its CID
	Ops       []Op          // normalized (deletions first, then by path)
	// Delta is what the commit changes in the tree, known from the
	// inversion: nil when none ran (a first commit, or a lenient one
	// without prevData).
	Delta *TreeDelta
}

// TreeDelta is the difference between the tree before a commit (at
// prevData) and after it (at the commit's data), as the sync-1.1 inversion
// computed it from the slice alone. With prevData equal to the stored
// root, it is exactly what a store of the repository must add and remove:
// no stored node needs to be read, and applying the ops forward to the
// stored tree would give the same root (the MST is canonical for its keys).
type TreeDelta struct {
	// NewNodes are the MST nodes of the new tree that the old one lacks;
	// their bytes are in VerifiedCommit.Blocks.
	NewNodes []cid.Cid
	// DeadNodes are the MST nodes of the old tree that the new one lacks,
	// with their bytes (re-encoded by the inversion, so hashed to their CIDs).
	DeadNodes []Block
}

// State is the repository state after the commit.
func (v *VerifiedCommit) State() RepoState {
	return RepoState{Rev: v.Commit.Rev, Data: v.Commit.Data}
}

// VerifyCommitMessage performs the sync-1.1 checks of a #commit (sync-spec
// §5.3) given the account's key and the stored state: sizes, CAR structure
// and block hashes, commit structure, repo and rev agreement, rev order and
// skew, chain continuity (since, prevData), the signature, and the MST
// inversion of every op back to prevData. It returns a *VerifyError naming
// the failed check.
func VerifyCommitMessage(msg *CommitMessage, opts VerifyOptions) (*VerifiedCommit, error) {
	if opts.Key == nil {
		return nil, errors.New("repo: verify commit: no key given")
	}
	if len(msg.Blocks) > MaxCommitBlocksBytes {
		return nil, verr(ErrTooLarge, nil, "%d bytes > %d", len(msg.Blocks), MaxCommitBlocksBytes)
	}
	if len(msg.Ops) > MaxCommitOps {
		return nil, verr(ErrTooManyOps, nil, "%d > %d", len(msg.Ops), MaxCommitOps)
	}
	if msg.TooBig || msg.Rebase {
		return nil, verr(ErrMalformed, nil, "tooBig or rebase set")
	}
	if len(msg.Blocks) == 0 {
		return nil, verr(ErrMissingBlock, nil, "empty blocks")
	}
	roots, blocks, err := car.ParseBytes(msg.Blocks, &car.Options{MaxTotal: MaxCommitBlocksBytes})
	if err != nil {
		if errors.Is(err, car.ErrHashMismatch) {
			return nil, verr(ErrCIDMismatch, err, "blocks")
		}
		return nil, verr(ErrMalformed, err, "blocks CAR")
	}
	if len(roots) == 0 || roots[0] != msg.Commit {
		return nil, verr(ErrCIDMismatch, nil, "first CAR root is not the commit %s", msg.Commit)
	}
	commitBytes, ok := blocks[msg.Commit]
	if !ok {
		return nil, verr(ErrMissingBlock, nil, "commit block %s", msg.Commit)
	}
	commit, err := DecodeCommit(commitBytes)
	if err != nil {
		return nil, verr(ErrMalformed, err, "commit block")
	}
	if err := commit.VerifyStructure(); err != nil {
		return nil, verr(ErrMalformed, err, "commit block")
	}
	if string(commit.DID) != msg.Repo {
		return nil, verr(ErrRepoMismatch, nil, "message %q, commit %q", msg.Repo, commit.DID)
	}
	if string(commit.Rev) != msg.Rev {
		return nil, verr(ErrMalformed, nil, "message rev %q, commit rev %q", msg.Rev, commit.Rev)
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	if commit.Rev.Time().After(now.Add(MaxRevSkew)) {
		return nil, verr(ErrFutureRev, nil, "rev %s is %s", commit.Rev, commit.Rev.Time().Format(time.RFC3339))
	}
	if p := opts.Prev; p != nil {
		if commit.Rev <= p.Rev {
			return nil, verr(ErrRevOrder, nil, "rev %s, stored %s", commit.Rev, p.Rev)
		}
		if msg.Since != string(p.Rev) {
			return nil, verr(ErrChainBreak, nil, "since %q, stored rev %s", msg.Since, p.Rev)
		}
		if msg.PrevData.Defined() && msg.PrevData != p.Data {
			return nil, verr(ErrPrevDataMismatch, nil, "prevData %s, stored %s", msg.PrevData, p.Data)
		}
	}
	ops, err := NormalizeOps(msg.Ops)
	if err != nil {
		return nil, verr(ErrMalformed, err, "ops")
	}
	if err := commit.VerifySignature(opts.Key); err != nil {
		return nil, verr(ErrSignature, err, "")
	}
	var delta *TreeDelta
	switch {
	case msg.PrevData.Defined():
		if delta, err = checkInversion(blocks, commit.Data, msg.PrevData, ops); err != nil {
			return nil, err
		}
	case opts.Prev == nil && msg.Since == "":
		// The first commit of a repository: nothing to invert to.
	case !opts.Lenient:
		return nil, verr(ErrPrevDataMissing, nil, "")
	}
	return &VerifiedCommit{Commit: commit, CommitCID: msg.Commit, Blocks: blocks, Ops: ops, Delta: delta}, nil
}

// checkInversion loads the partial tree at data from the slice, checks that
// every create and update is present with its CID (and its record block is
// in the slice), then inverts the ops in order and compares the root with
// prevData. It returns the nodes the commit adds and removes.
func checkInversion(blocks mst.MemBlocks, data, prevData cid.Cid, ops []Op) (*TreeDelta, error) {
	tree, err := mst.Load(blocks, data)
	if err != nil {
		return nil, treeErr(err, "loading the new tree")
	}
	for _, op := range ops {
		if op.Action == ActionDelete {
			continue
		}
		got, err := tree.Get([]byte(op.Path))
		if err != nil {
			return nil, treeErr(err, "reading %s", op.Path)
		}
		if got != op.CID {
			return nil, verr(ErrInversion, nil, "%s %s: tree has %s, op says %s", op.Action, op.Path, cidOrNone(got), op.CID)
		}
		if _, ok := blocks[op.CID]; !ok {
			return nil, verr(ErrMissingBlock, nil, "record %s of %s", op.CID, op.Path)
		}
	}
	for _, op := range ops {
		var prev cid.Cid
		var want cid.Cid
		switch op.Action {
		case ActionCreate:
			prev, err = tree.Delete([]byte(op.Path))
			want = op.CID
		case ActionUpdate:
			prev, err = tree.Insert([]byte(op.Path), op.Prev)
			want = op.CID
		case ActionDelete:
			prev, err = tree.Insert([]byte(op.Path), op.Prev)
		}
		if err != nil {
			return nil, treeErr(err, "inverting %s %s", op.Action, op.Path)
		}
		if prev != want {
			return nil, verr(ErrInversion, nil, "inverting %s %s: found %s, want %s", op.Action, op.Path, cidOrNone(prev), cidOrNone(want))
		}
	}
	root, err := tree.Root()
	if err != nil {
		return nil, treeErr(err, "computing the inverted root")
	}
	if root != prevData {
		return nil, verr(ErrInversion, nil, "inverted root %s, prevData %s", root, prevData)
	}
	// The inverted tree is the old one: the nodes the inversion made are the
	// old tree's, dead after the commit unless the new tree has the same
	// node (an edit can rebuild a node it passed through unchanged: a split
	// undone by a merge); the loaded nodes it no longer reaches are the new
	// tree's (added by the commit).
	delta := &TreeDelta{}
	inNew := map[cid.Cid]struct{}{}
	tree.LoadedBlocks(func(c cid.Cid) { inNew[c] = struct{}{} })
	if err := tree.NewBlocks(func(c cid.Cid, data []byte) error {
		if _, ok := inNew[c]; !ok {
			delta.DeadNodes = append(delta.DeadNodes, Block{CID: c, Data: data})
		}
		return nil
	}); err != nil {
		return nil, treeErr(err, "listing the old nodes")
	}
	if err := tree.RemovedBlocks(func(c cid.Cid) error {
		delta.NewNodes = append(delta.NewNodes, c)
		return nil
	}); err != nil {
		return nil, treeErr(err, "listing the new nodes")
	}
	return delta, nil
}

func treeErr(err error, format string, args ...any) error {
	if errors.Is(err, mst.ErrNotFound) {
		return verr(ErrMissingBlock, err, format, args...)
	}
	return verr(ErrMalformed, err, format, args...)
}

func cidOrNone(c cid.Cid) string {
	if !c.Defined() {
		return "nothing"
	}
	return c.String()
}
