package relay_test

import (
	"errors"
	"testing"

	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/identity"
	"github.com/reservoir-atproto/reservoir/relay"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
)

// The legacy event types an older host may still send (sync-spec §1.3):
// #handle, #tombstone and #migrate become our current events, and with
// LegacyEvents the legacy frames are also emitted next to them.

// newSyncedWith is newSynced with ingest options.
func newSyncedWith(t *testing.T, opts ...mirrorOptions) (*fakeIdentity, *upstream, string, *mirror) {
	ident := newFakeIdentity()
	up := newUpstream(t)
	did := up.createAccount(ident, "alice.test")
	up.write(did, create("app.bsky.feed.post/a", "a"), create("app.bsky.graph.follow/f", "f"))
	up.write(did, create("app.bsky.feed.post/b", "b"))
	m := newMirror(t, ident, opts...)
	m.submit(up.hostname, frames(t, up.db, 0)...)
	m.settle()
	sameRepo(t, up.db, m.db, did)
	return ident, up, did, m
}

func legacyOn(o *relay.IngestOptions) { o.LegacyEvents = true }

func logTypes(log []decoded) []string {
	var out []string
	for _, d := range log {
		out = append(out, d.ev.Type())
	}
	return out
}

func sameTypes(got []string, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// #handle: the identity is purged and resolved again, the verified handle
// stored, and #identity forwarded with the declared handle; with
// LegacyEvents a #handle follows it.
func TestIngestLegacyHandle(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		var opts []mirrorOptions
		if legacy {
			opts = append(opts, legacyOn)
		}
		ident, up, did, m := newSyncedWith(t, opts...)
		purges := ident.count(ident.purges, did)
		ident.update(did, func(id *identity.Identity) { id.Handle, id.DeclaredHandle = "alice2.test", "alice2.test" })
		ourMark := m.db.LastSeq()
		m.submit(up.hostname, frame{500, (&wire.Handle{DID: did, Handle: "alice2.test", Time: testTime}).AppendFrame(nil, 500)})
		m.settle()
		if n := ident.count(ident.purges, did); n != purges+1 {
			t.Fatalf("legacy=%v: %d purges, want %d", legacy, n, purges+1)
		}
		if a, _ := m.db.Account(did); a.Handle != "alice2.test" {
			t.Fatalf("legacy=%v: stored handle %q", legacy, a.Handle)
		}
		if d, err := m.db.DIDForHandle("alice2.test"); err != nil || d != did {
			t.Fatalf("legacy=%v: handle index %q %v", legacy, d, err)
		}
		log := decodeLog(t, m.db, ourMark)
		if !legacy {
			if !sameTypes(logTypes(log), wire.TypeIdentity) {
				t.Fatalf("forwarded %v", logTypes(log))
			}
		} else {
			if !sameTypes(logTypes(log), wire.TypeIdentity, wire.TypeHandle) {
				t.Fatalf("legacy: forwarded %v", logTypes(log))
			}
			if h := log[1].ev.(*wire.HandleEvent); h.DID != did || h.Handle != "alice2.test" || h.Seq != log[0].seq+1 {
				t.Fatalf("legacy #handle %+v", h)
			}
		}
		if e := log[0].ev.(*wire.IdentityEvent); e.DID != did || e.Handle != "alice2.test" {
			t.Fatalf("legacy=%v: #identity %+v", legacy, e)
		}
	}
}

// #tombstone: the account is deleted as by a deletion #account: its
// repository is gone, its earlier events purged, and #account {active:
// false, status: deleted} forwarded; with LegacyEvents a #tombstone
// follows it. A tombstone of an account never seen creates nothing.
func TestIngestLegacyTombstone(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		var opts []mirrorOptions
		if legacy {
			opts = append(opts, legacyOn)
		}
		_, up, did, m := newSyncedWith(t, opts...)
		ourMark := m.db.LastSeq()
		m.submit(up.hostname, frame{600, (&wire.Tombstone{DID: did, Time: testTime}).AppendFrame(nil, 600)})
		m.settle()
		a, err := m.db.Account(did)
		if err != nil {
			t.Fatal(err)
		}
		if a.Status != store.StatusDeleted || a.Upstream != store.StatusDeleted || a.Head.Defined() {
			t.Fatalf("legacy=%v: after #tombstone %+v", legacy, a)
		}
		if err := (&repostore.Repos{DB: m.db}).WriteRepo(new(discard), a, ""); !errors.Is(err, repostore.ErrNoHead) {
			t.Fatalf("legacy=%v: getRepo after #tombstone: %v", legacy, err)
		}
		if n, _ := m.db.ReposByCollection("app.bsky.feed.post", 0, 10); len(n) != 0 {
			t.Fatalf("legacy=%v: the deleted repository is still in the collection index", legacy)
		}
		want := []string{wire.TypeAccount}
		if legacy {
			want = append(want, wire.TypeTombstone)
		}
		seqs, _ := m.db.EventSeqs(a.UID)
		if len(seqs) != len(want) {
			t.Fatalf("legacy=%v: %d events of the deleted account in the log, want %d", legacy, len(seqs), len(want))
		}
		log := decodeLog(t, m.db, ourMark)
		if !sameTypes(logTypes(log), want...) {
			t.Fatalf("legacy=%v: forwarded %v", legacy, logTypes(log))
		}
		if e := log[0].ev.(*wire.AccountEvent); e.DID != did || e.Active || e.Status != "deleted" {
			t.Fatalf("legacy=%v: #account %+v", legacy, e)
		}
		if legacy {
			if e := log[1].ev.(*wire.TombstoneEvent); e.DID != did {
				t.Fatalf("#tombstone %+v", e)
			}
		}
		// Every event left in the whole log is of the deletion.
		if all := decodeLog(t, m.db, 0); len(all) != len(want) {
			t.Fatalf("legacy=%v: %d events left in the log", legacy, len(all))
		}

		ghost := newDID()
		m.submit(up.hostname, frame{601, (&wire.Tombstone{DID: ghost, Time: testTime}).AppendFrame(nil, 601)})
		m.settle()
		if _, err := m.db.Account(ghost); err == nil {
			t.Fatalf("legacy=%v: a tombstoned unknown account was created", legacy)
		}
	}
}

// #migrate: the DID is resolved afresh; when its PDS moved, the account's
// host follows (events from the old host are refused, the new host's
// accepted) and #identity is forwarded; with LegacyEvents a #migrate (and
// a #handle) follow it. A #migrate that moves nothing changes nothing.
func TestIngestLegacyMigrate(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		var opts []mirrorOptions
		if legacy {
			opts = append(opts, legacyOn)
		}
		ident, up, did, m := newSyncedWith(t, opts...)
		ourMark := m.db.LastSeq()
		// The DID document still names this host: nothing moves.
		m.submit(up.hostname, frame{700, (&wire.Migrate{DID: did, MigrateTo: "pds2.test", Time: testTime}).AppendFrame(nil, 700)})
		m.settle()
		if log := decodeLog(t, m.db, ourMark); len(log) != 0 {
			t.Fatalf("legacy=%v: a #migrate to the same host forwarded %v", legacy, logTypes(log))
		}
		if a, _ := m.db.Account(did); a.Host != up.hostname {
			t.Fatalf("legacy=%v: host %q", legacy, a.Host)
		}

		const newHost = "pds2.test:2583"
		ident.update(did, func(id *identity.Identity) { id.PDSEndpoint = "http://" + newHost })
		m.submit(up.hostname, frame{701, (&wire.Migrate{DID: did, MigrateTo: newHost, Time: testTime}).AppendFrame(nil, 701)})
		m.settle()
		a, _ := m.db.Account(did)
		if a.Host != newHost || a.Handle != "alice.test" || !a.Status.Active() {
			t.Fatalf("legacy=%v: after #migrate %+v", legacy, a)
		}
		log := decodeLog(t, m.db, ourMark)
		want := []string{wire.TypeIdentity}
		if legacy {
			want = append(want, wire.TypeMigrate, wire.TypeHandle)
		}
		if !sameTypes(logTypes(log), want...) {
			t.Fatalf("legacy=%v: forwarded %v", legacy, logTypes(log))
		}
		if e := log[0].ev.(*wire.IdentityEvent); e.DID != did || e.Handle != "alice.test" {
			t.Fatalf("legacy=%v: #identity %+v", legacy, e)
		}
		if legacy {
			if e := log[1].ev.(*wire.MigrateEvent); e.DID != did || e.MigrateTo != newHost {
				t.Fatalf("#migrate %+v", e)
			}
		}

		// The old host's events are refused now, the new host's accepted.
		mark := up.db.LastSeq()
		up.write(did, create("app.bsky.feed.post/c", "c"))
		commit := frames(t, up.db, mark)
		before := head(t, m.db, did)
		m.submit(up.hostname, commit...)
		m.settle()
		if head(t, m.db, did) != before {
			t.Fatalf("legacy=%v: a commit from the old host was applied", legacy)
		}
		m.submit(newHost, commit...)
		m.settle()
		sameRepo(t, up.db, m.db, did)
	}
}

// Legacy events of an account never seen: a #migrate is counted and
// skipped, a #handle creates the account as #identity would.
func TestIngestLegacyUnknownAccount(t *testing.T) {
	ident := newFakeIdentity()
	up := newUpstream(t)
	m := newMirror(t, ident)
	did := up.createAccount(ident, "zed.test")
	m.submit(up.hostname, frame{1, (&wire.Migrate{DID: did, Time: testTime}).AppendFrame(nil, 1)})
	m.settle()
	if _, err := m.db.Account(did); err == nil {
		t.Fatal("a #migrate of an unknown account created it")
	}
	if n := m.counter("relay_ingest_events_total", map[string]string{"type": "migrate", "outcome": "legacy"}); n != 1 {
		t.Fatalf("skipped #migrate counted %v", n)
	}
	m.submit(up.hostname, frame{2, (&wire.Handle{DID: did, Handle: "zed.test", Time: testTime}).AppendFrame(nil, 2)})
	m.settle()
	if a, err := m.db.Account(did); err != nil || a.Handle != "zed.test" || a.Host != up.hostname {
		t.Fatalf("after #handle: %+v %v", a, err)
	}
}
