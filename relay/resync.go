package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/car"
	"github.com/reservoir-atproto/reservoir/internal/netguard"
	"github.com/reservoir-atproto/reservoir/mst"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
)

// Results of a resync (the result label of relay_ingest_resyncs_total).
const (
	resyncReplaced   = "replaced"  // the stored repository was replaced by the fetched one
	resyncUnchanged  = "unchanged" // the fetched repository was the stored one
	resyncFailed     = "failed"    // fetching or verifying failed: the account stays desynchronized
	resyncSkipped    = "skipped"   // the account is not active, or the ingest is closing
	resyncDropped    = "dropped"   // not queued: too many pending
	resyncBackingOff = "backoff"   // not queued: the account's last resync failed recently
)

// requestResync asks for a resync of did (from its PDS, which must be
// hostname for an account not stored yet). Until it is done the account's
// events wait in its queue. It reports whether a resync is pending: false
// when the ingest is closing, the account is backing off after failures
// (unless force), or MaxPendingResyncs are waiting.
func (in *Ingest) requestResync(did, hostname string, force bool) bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closing {
		return false
	}
	if b := in.backoff[did]; b != nil && !force && in.opts.Now().Before(b.next) {
		in.m.resync(resyncBackingOff)
		return false
	}
	q := in.queues[did]
	if q == nil {
		q = &didQueue{did: did}
		in.queues[did] = q
	}
	if q.resync != resyncNone {
		return true
	}
	select {
	case in.resyncCh <- q:
		in.holdLocked(q, hostname)
		return true
	default:
		in.m.resync(resyncDropped)
		in.scheduleLocked(q) // frees it if idle
		return false
	}
}

// resyncWorker runs queued resyncs until Close, then releases the ones
// still waiting without running them.
func (in *Ingest) resyncWorker() {
	defer in.resyncers.Done()
	for {
		select {
		case q := <-in.resyncCh:
			in.runResync(in.resyncCtx, q)
		case <-in.resyncCtx.Done():
			for {
				select {
				case q := <-in.resyncCh:
					in.runResync(in.resyncCtx, q)
				default:
					return
				}
			}
		}
	}
}

// runResync waits until the event of q's account being processed (if any)
// is done, holds the account while it resyncs, then lets its events run.
func (in *Ingest) runResync(ctx context.Context, q *didQueue) error {
	in.mu.Lock()
	for q.running {
		in.idle.Wait()
	}
	q.resync = resyncActive
	hostname := q.host
	in.mu.Unlock()

	err := ctx.Err()
	if err == nil {
		err = in.resync(ctx, q.did, hostname)
	} else {
		in.m.resync(resyncSkipped)
	}

	in.mu.Lock()
	switch {
	case err == nil:
		in.forgetBackoffLocked(q.did)
	case ctx.Err() == nil:
		in.backOffLocked(q.did, hostname)
	}
	in.releaseLocked(q)
	if in.drainedLocked() {
		in.work.Broadcast()
	}
	in.mu.Unlock()
	return err
}

// Backfill fetches the whole repository of did from its PDS (whose host
// must be hostname for an account not stored yet), verifies it and replaces
// the stored copy, as a resync does, in the calling goroutine; the
// account's upstream events wait meanwhile and those it already covers are
// then dropped as stale. A host manager backfilling a new host calls it for
// each account of listRepos, with its own concurrency and rate limits. It
// returns nil at once when a resync of did is already pending or running.
func (in *Ingest) Backfill(ctx context.Context, hostname, did string) error {
	if _, err := syntax.ParseDID(did); err != nil {
		return fmt.Errorf("relay: backfill: %w", err)
	}
	in.mu.Lock()
	if in.closing {
		in.mu.Unlock()
		return ErrIngestClosed
	}
	q := in.queues[did]
	if q == nil {
		q = &didQueue{did: did}
		in.queues[did] = q
	}
	if q.resync != resyncNone {
		in.mu.Unlock()
		return nil
	}
	in.holdLocked(q, hostname)
	in.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(in.resyncCtx, cancel)
	defer stop()
	return in.runResync(ctx, q)
}

// resync replaces the stored copy of did's repository with the one its PDS
// serves (getRepo), verified fully against the current key, and emits our
// #sync (and #account when that ends a desynchronized state we announced).
// The account's queue is held: nothing else writes it meanwhile.
func (in *Ingest) resync(ctx context.Context, did, hostname string) (err error) {
	defer func() {
		if err != nil {
			in.m.resync(resyncFailed)
			in.log.Info("resync failed", "did", did, "host", hostname, "err", err)
		}
	}()
	a, err := in.account(did)
	if err != nil {
		return err
	}
	if a != nil && a.Hosted {
		return fmt.Errorf("relay: resync of %s: hosted here", did)
	}
	if a != nil && !a.Status.Active() {
		in.m.resync(resyncSkipped)
		return nil
	}
	id, err := in.ident.LookupDID(ctx, syntax.DID(did))
	if err != nil {
		return fmt.Errorf("relay: resync of %s: %w: %w", did, errIdentity, err)
	}
	if id.PDSEndpoint == "" {
		return fmt.Errorf("relay: resync of %s: %w: no PDS", did, errIdentity)
	}
	pdsHost := endpointHost(id.PDSEndpoint)
	if h, err := in.db.Host(pdsHost); err == nil && h.Status == store.HostBanned {
		// Nothing is fetched from a banned host; the account stays as it
		// is, and its timed retries find the host unbanned or not.
		return fmt.Errorf("relay: resync of %s: %w: %s", did, ErrHostBanned, pdsHost)
	}
	if a == nil {
		if pdsHost != strings.ToLower(hostname) {
			return fmt.Errorf("relay: resync of %s: %w: hosted at %s, not %s", did, errWrongHost, id.PDSEndpoint, hostname)
		}
		a = in.newMirrored(did, pdsHost, id)
		if err := in.markDesynchronized(ctx, a); err != nil { // creates it
			return err
		}
	}
	blocks, root, err := in.fetchRepo(ctx, id.PDSEndpoint, did)
	if err != nil {
		return fmt.Errorf("relay: resync of %s: %w", did, err)
	}
	var next *repostore.VerifiedRepo
	err = in.withKey(ctx, did, func(key atcrypto.PublicKey) (err error) {
		next, err = repostore.VerifyRepo(did, blocks, root, key)
		return err
	})
	if err != nil {
		return fmt.Errorf("relay: resync of %s: %w", did, err)
	}
	now := in.opts.Now()
	if next.Commit.Rev.Time().After(now.Add(repo.MaxRevSkew)) {
		return fmt.Errorf("relay: resync of %s: %w: rev %s", did, repo.ErrFutureRev, next.Commit.Rev)
	}
	// Read the account again: an admin may have changed it meanwhile.
	if a, err = in.account(did); err != nil || a == nil {
		return fmt.Errorf("relay: resync of %s: account gone: %v", did, err)
	}
	if a.Head.Defined() && string(next.Commit.Rev) < a.Head.Rev {
		return fmt.Errorf("relay: resync of %s: the PDS serves rev %s, older than the stored %s", did, next.Commit.Rev, a.Head.Rev)
	}
	announced := a.Head.Defined() && a.Status == store.StatusDesynchronized
	before := *a
	if local := localStatus(a); local == store.StatusDesynchronized {
		a.Status = combineStatus(store.StatusActive, a.Upstream)
	}
	if a.Host != pdsHost {
		in.opts.DiscoverHost(id.PDSEndpoint) // it moved: follow its new host
	}
	a.Host = pdsHost
	a.Handle = verifiedHandle(id)
	c := &store.Change{UID: a.UID}
	changed := !a.Head.Defined() || next.CID != a.Head.Commit
	if changed {
		if in.opts.Lean {
			c, err = in.repos.HeadReplaceChange(a, next) // the head only (lean.go)
		} else {
			c, err = in.repos.ReplaceChange(a, next, now)
		}
		if err != nil {
			return err
		}
	}
	c.Account, c.OldHandle = a, before.Handle
	if announced && a.Status != before.Status {
		c.Events = append(c.Events, in.accountEvent(a))
	}
	if changed {
		c.Events = append(c.Events, repostore.SyncEvent(did, next.CID, next.CommitBytes, string(next.Commit.Rev), now))
	}
	if !changed && a.Status == before.Status && a.Handle == before.Handle && a.Host == before.Host {
		in.m.resync(resyncUnchanged)
		return nil // nothing to write
	}
	if err := in.apply(ctx, c); err != nil {
		return err
	}
	if changed {
		in.m.resync(resyncReplaced)
	} else {
		in.m.resync(resyncUnchanged)
	}
	in.log.Info("resynced", "did", did, "rev", next.Commit.Rev, "records", len(next.Records), "changed", changed)
	return nil
}

// fetchRepo GETs the whole repository from the PDS, bounded in time and
// size, and returns its blocks (each checked against its CID) and root.
func (in *Ingest) fetchRepo(ctx context.Context, pds, did string) (mst.MemBlocks, cid.Cid, error) {
	ctx, cancel := context.WithTimeout(ctx, in.opts.ResyncTimeout)
	defer cancel()
	u := strings.TrimSuffix(pds, "/") + "/xrpc/com.atproto.sync.getRepo?did=" + url.QueryEscape(did)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, cid.Undef, err
	}
	req.Header.Set("Accept", "application/vnd.ipld.car")
	resp, err := in.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, cid.Undef, fmt.Errorf("getRepo: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, cid.Undef, fmt.Errorf("getRepo: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	roots, blocks, err := car.ReadAll(resp.Body, &car.Options{MaxTotal: in.opts.MaxRepoSize})
	if err != nil {
		return nil, cid.Undef, fmt.Errorf("getRepo: %w: %w", repostore.ErrInvalidRepo, err)
	}
	if len(roots) == 0 {
		return nil, cid.Undef, fmt.Errorf("getRepo: %w: the CAR has no root", repostore.ErrInvalidRepo)
	}
	return blocks, roots[0], nil
}

// sweepDesynchronized queues a resync of every mirrored account left
// desynchronized, pacing itself to the pending limit, until done or Close.
func (in *Ingest) sweepDesynchronized() {
	defer in.resyncers.Done()
	var after uint64
	for {
		page, err := in.db.Accounts(after, 1000)
		if err != nil {
			in.log.Error("sweeping desynchronized accounts", "err", err)
			return
		}
		if len(page) == 0 {
			return
		}
		for _, a := range page {
			after = a.UID
			if a.Hosted || a.Status != store.StatusDesynchronized {
				continue
			}
			for !in.requestResync(a.DID, a.Host, true) {
				select {
				case <-in.resyncCtx.Done():
					return
				case <-time.After(time.Second):
				}
			}
		}
	}
}

// newResyncClient is the default client of getRepo fetches: its dialer
// refuses loopback, private, link-local and other non-public addresses
// (checked on the address dialed, after resolution) unless allowInsecure.
func newResyncClient(allowInsecure bool) *http.Client {
	d := netguard.Dialer(allowInsecure, 30*time.Second)
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = d.DialContext
	t.Proxy = nil
	return &http.Client{
		Transport: t,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("relay: too many redirects")
			}
			if req.URL.Scheme != "https" && !allowInsecure {
				return errors.New("relay: redirect to a non-https URL")
			}
			return nil
		},
	}
}
