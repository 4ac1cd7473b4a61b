package relay

import (
	"context"
	"errors"
	"fmt"

	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
)

var (
	// ErrNotMirrored: the account is not one the relay mirrors (unknown
	// here, or hosted by this service).
	ErrNotMirrored = errors.New("relay: not a mirrored account")
	// ErrStatusNotOurs: a status the relay cannot set on a mirrored account
	// (deactivation and deletion are the account's own, on its PDS).
	ErrStatusNotOurs = errors.New("relay: status not set by the relay")
)

// localChange is a change of our own to a mirrored account, queued behind
// the account's upstream events so that their order holds: what was
// submitted before it is handled with the old status, what comes after
// with the new one.
type localChange struct {
	did    string
	status store.Status
	done   chan error // buffered: the worker never waits for the caller
}

// SetStatus sets our own status of a mirrored account: a takedown or a
// suspension (store.StatusTakendown, StatusSuspended), or its reversal
// (StatusActive). The change is queued behind the account's events in
// flight and applied by the worker that runs them; SetStatus waits for it
// (or for ctx, after which the change still happens). The status served is
// combined with the host's (sync-spec §7.1: our takedown first); our
// #account says so. A taken-down account drops its upstream commits and
// answers RepoTakendown on reads; its reversal emits #account (and #sync of
// the stored head, when the archive holds it) and fetches the repository
// again, since the commits dropped meanwhile broke the chain. It returns
// ErrNotMirrored for an account the relay does not mirror and
// ErrStatusNotOurs for other statuses.
func (in *Ingest) SetStatus(ctx context.Context, did string, status store.Status) error {
	switch status {
	case store.StatusTakendown, store.StatusSuspended, store.StatusActive:
	default:
		return fmt.Errorf("%w: %q", ErrStatusNotOurs, status)
	}
	lc := &localChange{did: did, status: status, done: make(chan error, 1)}
	if err := in.enqueue(ctx, &queuedEvent{local: lc}); err != nil {
		return err
	}
	select {
	case err := <-lc.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// runLocal applies a local change, in the account's turn.
func (in *Ingest) runLocal(lc *localChange) {
	err := in.applyLocalStatus(context.Background(), lc.did, lc.status)
	if err != nil && !errors.Is(err, ErrNotMirrored) {
		in.log.Error("setting the status of a mirrored account", "did", lc.did, "status", lc.status, "err", err)
	}
	lc.done <- err
}

func (in *Ingest) applyLocalStatus(ctx context.Context, did string, status store.Status) error {
	a, err := in.account(did)
	if err != nil {
		return err
	}
	if a == nil || a.Hosted || a.Status == store.StatusDeleted {
		return fmt.Errorf("%w: %s", ErrNotMirrored, did)
	}
	before := a.Status
	local := localStatus(a)
	switch status {
	case store.StatusTakendown, store.StatusSuspended:
		local = status
	case store.StatusActive:
		if local != store.StatusTakendown && local != store.StatusSuspended {
			return nil // nothing of ours to lift
		}
		local = store.StatusActive
	}
	a.Status = combineStatus(local, a.Upstream)
	if a.Status == before {
		return nil
	}
	c := &store.Change{UID: a.UID, Account: a, OldHandle: a.Handle}
	c.Events = append(c.Events, in.accountEvent(a))
	reactivated := !before.Active() && a.Status.Active()
	if reactivated && a.Head.Defined() {
		if ev, ok := in.headSync(a); ok {
			c.Events = append(c.Events, ev)
		}
	}
	if err := in.apply(ctx, c); err != nil {
		return err
	}
	if reactivated && a.Head.Defined() {
		// Commits were dropped while the account was inactive here: fetch
		// the current state (events wait for it; a resync of an unchanged
		// repository writes nothing).
		in.requestResync(did, a.Host, true)
	}
	return nil
}

// headSync is the #sync of the stored head, when the store holds its
// commit block (an archived account).
func (in *Ingest) headSync(a *store.Account) (store.FrameEncoder, bool) {
	data, _, err := in.db.Block(a.UID, a.Head.Commit)
	if err != nil {
		return nil, false
	}
	c, err := repo.DecodeCommit(data)
	if err != nil {
		return nil, false
	}
	return repostore.SyncEvent(a.DID, a.Head.Commit, data, string(c.Rev), in.opts.Now()), true
}
