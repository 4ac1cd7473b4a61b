package relay

import (
	"context"

	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/store"
)

// The lean relay (IngestOptions.Lean, serve --archive=false) keeps of a
// mirrored account only its state: the head (rev, commit CID, data CID),
// status, host and handle, and its record count per collection. Commits
// are verified with every sync-1.1 check that needs no stored tree
// (repo.VerifyCommitMessage: the signature with the account's key, rev
// order and clock skew, the commit is the CAR root, the inversion of the
// ops gives the stored prevData, the ops and size limits; and, before it,
// the event's host against the DID document) and re-broadcast in the same
// store change that moves the head. A resync fetches getRepo, verifies it
// fully, and stores only the new head and counts, with our #sync. Without
// prevData (--lenient, legacy hosts) a lean relay cannot check the ops
// against anything: the commit goes through on the other checks, as the
// reference relay does.

// applyLean stores a verified commit on a lean mirror: the new head, the
// collection counts and the #commit frame (the upstream's blocks
// unchanged), in one change.
func (in *Ingest) applyLean(ctx context.Context, a *store.Account, ev *wire.CommitEvent, vc *repo.VerifiedCommit, moved bool) error {
	c, err := in.repos.HeadChange(a, commitResult(ev, vc), in.opts.Now())
	if err != nil {
		return err
	}
	return in.applyCommitChange(ctx, a, c, moved)
}
