package relay_test

import (
	"context"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/host"
	"github.com/reservoir-atproto/reservoir/identity"
	"github.com/reservoir-atproto/reservoir/relay"
	"github.com/reservoir-atproto/reservoir/store"
)

// moveAccount adopts did on to (same key) with one record, and points its
// DID document there.
func moveAccount(t *testing.T, ident *fakeIdentity, from, to *upstream, did string) {
	t.Helper()
	key := from.keys[did]
	id, err := ident.LookupDID(context.Background(), syntax.DID(did))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := to.host.CreateAccount(context.Background(), host.CreateAccountInput{Handle: string(id.Handle), DID: did, SigningKey: key.Multibase()}); err != nil {
		t.Fatal(err)
	}
	to.keys[did] = key
	to.write(did, create("app.bsky.feed.post/moved", "moved"))
	ident.update(did, func(id *identity.Identity) { id.PDSEndpoint = to.url })
}

// identityFrame is an #identity of did with seq, as the old host sends it
// after a move.
func identityFrame(did string, seq int64) frame {
	return frame{seq, (&wire.Identity{DID: did, Time: time.Now()}).AppendFrame(nil, seq)}
}

// An account moves to a PDS the relay does not crawl: the #identity its
// old host sends names the new PDS, which the relay then crawls by itself
// (as a public requestCrawl: hostname and address checks, bans, the daily
// quota), backfills, and follows; the account's copy comes from there. A
// move to a banned host, or past the quota, is not followed.
func TestFollowAccountToNewHost(t *testing.T) {
	ident := newFakeIdentity()
	a, b, c := newUpstream(t), newUpstream(t), newUpstream(t)
	fhA, fhB := newScriptedFirehose(), newScriptedFirehose()
	a.serveFirehose(fhA)
	b.serveFirehose(fhB)
	r := newSocketRelay(t, ident, true, func(_ *relay.IngestOptions, mo *relay.ManagerOptions) {
		mo.NewHostsPerDay = 1
		mo.RecountInterval = time.Hour // the counts shown are exact without it
	})
	count := func(hostname string) int64 {
		t.Helper()
		info, err := r.mgr.Host(hostname)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range r.mgr.Hosts(0, 10) {
			if h.Hostname == hostname && h.AccountCount != info.AccountCount {
				t.Fatalf("listHosts counts %d, getHostStatus %d", h.AccountCount, info.AccountCount)
			}
		}
		return info.AccountCount
	}
	mover := a.createAccount(ident, "mover.test")
	toBanned := a.createAccount(ident, "banned.test")
	overQuota := a.createAccount(ident, "quota.test")
	for _, did := range []string{mover, toBanned, overQuota} {
		a.write(did, create("app.bsky.feed.post/a", "a"))
	}
	r.crawl(t, a.hostname, fhA)
	fhA.add(frames(t, a.db, 0)...)
	for _, did := range []string{mover, toBanned, overQuota} {
		eventuallyTrue(t, "the mirror of "+did, func() bool {
			acct, err := r.db.Account(did)
			return err == nil && acct.Head == head(t, a.db, did)
		})
	}
	if n := count(a.hostname); n != 3 {
		t.Fatalf("the old host counts %d accounts", n)
	}
	banned := newUpstream(t)
	if _, err := r.mgr.Ban(context.Background(), "http://"+banned.hostname); err != nil {
		t.Fatal(err)
	}

	moveAccount(t, ident, a, b, mover)
	seq := a.db.LastSeq()
	fhA.add(identityFrame(mover, seq+1))
	eventuallyTrue(t, "the new host crawled and the account fetched from it", func() bool {
		acct, err := r.db.Account(mover)
		return err == nil && acct.Host == b.hostname && acct.Head == head(t, b.db, mover)
	})
	info, err := r.mgr.Host(b.hostname)
	if err != nil || info.Status != store.HostActive {
		t.Fatalf("the new host: %+v %v", info, err)
	}
	sameRepo(t, b.db, r.db, mover)
	if na, nb := count(a.hostname), count(b.hostname); na != 2 || nb != 1 {
		t.Fatalf("after the move: %d accounts on the old host, %d on the new", na, nb)
	}
	// Its live events are followed.
	eventuallyTrue(t, "the subscription to the new host", func() bool { _, open := fhB.stats(); return open == 1 })
	mark := b.db.LastSeq()
	b.write(mover, create("app.bsky.feed.post/later", "later"))
	fhB.add(frames(t, b.db, mark)...)
	eventuallyTrue(t, "the new host's commit", func() bool { return head(t, r.db, mover) == head(t, b.db, mover) })
	sameRepo(t, b.db, r.db, mover)

	// A banned host is not crawled; past the daily quota (1) neither.
	moveAccount(t, ident, a, banned, toBanned)
	moveAccount(t, ident, a, c, overQuota)
	fhA.add(identityFrame(toBanned, seq+2), identityFrame(overQuota, seq+3))
	eventuallyTrue(t, "the quota refusal", func() bool {
		return r.counter(t, "relay_crawl_requests_total", map[string]string{"result": "quota"}) == 1
	})
	if info, err := r.mgr.Host(banned.hostname); err != nil || info.Status != store.HostBanned {
		t.Fatalf("the banned host: %+v %v", info, err)
	}
	if _, err := r.mgr.Host(c.hostname); err == nil {
		t.Fatal("a host past the quota was added")
	}
	for _, did := range []string{toBanned, overQuota} {
		if acct, _ := r.db.Account(did); acct.Host != a.hostname {
			t.Fatalf("%s followed to %s", did, acct.Host)
		}
	}
}
