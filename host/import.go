package host

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/reservoir-atproto/reservoir/car"
	"github.com/reservoir-atproto/reservoir/repostore"
)

// ErrInvalidRepo is the class of repository CARs that fail verification.
var ErrInvalidRepo = errors.New("invalid repository")

// ImportRepo replaces a hosted account's repository with the one in a CAR
// (com.atproto.repo.importRepo). The CAR is verified fully first: every
// block's hash, the commit's structure, DID and signature (with the
// account's key), every MST node's structure, every record present, and
// the tree rebuilt from its records gives the same root (which refuses a
// validly signed but non-canonical MST). The imported commit is kept as it
// is, so the repository is served with the same blocks and root; its rev
// must be newer than the current one. One #sync event announces it.
func (h *Host) ImportRepo(ctx context.Context, did string, r io.Reader) error {
	unlock := h.locks.Lock(did)
	defer unlock()
	a, err := h.account(did)
	if err != nil {
		return err
	}
	if !a.Status.Active() {
		return fmt.Errorf("host: %s is %s: %w", did, a.Status, ErrNotActive)
	}
	sec, err := h.secrets(a.UID)
	if err != nil {
		return err
	}
	pub, err := sec.signing.PublicKey()
	if err != nil {
		return err
	}
	roots, blocks, err := car.ReadAll(r, &car.Options{MaxTotal: h.opts.MaxImportSize})
	if err != nil {
		return fmt.Errorf("host: import: %w: %w", ErrInvalidRepo, err)
	}
	if len(roots) == 0 {
		return fmt.Errorf("host: import: %w: the CAR has no root", ErrInvalidRepo)
	}
	commitCID := roots[0]
	next, err := repostore.VerifyRepo(did, blocks, commitCID, pub)
	if err != nil {
		return fmt.Errorf("host: import: %w: %w", ErrInvalidRepo, err)
	}
	commit := next.Commit
	if a.Head.Defined() && string(commit.Rev) <= a.Head.Rev {
		return fmt.Errorf("host: import: %w: rev %s is not after the current rev %s", ErrInvalidRepo, commit.Rev, a.Head.Rev)
	}
	now := h.opts.Now()
	c, err := h.repos.ReplaceChange(a, next, now)
	if err != nil {
		return err
	}
	c.Events = append(c.Events, repostore.SyncEvent(did, commitCID, next.CommitBytes, string(commit.Rev), now))
	if _, err := h.db.Apply(ctx, c); err != nil {
		return fmt.Errorf("host: import into %s: %w", did, err)
	}
	h.log.Info("repository imported", "did", did, "rev", commit.Rev, "records", len(next.Records))
	return nil
}
