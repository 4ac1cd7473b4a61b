package relay_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/identity"
	"github.com/reservoir-atproto/reservoir/relay"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
)

var testTime = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// syncFrame is the upstream's #sync of its current head of did.
func (u *upstream) syncFrame(did string, seq int64) frame {
	u.t.Helper()
	a, err := u.db.Account(did)
	if err != nil {
		u.t.Fatal(err)
	}
	data, _, err := u.db.Block(a.UID, a.Head.Commit)
	if err != nil {
		u.t.Fatal(err)
	}
	return frame{seq, repostore.SyncEvent(did, a.Head.Commit, data, a.Head.Rev, testTime)(nil, seq)}
}

// newSynced is an upstream with one account of a few records, mirrored.
func newSynced(t *testing.T) (*fakeIdentity, *upstream, string, *mirror) {
	ident := newFakeIdentity()
	up := newUpstream(t)
	did := up.createAccount(ident, "alice.test")
	up.write(did, create("app.bsky.feed.post/a", "a"), create("app.bsky.graph.follow/f", "f"))
	up.write(did, create("app.bsky.feed.post/b", "b"))
	m := newMirror(t, ident)
	m.submit(up.hostname, frames(t, up.db, 0)...)
	m.settle()
	sameRepo(t, up.db, m.db, did)
	return ident, up, did, m
}

// #sync (sync-spec §5.2): the same commit is a no-op; a newer state the
// firehose did not carry is fetched whole and announced by our own #sync; a
// #sync that does not verify desynchronizes the account.
func TestIngestSync(t *testing.T) {
	_, up, did, m := newSynced(t)
	ourMark := m.db.LastSeq()
	m.submit(up.hostname, up.syncFrame(did, 100))
	m.settle()
	if log := frames(t, m.db, ourMark); len(log) != 0 {
		t.Fatalf("a #sync of our head forwarded %d frames", len(log))
	}

	// Commits the relay never saw, then the #sync of their result.
	up.write(did, create("app.bsky.feed.post/c", "c"), del("app.bsky.feed.post/a"))
	up.write(did, create("app.bsky.feed.post/d", "d"))
	m.submit(up.hostname, up.syncFrame(did, 101))
	m.settle()
	eventuallyTrue(t, "the resync", func() bool { return head(t, m.db, did) == head(t, up.db, did) })
	m.idle() // the resync is over: LastSeq counts its #sync
	sameRepo(t, up.db, m.db, did)
	log := decodeLog(t, m.db, ourMark)
	if len(log) != 1 || log[0].ev.Type() != wire.TypeSync {
		t.Fatalf("after a newer #sync our log holds %d frames", len(log))
	}
	if _, c, err := repo.VerifySyncMessage(log[0].ev.(*wire.SyncEvent).Message(), pubKeys(up)[did]); err != nil || c != head(t, up.db, did).Commit {
		t.Fatalf("our #sync: %v", err)
	}
	// The commits it covered, arriving late, are stale.
	ourMark = m.db.LastSeq()
	m.submit(up.hostname, frames(t, up.db, 0)...)
	m.settle()
	if log := decodeLog(t, m.db, ourMark); len(log) != 2 { // only the #identity and #account again
		t.Fatalf("late commits forwarded: %d frames", len(log))
	}

	// A #sync signed by another key.
	other, _ := atcrypto.GeneratePrivateKeyK256()
	up.write(did, create("app.bsky.feed.post/e", "e"))
	a, _ := up.db.Account(did)
	data, _, _ := up.db.Block(a.UID, a.Head.Commit)
	c, _ := repo.DecodeCommit(data)
	_ = c.Sign(other)
	forged := repostore.SyncEvent(did, c.CID(), c.Bytes(), string(c.Rev), testTime)(nil, 102)
	ourMark = m.db.LastSeq()
	m.submit(up.hostname, frame{102, forged})
	m.settle()
	caughtUp(t, "the resync", m.db, up, did)
	if n := m.counter("relay_ingest_verify_failures_total", map[string]string{"check": "signature"}); n != 1 {
		t.Fatalf("signature failures %v", n)
	}
	types := []string{}
	for _, d := range decodeLog(t, m.db, ourMark) {
		types = append(types, d.ev.Type())
	}
	if len(types) != 3 || types[0] != wire.TypeAccount || types[2] != wire.TypeSync {
		t.Fatalf("after a forged #sync: %v", types)
	}
}

// #identity purges the cache, stores the verified handle, and is forwarded
// with the handle only when the DID document declares it.
func TestIngestIdentity(t *testing.T) {
	ident, up, did, m := newSynced(t)
	purges := ident.count(ident.purges, did)
	ident.update(did, func(id *identity.Identity) {
		id.Handle, id.DeclaredHandle = "alice2.test", "alice2.test"
	})
	ourMark := m.db.LastSeq()
	m.submit(up.hostname,
		frame{200, (&wire.Identity{DID: did, Handle: "Alice2.TEST", Time: testTime}).AppendFrame(nil, 200)},
		frame{201, (&wire.Identity{DID: did, Handle: "mallory.test", Time: testTime}).AppendFrame(nil, 201)},
	)
	m.settle()
	if n := ident.count(ident.purges, did); n != purges+2 {
		t.Fatalf("%d purges, want %d", n, purges+2)
	}
	a, _ := m.db.Account(did)
	if a.Handle != "alice2.test" {
		t.Fatalf("stored handle %q", a.Handle)
	}
	if d, err := m.db.DIDForHandle("alice2.test"); err != nil || d != did {
		t.Fatalf("handle index: %q %v", d, err)
	}
	log := decodeLog(t, m.db, ourMark)
	if len(log) != 2 || log[0].ev.(*wire.IdentityEvent).Handle != "alice2.test" || log[1].ev.(*wire.IdentityEvent).Handle != "" {
		t.Fatalf("forwarded %+v, %+v", log[0].ev, log[1].ev)
	}

	// A handle only claimed (not verified) is not stored.
	ident.update(did, func(id *identity.Identity) { id.Handle, id.DeclaredHandle = syntax.HandleInvalid, "bob.test" })
	m.submit(up.hostname, frame{202, (&wire.Identity{DID: did, Handle: "bob.test", Time: testTime}).AppendFrame(nil, 202)})
	m.settle()
	if a, _ := m.db.Account(did); a.Handle != "" {
		t.Fatalf("unverified handle stored: %q", a.Handle)
	}
	if _, err := m.db.DIDForHandle("alice2.test"); err == nil {
		t.Fatal("the old handle is still indexed")
	}
	log = decodeLog(t, m.db, ourMark)
	if h := log[len(log)-1].ev.(*wire.IdentityEvent).Handle; h != "bob.test" {
		t.Fatalf("forwarded handle %q, want the declared one", h)
	}
}

// #account: the host's status is stored and combined with ours, and
// forwarded with the combined state; commits of an inactive account are
// dropped; our takedown outranks the host's "active"; an inactive status
// without a known value never becomes "inactive"; a deletion removes the
// repository and purges the account's events.
func TestIngestAccount(t *testing.T) {
	_, up, did, m := newSynced(t)
	seq := int64(300)
	account := func(active bool, status string) frame {
		seq++
		return frame{seq, (&wire.Account{DID: did, Active: active, Status: status, Time: testTime}).AppendFrame(nil, seq)}
	}
	last := func() *wire.AccountEvent {
		log := decodeLog(t, m.db, 0)
		return log[len(log)-1].ev.(*wire.AccountEvent)
	}
	stored := func() *store.Account {
		a, err := m.db.Account(did)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	m.submit(up.hostname, account(false, "deactivated"))
	m.settle()
	if a := stored(); a.Status != store.StatusDeactivated || a.Upstream != store.StatusDeactivated {
		t.Fatalf("after deactivation: %q / %q", a.Status, a.Upstream)
	}
	if e := last(); e.Active || e.Status != "deactivated" {
		t.Fatalf("forwarded %+v", e)
	}
	mark, ourMark := up.db.LastSeq(), m.db.LastSeq()
	up.write(did, create("app.bsky.feed.post/z", "z"))
	commit := frames(t, up.db, mark)
	m.submit(up.hostname, commit...)
	m.settle()
	if log := frames(t, m.db, ourMark); len(log) != 0 {
		t.Fatal("a commit of a deactivated account was forwarded")
	}

	m.submit(up.hostname, account(true, ""))
	m.submit(up.hostname, commit...)
	m.settle()
	if a := stored(); a.Status != store.StatusActive || a.Upstream != store.StatusActive {
		t.Fatalf("after reactivation: %q / %q", a.Status, a.Upstream)
	}
	sameRepo(t, up.db, m.db, did)

	// Our own takedown (as an admin would set it) outranks the host.
	a := stored()
	a.Status = store.StatusTakendown
	if _, err := m.db.Apply(context.Background(), &store.Change{UID: a.UID, Account: a, OldHandle: a.Handle}); err != nil {
		t.Fatal(err)
	}
	m.submit(up.hostname, account(true, ""))
	m.settle()
	if e := last(); e.Active || e.Status != "takendown" || stored().Status != store.StatusTakendown {
		t.Fatalf("host's active over our takedown: forwarded %+v", e)
	}
	m.submit(up.hostname, account(false, "suspended"))
	m.settle()
	if a := stored(); a.Status != store.StatusTakendown || a.Upstream != store.StatusSuspended {
		t.Fatalf("host's suspension over our takedown: %q / %q", a.Status, a.Upstream)
	}
	a = stored()
	a.Status = store.StatusActive // our takedown lifted (the host's suspension stays)
	if _, err := m.db.Apply(context.Background(), &store.Change{UID: a.UID, Account: a, OldHandle: a.Handle}); err != nil {
		t.Fatal(err)
	}

	m.submit(up.hostname, account(false, ""))
	m.settle()
	if e := last(); e.Active || e.Status != "deactivated" {
		t.Fatalf("inactive without status forwarded as %+v", e)
	}
	m.submit(up.hostname, account(false, "weird"))
	m.settle()
	if e := last(); e.Active || e.Status != "deactivated" {
		t.Fatalf("inactive with an unknown status forwarded as %+v", e)
	}

	// Deletion.
	m.submit(up.hostname, account(false, "deleted"))
	m.settle()
	a = stored()
	if a.Status != store.StatusDeleted || a.Head.Defined() {
		t.Fatalf("after deletion: %+v", a)
	}
	if err := (&repostore.Repos{DB: m.db}).WriteRepo(new(discard), a, ""); !errors.Is(err, repostore.ErrNoHead) {
		t.Fatalf("getRepo after deletion: %v", err)
	}
	seqs, _ := m.db.EventSeqs(a.UID)
	if len(seqs) != 1 {
		t.Fatalf("%d events of the deleted account left in the log", len(seqs))
	}
	if e := last(); e.Active || e.Status != "deleted" {
		t.Fatalf("forwarded %+v", e)
	}
	if n, _ := m.db.ReposByCollection("app.bsky.feed.post", 0, 10); len(n) != 0 {
		t.Fatal("the deleted repository is still in the collection index")
	}

	// A deletion of an account never seen creates nothing.
	ghost := newDID()
	m.submit(up.hostname, frame{400, (&wire.Account{DID: ghost, Status: "deleted", Time: testTime}).AppendFrame(nil, 400)})
	m.settle()
	if _, err := m.db.Account(ghost); err == nil {
		t.Fatal("a deleted unknown account was created")
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// A relay that starts following a host late sees commits of repositories it
// does not hold: each is fetched whole (created desynchronized, then
// resynced) and later commits apply on top.
func TestIngestLateStart(t *testing.T) {
	ident := newFakeIdentity()
	up := newUpstream(t)
	did := up.createAccount(ident, "early.test")
	for i := range 5 {
		up.write(did, create("app.bsky.feed.post/"+string(rune('a'+i)), "x"))
	}
	all := frames(t, up.db, 0)
	m := newMirror(t, ident)
	m.submit(up.hostname, all[len(all)-1]) // only the last commit
	m.settle()
	caughtUp(t, "the resync", m.db, up, did)
	sameRepo(t, up.db, m.db, did)
	log := decodeLog(t, m.db, 0)
	if len(log) != 1 || log[0].ev.Type() != wire.TypeSync { // never announced as desynchronized
		t.Fatalf("our log: %d frames", len(log))
	}
	mark := up.db.LastSeq()
	up.write(did, del("app.bsky.feed.post/a"))
	m.submit(up.hostname, frames(t, up.db, mark)...)
	m.settle()
	sameRepo(t, up.db, m.db, did)
}

// Backfill fetches a repository whole in the caller's goroutine, creating
// the account; it refuses a DID whose PDS is another host.
func TestIngestBackfill(t *testing.T) {
	ident := newFakeIdentity()
	up := newUpstream(t)
	did := up.createAccount(ident, "backfill.test")
	for i := range 20 {
		up.write(did, create("app.bsky.feed.post/"+string(rune('a'+i)), "x"), create("app.bsky.graph.follow/"+string(rune('a'+i)), "y"))
	}
	m := newMirror(t, ident)
	ctx := context.Background()
	if err := m.ingest.Backfill(ctx, up.hostname, did); err != nil {
		t.Fatal(err)
	}
	sameRepo(t, up.db, m.db, did)
	a, _ := m.db.Account(did)
	if a.Status != store.StatusActive || a.Host != up.hostname || a.Handle != "backfill.test" {
		t.Fatalf("backfilled account %+v", a)
	}
	if n, _ := m.db.CollectionCount(a.UID, "app.bsky.graph.follow"); n != 20 {
		t.Fatalf("collection count %d", n)
	}
	if err := m.ingest.Backfill(ctx, up.hostname, did); err != nil { // nothing new: no change, no event
		t.Fatal(err)
	}
	if log := decodeLog(t, m.db, 0); len(log) != 1 || log[0].ev.Type() != wire.TypeSync {
		t.Fatalf("our log after two backfills: %d frames", len(log))
	}
	if n := m.counter("relay_ingest_resyncs_total", map[string]string{"result": "unchanged"}); n != 1 {
		t.Fatalf("unchanged resyncs %v", n)
	}

	other := up.createAccount(ident, "other.test")
	up.write(other, create("app.bsky.feed.post/a", "a"))
	if err := m.ingest.Backfill(ctx, "pds.elsewhere.example", other); err == nil {
		t.Fatal("backfill from a host that is not the PDS")
	}
	if _, err := m.db.Account(other); err == nil {
		t.Fatal("account created by a refused backfill")
	}
	if err := m.ingest.Backfill(ctx, up.hostname, "not a did"); err == nil {
		t.Fatal("backfill of a malformed DID")
	}
}

// A resync that fails (the PDS does not serve the repository) leaves the
// account desynchronized; its events are dropped and, after the backoff,
// ask for another resync, which succeeds once the PDS serves it.
func TestIngestResyncFailsThenRecovers(t *testing.T) {
	ident, up, did, m := newSynced(t)
	good := up.url
	ident.update(did, func(id *identity.Identity) { id.PDSEndpoint = "http://" + up.hostname + "/nothing-here" })
	_ = good
	submitBadCommit(t, up, m, did, "app.bsky.feed.post/c")
	eventuallyTrue(t, "the failed resync", func() bool {
		return m.counter("relay_ingest_resyncs_total", map[string]string{"result": "failed"}) >= 1
	})
	if a, _ := m.db.Account(did); a.Status != store.StatusDesynchronized {
		t.Fatalf("status after a failed resync %q", a.Status)
	}
	// The PDS is fine again; the next event (or the timed retry) asks for a
	// resync.
	ident.update(did, func(id *identity.Identity) { id.PDSEndpoint = good })
	time.Sleep(20 * time.Millisecond) // past the backoff
	mark := up.db.LastSeq()
	up.write(did, create("app.bsky.feed.post/d", "d"))
	m.submit(up.hostname, frames(t, up.db, mark)...)
	m.settle()
	caughtUp(t, "the resync", m.db, up, did)
	sameRepo(t, up.db, m.db, did)
}

// Upstream events about an account hosted here are ignored.
func TestIngestIgnoresHostedAccounts(t *testing.T) {
	ident := newFakeIdentity()
	up := newUpstream(t)
	did := up.createAccount(ident, "mine.test")
	up.write(did, create("app.bsky.feed.post/a", "a"))
	m := newMirror(t, ident)
	a := &store.Account{DID: did, Hosted: true, CreatedAt: testTime}
	if _, err := m.db.Apply(context.Background(), &store.Change{Account: a}); err != nil {
		t.Fatal(err)
	}
	ourMark := m.db.LastSeq()
	m.submit(up.hostname, frames(t, up.db, 0)...)
	m.submit(up.hostname, up.syncFrame(did, 50))
	m.settle()
	if log := frames(t, m.db, ourMark); len(log) != 0 {
		t.Fatalf("%d frames forwarded for a hosted account", len(log))
	}
	if err := m.ingest.Backfill(context.Background(), up.hostname, did); err == nil {
		t.Fatal("backfill over a hosted account")
	}
	if got, _ := m.db.Account(did); got.Head.Defined() || !got.Hosted {
		t.Fatalf("hosted account changed: %+v", got)
	}
}

// Events of an account waiting for its resync are held apart from the
// queues: other accounts keep flowing however many there are; beyond
// MaxHeldEvents they are dropped (and the chain check later heals it).
func TestIngestHeldEvents(t *testing.T) {
	ident := newFakeIdentity()
	up := newUpstream(t)
	a := up.createAccount(ident, "held.test")
	b := up.createAccount(ident, "flowing.test")
	up.write(a, create("app.bsky.feed.post/a", "a"))
	up.write(b, create("app.bsky.feed.post/a", "a"))
	m := newMirror(t, ident, func(o *relay.IngestOptions) { o.QueueLen = 2; o.MaxHeldEvents = 3 })
	m.submit(up.hostname, frames(t, up.db, 0)...)
	m.settle()

	release := up.holdGetRepo()
	submitBadCommit(t, up, m, a, "app.bsky.feed.post/b")
	eventuallyTrue(t, "the resync to start", func() bool { return m.ingest.Stats().PendingResyncs == 0 })

	mark := up.db.LastSeq()
	for i := range 5 {
		up.write(a, create(fmt.Sprintf("app.bsky.feed.post/held%d", i), "x"))
		up.write(b, create(fmt.Sprintf("app.bsky.feed.post/b%d", i), "x"))
	}
	m.submit(up.hostname, frames(t, up.db, mark)...) // would block on QueueLen 2 if a's events took room
	eventuallyTrue(t, "b's commits", func() bool { return head(t, m.db, b) == head(t, up.db, b) })
	if s := m.ingest.Stats(); s.Held != 3 {
		t.Fatalf("held %d events, want 3", s.Held)
	}
	if n := m.counter("relay_ingest_events_total", map[string]string{"outcome": "dropped_held"}); n != 2 {
		t.Fatalf("dropped %v held events, want 2", n)
	}
	release()
	m.settle()
	eventuallyTrue(t, "a's resync and recovery", func() bool {
		acct, _ := m.db.Account(a)
		return acct.Status == store.StatusActive && acct.Head == head(t, up.db, a)
	})
	sameRepo(t, up.db, m.db, a)
	sameRepo(t, up.db, m.db, b)
	m.idle()
}

// submitBadCommit writes a record upstream and submits its commit with a
// wrong prevData: the account desynchronizes and a resync is asked for.
func submitBadCommit(t *testing.T, up *upstream, m *mirror, did, path string) {
	t.Helper()
	mark := up.db.LastSeq()
	up.write(did, create(path, "bad"))
	real := frames(t, up.db, mark)[0]
	ev := decodeCommitFrame(t, real)
	ev.PrevData = ev.Commit
	m.submit(up.hostname, frame{real.seq, encodeCommit(t, ev, real.seq)})
	m.settle()
}

// A failed resync is retried on a timer, not only when the account posts
// again: once the backoff ends, the quiet account is fetched again and
// becomes active, with no further upstream event. The retry does not run
// before the backoff ends, and a retry that fails again is retried again.
func TestIngestResyncRetriedOnTimer(t *testing.T) {
	const backoff = time.Second
	ident, up, did, m := newSyncedWith(t, func(o *relay.IngestOptions) {
		o.ResyncBackoff, o.MaxResyncBackoff = backoff, backoff
	})
	good := up.url
	ident.update(did, func(id *identity.Identity) { id.PDSEndpoint = good + "/nothing-here" })
	submitBadCommit(t, up, m, did, "app.bsky.feed.post/c")
	failed := func() float64 {
		return m.counter("relay_ingest_resyncs_total", map[string]string{"result": "failed"})
	}
	retries := func() float64 { return m.counter("relay_ingest_resync_retries_total", nil) }
	eventuallyTrue(t, "the failed resync", func() bool { return failed() >= 1 })

	// Still failing: the timer retries it, and again after that.
	eventuallyTrue(t, "two timed retries", func() bool { return retries() >= 2 && failed() >= 3 })
	if a, _ := m.db.Account(did); a.Status != store.StatusDesynchronized {
		t.Fatalf("status while the PDS fails %q", a.Status)
	}

	// The PDS serves the repository again. Nothing is retried before the
	// backoff ends (the last failure was moments ago)…
	n := retries()
	ident.update(did, func(id *identity.Identity) { id.PDSEndpoint = good })
	time.Sleep(200 * time.Millisecond)
	if got := retries(); got != n {
		t.Fatalf("%v retries within 200ms of a failure, backoff %v", got-n, backoff)
	}
	// …and then the account recovers by itself.
	caughtUp(t, "the resync on its timer", m.db, up, did)
	sameRepo(t, up.db, m.db, did)
	if got := retries(); got != n+1 {
		t.Fatalf("%v retries after the PDS recovered, want 1", got-n)
	}
	time.Sleep(backoff + 500*time.Millisecond)
	if got := retries(); got != n+1 {
		t.Fatalf("retried %v more times after the resync succeeded", got-n-1)
	}
}

// Nothing is fetched from a banned host: a resync of an account it hosts
// fails at once (and its timed retries too) until the host is unbanned.
func TestIngestResyncSkipsBannedHost(t *testing.T) {
	_, up, did, m := newSynced(t)
	h := &store.Host{Hostname: up.hostname, NoSSL: true, Cursor: store.NoCursor}
	setStatus := func(st store.HostStatus) { // as the admin's ban and unban do
		h.Status = st
		if err := m.db.PutHost(context.Background(), h); err != nil {
			t.Fatal(err)
		}
	}
	setStatus(store.HostBanned)
	fetched := up.getRepos.Load()
	submitBadCommit(t, up, m, did, "app.bsky.feed.post/c")
	eventuallyTrue(t, "refused resyncs, retried", func() bool {
		return m.counter("relay_ingest_resyncs_total", map[string]string{"result": "failed"}) >= 3
	})
	if n := up.getRepos.Load() - fetched; n != 0 {
		t.Fatalf("%d getRepo requests to a banned host", n)
	}
	if a, _ := m.db.Account(did); a.Status != store.StatusDesynchronized {
		t.Fatalf("status %q", a.Status)
	}
	setStatus(store.HostActive)
	caughtUp(t, "the resync once unbanned", m.db, up, did)
	sameRepo(t, up.db, m.db, did)
}
