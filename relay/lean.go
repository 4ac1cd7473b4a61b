package relay

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

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

// recordMirrorMode runs at start: an archive records its mode; a lean
// relay started on a store whose mirrors were archived (the mode recorded
// is not lean) drops their content, which nothing reads any more (its
// reads of mirrors redirect to their PDS), so that the switch frees the
// disk it promises. A later switch back to archive resyncs each mirror at
// its next commit, as it finds no stored tree (no head commit block).
func (in *Ingest) recordMirrorMode() {
	defer in.resyncers.Done()
	mode, err := in.db.MirrorMode()
	if err != nil {
		in.log.Error("reading the mirror mode", "err", err)
		return
	}
	if !in.opts.Lean {
		if mode != store.MirrorArchive {
			if err := in.db.SetMirrorMode(store.MirrorArchive); err != nil {
				in.log.Error("recording the mirror mode", "err", err)
			}
		}
		return
	}
	if mode == store.MirrorLean {
		return
	}
	n, err := in.dropMirrorContent(in.resyncCtx)
	if err != nil {
		if in.resyncCtx.Err() == nil {
			in.log.Error("dropping the archived content of mirrors", "err", err, "dropped", n)
		}
		return // the next start goes on
	}
	if err := in.db.SetMirrorMode(store.MirrorLean); err != nil {
		in.log.Error("recording the mirror mode", "err", err)
		return
	}
	in.log.Info("lean relay: dropped the archived content of mirrored repositories", "repositories", n)
}

// dropMirrorContent removes the content of every mirrored repository that
// has blocks stored, keeping its state (head, status, collection counts),
// one store change each, and returns how many it dropped. Hosted
// repositories keep theirs. A lean ingest writes no content of mirrors, so
// the changes race with nothing of it. dropConcurrency changes wait for
// the committer at once, so that they share group commits (one at a time,
// each would wait for its own fsync: an hour for a million mirrors).
func (in *Ingest) dropMirrorContent(ctx context.Context) (int, error) {
	var (
		wg      sync.WaitGroup
		sem     = make(chan struct{}, dropConcurrency)
		dropped atomic.Int64
		mu      sync.Mutex
		first   error // of the drops running in the background
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
	}
	failing := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return first != nil
	}
	err := func() error {
		for after := uint64(0); !failing(); {
			if err := ctx.Err(); err != nil {
				return err
			}
			uid, ok, err := in.db.NextUIDWithBlocks(after)
			if err != nil || !ok {
				return err
			}
			after = uid
			did, err := in.db.DIDForUID(uid)
			if err != nil {
				return fmt.Errorf("relay: the DID of uid %d: %w", uid, err)
			}
			a, err := in.account(did)
			if err != nil {
				return err
			}
			if a == nil || a.Hosted {
				continue
			}
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if _, err := in.db.Apply(ctx, &store.Change{UID: uid, DropContent: true}); err != nil {
					fail(fmt.Errorf("relay: dropping the content of %s: %w", did, err))
					return
				}
				dropped.Add(1)
			})
		}
		return nil
	}()
	wg.Wait()
	if err == nil {
		err = first
	}
	return int(dropped.Load()), err
}

// dropConcurrency is how many content drops wait for the store at once.
const dropConcurrency = 64
