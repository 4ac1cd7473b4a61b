package repostore

import (
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/car"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/store"
)

// ErrNoHead is returned for a repository without a commit.
var ErrNoHead = errors.New("repository has no commit")

// WriteRepo streams the repository as a CAR whose root is the head commit:
// every live block (the commit, all MST nodes, all records), or with since
// set only the blocks that commits after that rev stored. Blocks come in
// store order, which consumers must accept (any order is valid). Memory
// stays constant whatever the repository's size.
func (r *Repos) WriteRepo(w io.Writer, a *store.Account, since string) error {
	if !a.Head.Defined() {
		return ErrNoHead
	}
	cw, err := r.StreamRepo(a, since, func(root cid.Cid) (*car.Writer, error) {
		return car.NewWriter(w, []cid.Cid{root})
	})
	if err != nil {
		return err
	}
	return cw.Flush()
}

// errUpToDate stops a since scan whose since is the head or later.
var errUpToDate = errors.New("nothing newer than since")

// StreamRepo writes the blocks of WriteRepo through the CAR writer that
// newWriter makes for the root, and returns it for the caller to flush.
// The head and the blocks come from one view of the store (a commit landing
// meanwhile is not half seen), so the root is the head read there, which
// may be newer than a's. The commit block goes first (the start of the
// spec's streamable order, which some consumers expect even though any
// order is valid); the rest follow in store order.
func (r *Repos) StreamRepo(a *store.Account, since string, newWriter func(root cid.Cid) (*car.Writer, error)) (*car.Writer, error) {
	var cw *car.Writer
	err := r.DB.RepoAtHead(a.UID, since, func(h store.Head, commit []byte) error {
		var err error
		if cw, err = newWriter(h.Commit); err != nil {
			return err
		}
		if since != "" && h.Rev <= since {
			return errUpToDate // nothing is newer than since
		}
		return cw.WriteBlock(h.Commit, commit)
	}, func(cidBytes, data []byte) error {
		return cw.WriteRawBlock(cidBytes, data)
	})
	switch {
	case errors.Is(err, errUpToDate):
		return cw, nil
	case cw == nil && errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("repostore: %s: %w: %w", a.DID, ErrNoHead, err)
	case err != nil:
		return nil, err
	}
	return cw, nil
}

// RecordProof returns the getRecord CAR for path: the head commit, the
// MST nodes that prove the record present or absent, and the record block
// when present.
func (r *Repos) RecordProof(a *store.Account, path string) (carBytes []byte, found bool, err error) {
	if !a.Head.Defined() {
		return nil, false, ErrNoHead
	}
	buf := car.AppendHeader(nil, a.Head.Commit)
	found, err = repo.RecordProof(r.Blocks(a.UID), a.Head.Commit, path, func(c cid.Cid, data []byte) error {
		buf = car.AppendBlock(buf, c, data)
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return buf, found, nil
}

// MissingBlocksError lists the CIDs a getBlocks request asked for that the
// repository does not have.
type MissingBlocksError struct{ CIDs []cid.Cid }

func (e *MissingBlocksError) Error() string {
	return fmt.Sprintf("repostore: %d blocks not found, first %s", len(e.CIDs), e.CIDs[0])
}

// GetBlocks returns the requested blocks of the repository (live or inside
// the history window), in order. When any is missing the error is a
// *MissingBlocksError listing them all.
func (r *Repos) GetBlocks(a *store.Account, cids []cid.Cid) ([][]byte, error) {
	blocks := make([][]byte, len(cids))
	var missing []cid.Cid
	for i, c := range cids {
		data, _, err := r.DB.Block(a.UID, c)
		if errors.Is(err, store.ErrNotFound) {
			missing = append(missing, c)
			continue
		}
		if err != nil {
			return nil, err
		}
		blocks[i] = data
	}
	if len(missing) > 0 {
		return nil, &MissingBlocksError{CIDs: missing}
	}
	return blocks, nil
}

// Record returns a record's CID and bytes from the MST at the head, or
// store.ErrNotFound.
func (r *Repos) Record(a *store.Account, path string) (cid.Cid, []byte, error) {
	if !a.Head.Defined() {
		return cid.Undef, nil, store.ErrNotFound
	}
	tree, err := r.Tree(a)
	if err != nil {
		return cid.Undef, nil, err
	}
	c, err := tree.Get([]byte(path))
	if err != nil {
		return cid.Undef, nil, fmt.Errorf("repostore: record %s: %w", path, err)
	}
	if !c.Defined() {
		return cid.Undef, nil, store.ErrNotFound
	}
	data, _, err := r.DB.Block(a.UID, c)
	if err != nil {
		return cid.Undef, nil, fmt.Errorf("repostore: record %s at %s: %w", c, path, err)
	}
	return c, data, nil
}
