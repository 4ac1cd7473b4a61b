package relay_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/relay"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
)

// socketRelay is a relay as serve runs it: a store, the ingest and a host
// manager that dials upstream firehoses and submits what it reads.
type socketRelay struct {
	db     *store.DB
	ingest *relay.Ingest
	mgr    *relay.Manager
	reg    *prometheus.Registry
}

// With backfill, the ingest backfills new hosts. The ingest reports the
// hosts DID documents name to the manager (Discover), as serve wires it.
func newSocketRelay(t *testing.T, ident relay.IdentityResolver, backfill bool, tweak func(*relay.IngestOptions, *relay.ManagerOptions)) *socketRelay {
	t.Helper()
	db, err := store.Open(store.Options{InMemory: true, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	r := &socketRelay{db: db, reg: prometheus.NewRegistry()}
	var mgr atomic.Pointer[relay.Manager]
	io := relay.IngestOptions{
		DB: db, Repos: &repostore.Repos{DB: db}, Identity: ident, Workers: 4,
		AllowInsecure: true, Registerer: r.reg,
		ResyncBackoff: time.Millisecond, MaxResyncBackoff: 10 * time.Millisecond,
		OnDone:       func(hostname string, seq int64) { mgr.Load().Done(hostname, seq) },
		DiscoverHost: func(endpoint string) { mgr.Load().Discover(endpoint) },
	}
	mo := relay.ManagerOptions{
		DB: db, AllowInsecure: true, Registerer: r.reg,
		CheckTimeout: 5 * time.Second, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		FlushInterval: 20 * time.Millisecond, RecountInterval: 50 * time.Millisecond, StopTimeout: 5 * time.Second,
	}
	if tweak != nil {
		tweak(&io, &mo)
	}
	if r.ingest, err = relay.NewIngest(io); err != nil {
		t.Fatal(err)
	}
	mo.Submitter = r.ingest
	if backfill {
		mo.Backfiller = r.ingest
	}
	if r.mgr, err = relay.NewManager(mo); err != nil {
		t.Fatal(err)
	}
	mgr.Store(r.mgr)
	if err := r.mgr.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.mgr.Stop()
		r.ingest.Close()
		r.mgr.Close()
		db.Close()
	})
	return r
}

// counter sums a counter of the relay's registry over the matching labels.
func (r *socketRelay) counter(t *testing.T, name string, labels map[string]string) float64 {
	return (&mirror{t: t, reg: r.reg}).counter(name, labels)
}

// crawl adds the host and waits until its first connection is open (a new
// host is followed live: frames appended after that are all read).
func (r *socketRelay) crawl(t *testing.T, hostname string, fh *scriptedFirehose) {
	t.Helper()
	if _, err := r.mgr.AddHost(context.Background(), "http://"+hostname); err != nil {
		t.Fatal(err)
	}
	eventuallyTrue(t, "the subscription", func() bool { _, open := fh.stats(); return open == 1 })
}

// A hostile upstream through a real socket: the relay crawls a fake host
// (a websocket on loopback) through the host manager, and the host sends,
// between good events, every kind of bad commit, frames that are not
// DAG-CBOR, a truncated frame and one over the frame limit; another host
// sends an event for an account it does not serve. Each bad commit is
// refused and never forwarded, its account is marked desynchronized and
// resynced from the host's getRepo (announced by our #sync); the relay
// keeps its subscription (reconnecting after the frames that break the
// framing) and applies the good events that follow.
func TestHostileUpstreamSocket(t *testing.T) {
	ident := newFakeIdentity()
	up := newUpstream(t)
	fh := newScriptedFirehose()
	up.serveFirehose(fh)
	r := newSocketRelay(t, ident, false, func(_ *relay.IngestOptions, mo *relay.ManagerOptions) {
		mo.MaxFrameBytes = 3_000_000 // above "blocks too large" (2 MB of blocks), below the oversize frame
	})

	cases := []struct{ name, check string }{
		{"bad signature", "signature"},
		{"rev not increasing", "rev_order"},
		{"rev in the future", "future_rev"},
		{"commit is not the CAR root", "cid_mismatch"},
		{"inversion does not match prevData", "prevdata_mismatch"},
		{"too many ops", "too_many_ops"},
		{"blocks too large", "too_large"},
	}
	dids := make([]string, len(cases))
	for i := range cases {
		dids[i] = up.createAccount(ident, fmt.Sprintf("hostile%d.test", i))
		up.write(dids[i], create("app.bsky.feed.post/a", "a"), create("app.bsky.feed.post/b", "b"))
		up.write(dids[i], create("app.bsky.feed.post/c", "c"))
	}
	control := up.createAccount(ident, "control.test")
	up.write(control, create("app.bsky.feed.post/a", "a"))

	r.crawl(t, up.hostname, fh)
	fh.add(frames(t, up.db, 0)...)
	for _, did := range append([]string{control}, dids...) {
		eventuallyTrue(t, "the first mirror of "+did, func() bool {
			a, err := r.db.Account(did)
			return err == nil && a.Head == head(t, up.db, did)
		})
	}
	ourMark := r.db.LastSeq()

	// dropped waits until the relay has ended n connections for reason
	// and is subscribed again, so that the next frame sent to one
	// connection only reaches the new one, not one going away.
	// (before is the count of connections when the frame was added).
	dropped := func(reason string, n float64, before int) {
		t.Helper()
		eventuallyTrue(t, "a connection ended for "+reason, func() bool {
			return r.counter(t, "relay_upstream_disconnects_total", map[string]string{"reason": reason}) == n
		})
		eventuallyTrue(t, "the reconnection after "+reason, func() bool {
			conns, open := fh.stats()
			return conns > before && open == 1
		})
	}

	// The bad commits, each followed by a good one of the same account
	// and by a good one of the control account.
	badRevs := map[string]string{}
	for i, tc := range cases {
		did := dids[i]
		h := head(t, r.db, did)
		mark := up.db.LastSeq()
		up.write(did, create("app.bsky.feed.post/d", "d"), del("app.bsky.feed.post/b"))
		real := frames(t, up.db, mark)
		if len(real) != 1 {
			t.Fatalf("%d frames for one write", len(real))
		}
		ev := decodeCommitFrame(t, real[0])
		badRevs[did] = ev.Rev
		key := up.keys[did]
		switch tc.check {
		case "signature":
			resign(t, ev, func(c *repo.Commit) { _ = c.Sign(key); c.Sig[7] ^= 1 })
		case "rev_order":
			resign(t, ev, func(c *repo.Commit) { c.Rev = syntax.TID(h.Rev); _ = c.Sign(key) })
		case "future_rev":
			resign(t, ev, func(c *repo.Commit) {
				c.Rev = syntax.NewTIDFromTime(time.Now().Add(10*time.Minute), 0)
				_ = c.Sign(key)
			})
		case "cid_mismatch":
			ev.Commit = dagcbor.SumCBOR([]byte{0xa0})
		case "prevdata_mismatch":
			ev.PrevData = dagcbor.SumCBOR([]byte{0x80})
		case "too_many_ops":
			for len(ev.Ops) <= repo.MaxCommitOps {
				ev.Ops = append(ev.Ops, ev.Ops[0])
			}
		case "too_large":
			ev.Blocks = append(ev.Blocks, make([]byte, repo.MaxCommitBlocksBytes)...)
		}
		if ev.Rev != badRevs[did] && tc.check != "rev_order" {
			badRevs[did+" tampered"] = ev.Rev
		}
		fh.add(frame{real[0].seq, encodeCommit(t, ev, real[0].seq)})
		mark = up.db.LastSeq()
		up.write(did, create("app.bsky.feed.post/e", "e"))
		up.write(control, create(fmt.Sprintf("app.bsky.feed.post/c%d", i), "c"))
		fh.add(frames(t, up.db, mark)...)
		switch i {
		case 1: // not DAG-CBOR at all: the subscription drops the connection
			conns, _ := fh.stats()
			fh.addOnce([]byte{0xff, 0x00, 0x13, 0x37})
			dropped("malformed_frame", 1, conns)
		case 3: // a commit frame cut in the middle
			mark = up.db.LastSeq()
			up.write(control, create("app.bsky.feed.post/cut", "cut"))
			f := frames(t, up.db, mark)[0]
			conns, _ := fh.stats()
			fh.addOnce(f.bytes[:len(f.bytes)/2])
			fh.add(f) // the whole frame comes after the reconnection
			dropped("malformed_frame", 2, conns)
		case 5: // over the frame limit
			mark = up.db.LastSeq()
			up.write(control, create("app.bsky.feed.post/big", "big"))
			f := frames(t, up.db, mark)[0]
			conns, _ := fh.stats()
			fh.addOnce(append(bytes.Clone(f.bytes), make([]byte, 3_000_000)...))
			fh.add(f)
			dropped("frame_too_large", 1, conns)
		}
	}

	// Another host sends a good commit of the control account, which it
	// does not serve: dropped, the account untouched.
	other := newScriptedFirehose()
	otherSrv := httptest.NewServer(other)
	defer otherSrv.Close()
	otherHost := strings.TrimPrefix(otherSrv.URL, "http://")
	r.crawl(t, otherHost, other)
	mark := up.db.LastSeq()
	up.write(control, create("app.bsky.feed.post/stolen", "x"))
	stolen := frames(t, up.db, mark)
	other.add(frame{1, stolen[0].bytes})
	eventuallyTrue(t, "the wrong host's event", func() bool {
		return r.counter(t, "relay_ingest_events_total", map[string]string{"outcome": "wrong_host"}) == 1
	})
	fh.add(stolen...) // the real host's copy applies

	// A last good event after everything.
	mark = up.db.LastSeq()
	up.write(control, create("app.bsky.feed.post/last", "last"))
	fh.add(frames(t, up.db, mark)...)

	for _, did := range append([]string{control}, dids...) {
		caughtUp(t, "the final state of "+did, r.db, up, did)
		sameRepo(t, up.db, r.db, did)
	}
	for _, tc := range cases {
		if n := r.counter(t, "relay_ingest_verify_failures_total", map[string]string{"check": tc.check}); n != 1 {
			t.Errorf("%s: failures of check %s counted %v", tc.name, tc.check, n)
		}
	}
	if n := r.counter(t, "relay_upstream_disconnects_total", map[string]string{"reason": "malformed_frame"}); n != 2 {
		t.Errorf("malformed frames ended %v connections, want 2 (garbage, truncated)", n)
	}
	if n := r.counter(t, "relay_upstream_disconnects_total", map[string]string{"reason": "frame_too_large"}); n != 1 {
		t.Errorf("oversize frames ended %v connections", n)
	}
	if info, err := r.mgr.Host(up.hostname); err != nil || info.Status != store.HostActive {
		t.Fatalf("host after the hostile frames: %+v %v", info, err)
	}

	// Our firehose: no bad commit, each hostile account desynchronized then
	// resynced with a #sync, every #commit verifying for a consumer.
	log := decodeLog(t, r.db, ourMark)
	verifyOurCommits(t, decodeLog(t, r.db, 0), pubKeys(up))
	desync, synced := map[string]bool{}, map[string]bool{}
	for _, d := range log {
		switch ev := d.ev.(type) {
		case *wire.CommitEvent:
			if _, bad := badRevs[ev.Repo]; bad && (ev.Rev == badRevs[ev.Repo] || ev.Rev == badRevs[ev.Repo+" tampered"]) {
				t.Fatalf("a bad commit was forwarded: %s rev %s", ev.Repo, ev.Rev)
			}
		case *wire.AccountEvent:
			if ev.Status == string(store.StatusDesynchronized) {
				desync[ev.DID] = true
			}
		case *wire.SyncEvent:
			synced[ev.DID] = desync[ev.DID]
		}
	}
	for i, did := range dids {
		if !desync[did] || !synced[did] {
			t.Errorf("%s: desynchronized %v, then #sync %v", cases[i].name, desync[did], synced[did])
		}
	}
	if desync[control] {
		t.Fatal("the control account was desynchronized")
	}
}
