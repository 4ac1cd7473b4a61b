package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/car"
	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/mst"
	"github.com/reservoir-atproto/reservoir/repo"
)

// Errors of repository CAR verification. Failures found by the packages
// underneath wrap their own classes too: car.ErrHashMismatch (a block that
// does not hash to its CID), repo.ErrMalformedCommit, repo.ErrSignature,
// mst.ErrInvalidNode, dagcbor's decoding rules.
var (
	// ErrNoCommit: the CAR has no root, or its first root is not in it.
	ErrNoCommit = errors.New("client: repository CAR has no commit")
	// ErrMissingBlock: the tree names a node or record the CAR lacks.
	ErrMissingBlock = errors.New("client: block missing from the repository CAR")
	// ErrWrongRepo: the commit belongs to another DID than expected.
	ErrWrongRepo = errors.New("client: repository of another DID")
	// ErrNotCanonical: rebuilding the MST from its keys gives another root
	// than the commit's data.
	ErrNotCanonical = errors.New("client: MST is not the canonical tree of its keys")
	// ErrInvalidRecord: a record block that is not a valid record.
	ErrInvalidRecord = errors.New("client: invalid record")
)

// RepoCAR is a repository CAR opened for random access: one pass checks
// every block against its CID and indexes where each block's bytes are;
// later reads go to the io.ReaderAt. Memory is an index entry per block
// (about 100 bytes), not the blocks. It is a mst.BlockGetter. It is safe for
// concurrent reads if the io.ReaderAt is (an *os.File, a *bytes.Reader).
type RepoCAR struct {
	r        io.ReaderAt
	size     int64
	roots    []cid.Cid
	index    map[cid.Cid]blockRef
	sections int
}

type blockRef struct {
	off int64
	n   int
}

var _ mst.BlockGetter = (*RepoCAR)(nil)

// OpenOptions configure OpenRepoCAR.
type OpenOptions struct {
	// Limits bound the CAR (block size, total); the zero value takes the car
	// package's defaults (no total limit).
	Limits car.Options
	// Progress, if set, is called after each block with the bytes read so
	// far.
	Progress func(offset int64)
}

// OpenRepoCAR reads the CAR in r (size bytes) once, checking the header and
// every block's hash, and indexes its blocks. opts may be nil.
func OpenRepoCAR(r io.ReaderAt, size int64, opts *OpenOptions) (*RepoCAR, error) {
	if opts == nil {
		opts = &OpenOptions{}
	}
	limits := opts.Limits
	cr, err := car.NewReader(io.NewSectionReader(r, 0, size), &limits)
	if err != nil {
		return nil, fmt.Errorf("client: repository CAR: %w", err)
	}
	rc := &RepoCAR{r: r, size: size, roots: cr.Roots(), index: make(map[cid.Cid]blockRef)}
	for {
		c, data, err := cr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("client: repository CAR: %w", err)
		}
		rc.sections++
		rc.index[c] = blockRef{off: cr.Offset() - int64(len(data)), n: len(data)}
		if opts.Progress != nil {
			opts.Progress(cr.Offset())
		}
	}
	if cr.Offset() != size {
		return nil, fmt.Errorf("client: repository CAR: %w: %d bytes after the last block", car.ErrTruncated, size-cr.Offset())
	}
	return rc, nil
}

// Roots returns the CAR's roots; the first is the commit.
func (rc *RepoCAR) Roots() []cid.Cid { return slices.Clone(rc.roots) }

// Blocks is the number of distinct blocks.
func (rc *RepoCAR) Blocks() int { return len(rc.index) }

// Size is the CAR's length in bytes.
func (rc *RepoCAR) Size() int64 { return rc.size }

// Has reports whether the CAR holds the block c.
func (rc *RepoCAR) Has(c cid.Cid) bool { _, ok := rc.index[c]; return ok }

// GetBlock reads the block c, checking it against its CID again (the file
// may have changed since it was opened). A missing block is an error
// wrapping both ErrMissingBlock and mst.ErrNotFound.
func (rc *RepoCAR) GetBlock(c cid.Cid) ([]byte, error) {
	ref, ok := rc.index[c]
	if !ok {
		return nil, fmt.Errorf("%w: %w: %s", ErrMissingBlock, mst.ErrNotFound, c)
	}
	data := make([]byte, ref.n)
	if _, err := rc.r.ReadAt(data, ref.off); err != nil {
		return nil, fmt.Errorf("client: reading block %s: %w", c, err)
	}
	got, err := c.Prefix().Sum(data)
	if err != nil || !got.Equals(c) {
		return nil, fmt.Errorf("client: block %s: %w (changed since the CAR was opened)", c, car.ErrHashMismatch)
	}
	return data, nil
}

// Commit decodes the commit the first root names.
func (rc *RepoCAR) Commit() (*repo.Commit, cid.Cid, error) {
	if len(rc.roots) == 0 {
		return nil, cid.Undef, fmt.Errorf("%w: no root", ErrNoCommit)
	}
	root := rc.roots[0]
	if !rc.Has(root) {
		return nil, cid.Undef, fmt.Errorf("%w: the root %s is not in the CAR", ErrNoCommit, root)
	}
	data, err := rc.GetBlock(root)
	if err != nil {
		return nil, cid.Undef, err
	}
	commit, err := repo.DecodeCommit(data)
	if err != nil {
		return nil, cid.Undef, fmt.Errorf("client: commit %s: %w", root, err)
	}
	return commit, root, nil
}

// VerifyRepoOptions configure RepoCAR.Verify.
type VerifyRepoOptions struct {
	// DID, if set, is the account the repository must belong to.
	DID string
	// Keys gives the account's signing key. nil skips the signature check
	// (RepoReport.SignatureVerified stays false).
	Keys KeySource
	// Partial accepts a CAR that holds only part of the tree (a getRepo
	// answer with since): the commit and its signature are checked, the MST
	// and the records are not.
	Partial bool
	// SkipRecords does not decode the record blocks (their hashes are still
	// checked, and their presence).
	SkipRecords bool
	// Progress, if set, is called every 1024 records with the count so far.
	Progress func(records int)
}

// RepoReport is what verification found in a repository CAR.
type RepoReport struct {
	DID       syntax.DID
	Rev       syntax.TID
	CommitCID cid.Cid
	Data      cid.Cid // the MST root
	Version   int64

	// SignatureVerified: a key was available and the signature matched it
	// (Key is its did:key).
	SignatureVerified bool
	Key               string
	// Partial: the MST and records were not checked (VerifyRepoOptions.Partial).
	Partial bool

	CARBytes    int64
	Blocks      int // distinct blocks
	Sections    int // CAR sections, repeated blocks included
	Nodes       int
	NodeBytes   int64
	Records     int   // keys of the tree
	RecordBytes int64 // bytes of the distinct record blocks
	Collections []CollectionStats
	// Blobs and BlobBytes count the distinct blobs the records reference
	// and their declared sizes (not when SkipRecords).
	Blobs     int
	BlobBytes int64
	// Unreferenced blocks are in the CAR but not reached from the commit.
	Unreferenced      int
	UnreferencedBytes int64
}

// CollectionStats counts the records of one collection.
type CollectionStats struct {
	Collection string
	Records    int
	Bytes      int64 // sum of the record block sizes
}

// Verify checks the repository: the commit (structure, DID, signature with
// opts.Keys), then, unless opts.Partial, the whole MST (every node present
// and valid, keys in order at their heights), that rebuilding the tree from
// its keys gives exactly the commit's data CID, and that every record is
// present and (unless SkipRecords) a valid record. Block hashes were
// checked by OpenRepoCAR.
func (rc *RepoCAR) Verify(ctx context.Context, opts VerifyRepoOptions) (*RepoReport, error) {
	commit, commitCID, err := rc.Commit()
	if err != nil {
		return nil, err
	}
	if err := commit.VerifyStructure(); err != nil {
		return nil, fmt.Errorf("client: commit %s: %w", commitCID, err)
	}
	if opts.DID != "" && string(commit.DID) != opts.DID {
		return nil, fmt.Errorf("%w: the commit is signed for %s, not %s", ErrWrongRepo, commit.DID, opts.DID)
	}
	rep := &RepoReport{
		DID: commit.DID, Rev: commit.Rev, CommitCID: commitCID, Data: commit.Data, Version: commit.Version,
		CARBytes: rc.size, Blocks: len(rc.index), Sections: rc.sections, Partial: opts.Partial,
	}
	if opts.Keys != nil {
		key, err := verifyCommitSignature(ctx, commit, opts.Keys)
		if err != nil {
			return nil, fmt.Errorf("client: commit %s of %s: %w", commitCID, commit.DID, err)
		}
		rep.SignatureVerified, rep.Key = true, key
	}
	if opts.Partial {
		return rep, nil
	}
	if err := rc.verifyTree(ctx, commit, commitCID, rep, opts); err != nil {
		return nil, err
	}
	return rep, nil
}

// verifyCommitSignature checks the signature with the account's key,
// refreshing the key once if it fails. It returns the key's did:key.
func verifyCommitSignature(ctx context.Context, commit *repo.Commit, ks KeySource) (string, error) {
	key, err := signingKey(ctx, ks, commit.DID, false)
	if err != nil {
		return "", err
	}
	if err := commit.VerifySignature(key); err == nil {
		return key.DIDKey(), nil
	}
	key, err = signingKey(ctx, ks, commit.DID, true)
	if err != nil {
		return "", err
	}
	if err := commit.VerifySignature(key); err != nil {
		return "", fmt.Errorf("%w (key %s)", err, key.DIDKey())
	}
	return key.DIDKey(), nil
}

func (rc *RepoCAR) verifyTree(ctx context.Context, commit *repo.Commit, commitCID cid.Cid, rep *RepoReport, opts VerifyRepoOptions) error {
	tree, err := mst.Load(rc, commit.Data)
	if err != nil {
		return fmt.Errorf("client: MST root %s: %w", commit.Data, err)
	}
	if err := tree.Verify(); err != nil {
		return fmt.Errorf("client: MST: %w", err)
	}
	reached := map[cid.Cid]bool{commitCID: true}
	builder := mst.NewBuilder(func(c cid.Cid, data []byte) error {
		if !reached[c] {
			reached[c] = true
			rep.Nodes++
			rep.NodeBytes += int64(len(data))
		}
		return nil
	})
	colls := map[string]*CollectionStats{}
	blobs := map[cid.Cid]bool{}
	err = tree.Walk(nil, func(key []byte, val cid.Cid) error {
		if rep.Records%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if opts.Progress != nil && rep.Records > 0 {
				opts.Progress(rep.Records)
			}
		}
		path := string(key)
		ref, ok := rc.index[val]
		if !ok {
			return fmt.Errorf("%w: record %s (%s)", ErrMissingBlock, path, val)
		}
		rep.Records++
		coll, _, _ := strings.Cut(path, "/")
		cs := colls[coll]
		if cs == nil {
			cs = &CollectionStats{Collection: coll}
			colls[coll] = cs
		}
		cs.Records++
		cs.Bytes += int64(ref.n)
		if !reached[val] {
			reached[val] = true
			rep.RecordBytes += int64(ref.n)
			if !opts.SkipRecords {
				if err := rc.checkRecord(path, val, blobs, rep); err != nil {
					return err
				}
			}
		}
		return builder.Add(key, val)
	})
	if err != nil {
		return fmt.Errorf("client: MST: %w", err)
	}
	root, err := builder.Finish()
	if err != nil {
		return fmt.Errorf("client: rebuilding the MST: %w", err)
	}
	if root != commit.Data {
		return fmt.Errorf("%w: rebuilt root %s, commit data %s", ErrNotCanonical, root, commit.Data)
	}
	for c, ref := range rc.index {
		if !reached[c] {
			rep.Unreferenced++
			rep.UnreferencedBytes += int64(ref.n)
		}
	}
	for _, cs := range colls {
		rep.Collections = append(rep.Collections, *cs)
	}
	slices.SortFunc(rep.Collections, func(a, b CollectionStats) int { return strings.Compare(a.Collection, b.Collection) })
	if opts.Progress != nil {
		opts.Progress(rep.Records)
	}
	return nil
}

// checkRecord decodes a record block strictly and counts its blobs.
func (rc *RepoCAR) checkRecord(path string, c cid.Cid, blobs map[cid.Cid]bool, rep *RepoReport) error {
	data, err := rc.GetBlock(c)
	if err != nil {
		return err
	}
	rec, err := dagcbor.UnmarshalRecord(data)
	if err != nil {
		return fmt.Errorf("%w: %s (%s): %w", ErrInvalidRecord, path, c, err)
	}
	for _, b := range dagcbor.RecordBlobs(rec) {
		if !blobs[b.Ref] {
			blobs[b.Ref] = true
			rep.Blobs++
			rep.BlobBytes += max(b.Size, 0)
		}
	}
	return nil
}

// Records calls fn for every record of the repository, in key order, with
// its path, CID and DAG-CBOR bytes. The CAR must hold the whole tree.
func (rc *RepoCAR) Records(ctx context.Context, fn func(path string, c cid.Cid, data []byte) error) error {
	commit, _, err := rc.Commit()
	if err != nil {
		return err
	}
	tree, err := mst.Load(rc, commit.Data)
	if err != nil {
		return fmt.Errorf("client: MST root %s: %w", commit.Data, err)
	}
	n := 0
	return tree.Walk(nil, func(key []byte, val cid.Cid) error {
		if n++; n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		data, err := rc.GetBlock(val)
		if err != nil {
			return fmt.Errorf("record %s: %w", key, err)
		}
		return fn(string(key), val, data)
	})
}

// ReadRepoCAR reads a whole CAR from r into memory (at most limit bytes; 0
// means DefaultMaxCARBytes) and opens it.
func ReadRepoCAR(r io.Reader, limit int64) (*RepoCAR, error) {
	data, err := readLimited(r, orDefault(limit, DefaultMaxCARBytes))
	if err != nil {
		return nil, fmt.Errorf("client: repository CAR: %w", err)
	}
	return OpenRepoCAR(bytes.NewReader(data), int64(len(data)), nil)
}

// GetRepoVerified downloads the repository into memory (at most
// MaxCARBytes), then opens and verifies it with opts (opts.Partial is set
// when since is). For repositories too large for memory, stream GetRepo to
// a file and use OpenRepoCAR.
func (c *Client) GetRepoVerified(ctx context.Context, did, since string, opts VerifyRepoOptions) (*RepoCAR, *RepoReport, error) {
	body, err := c.GetRepo(ctx, did, since)
	if err != nil {
		return nil, nil, err
	}
	defer body.Close()
	rc, err := ReadRepoCAR(body, c.maxCAR())
	if err != nil {
		return nil, nil, err
	}
	if opts.DID == "" {
		opts.DID = did
	}
	opts.Partial = opts.Partial || since != ""
	rep, err := rc.Verify(ctx, opts)
	if err != nil {
		return nil, nil, err
	}
	return rc, rep, nil
}
