package repo

import (
	"errors"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/car"
	"github.com/reservoir-atproto/reservoir/mst"
)

// RecordProof emits the blocks com.atproto.sync.getRecord returns for path
// at a commit: the commit block, the MST covering proof of the key (which
// proves presence or absence), and the record block when present. It
// reports whether the record exists. Blocks come in that order, each once.
func RecordProof(bg mst.BlockGetter, commitCID cid.Cid, path string, emit func(c cid.Cid, data []byte) error) (bool, error) {
	commitBytes, err := bg.GetBlock(commitCID)
	if err != nil {
		return false, fmt.Errorf("repo: commit %s: %w", commitCID, err)
	}
	commit, err := DecodeCommit(commitBytes)
	if err != nil {
		return false, err
	}
	if err := emit(commitCID, commitBytes); err != nil {
		return false, err
	}
	tree, err := mst.Load(bg, commit.Data)
	if err != nil {
		return false, fmt.Errorf("repo: loading MST %s: %w", commit.Data, err)
	}
	if err := tree.Proof([]byte(path), emit); err != nil {
		return false, fmt.Errorf("repo: proof of %s: %w", path, err)
	}
	rec, err := tree.Get([]byte(path))
	if err != nil || !rec.Defined() {
		return false, err
	}
	recBytes, err := bg.GetBlock(rec)
	if err != nil {
		return false, fmt.Errorf("repo: record %s at %s: %w", rec, path, err)
	}
	return true, emit(rec, recBytes)
}

// ErrProof is the class of getRecord proofs that do not prove what they claim.
var ErrProof = errors.New("invalid record proof")

// RecordProofResult is what a verified getRecord proof shows.
type RecordProofResult struct {
	Commit    *Commit
	CommitCID cid.Cid
	RecordCID cid.Cid // cid.Undef: the proof shows the record is absent
	Record    []byte
}

// VerifyRecordProof checks a getRecord CAR for did and path: the first root
// is a commit of did, signed by key (skipped when key is nil), and the
// proof blocks alone show the key present (with its record block) or absent.
func VerifyRecordProof(carBytes []byte, did syntax.DID, key atcrypto.PublicKey, path string) (*RecordProofResult, error) {
	roots, blocks, err := car.ParseBytes(carBytes, nil)
	if err != nil {
		return nil, fmt.Errorf("repo: %w: %w", ErrProof, err)
	}
	if len(roots) == 0 {
		return nil, fmt.Errorf("repo: %w: no root", ErrProof)
	}
	res := &RecordProofResult{CommitCID: roots[0]}
	commitBytes, ok := blocks[roots[0]]
	if !ok {
		return nil, fmt.Errorf("repo: %w: commit block missing", ErrProof)
	}
	if res.Commit, err = DecodeCommit(commitBytes); err != nil {
		return nil, err
	}
	if res.Commit.DID != did {
		return nil, fmt.Errorf("repo: %w: commit is of %s, not %s", ErrProof, res.Commit.DID, did)
	}
	if key != nil {
		if err := res.Commit.VerifySignature(key); err != nil {
			return nil, err
		}
	}
	tree, err := mst.Load(mst.MemBlocks(blocks), res.Commit.Data)
	if err != nil {
		return nil, fmt.Errorf("repo: %w: %w", ErrProof, err)
	}
	if res.RecordCID, err = tree.Get([]byte(path)); err != nil {
		return nil, fmt.Errorf("repo: %w: %w", ErrProof, err)
	}
	if res.RecordCID.Defined() {
		if res.Record, ok = blocks[res.RecordCID]; !ok {
			return nil, fmt.Errorf("repo: %w: record block %s missing", ErrProof, res.RecordCID)
		}
	}
	return res, nil
}

// SyncMessage holds the fields of a firehose #sync that verification reads.
type SyncMessage struct {
	DID    string
	Rev    string
	Blocks []byte // CAR holding the commit block
}

// MaxSyncBlocksBytesLenient is how large a #sync blocks field may be when
// consuming (the lexicon's 10,000 applies when producing; sync-spec §10.8).
const MaxSyncBlocksBytesLenient = 2_000_000

// VerifySyncMessage checks a #sync: the CAR's first root is a well-formed
// commit of DID at Rev, signed by key. It returns the commit and its CID.
func VerifySyncMessage(msg *SyncMessage, key atcrypto.PublicKey) (*Commit, cid.Cid, error) {
	if len(msg.Blocks) > MaxSyncBlocksBytesLenient {
		return nil, cid.Undef, verr(ErrTooLarge, nil, "%d bytes", len(msg.Blocks))
	}
	roots, blocks, err := car.ParseBytes(msg.Blocks, &car.Options{MaxTotal: MaxSyncBlocksBytesLenient})
	if err != nil {
		return nil, cid.Undef, verr(ErrMalformed, err, "blocks CAR")
	}
	if len(roots) == 0 {
		return nil, cid.Undef, verr(ErrMalformed, nil, "no root")
	}
	b, ok := blocks[roots[0]]
	if !ok {
		return nil, cid.Undef, verr(ErrMissingBlock, nil, "commit block %s", roots[0])
	}
	commit, err := DecodeCommit(b)
	if err != nil {
		return nil, cid.Undef, verr(ErrMalformed, err, "commit block")
	}
	if err := commit.VerifyStructure(); err != nil {
		return nil, cid.Undef, verr(ErrMalformed, err, "commit block")
	}
	if string(commit.DID) != msg.DID {
		return nil, cid.Undef, verr(ErrRepoMismatch, nil, "message %q, commit %q", msg.DID, commit.DID)
	}
	if string(commit.Rev) != msg.Rev {
		return nil, cid.Undef, verr(ErrMalformed, nil, "message rev %q, commit rev %q", msg.Rev, commit.Rev)
	}
	if err := commit.VerifySignature(key); err != nil {
		return nil, cid.Undef, verr(ErrSignature, err, "")
	}
	return commit, roots[0], nil
}
