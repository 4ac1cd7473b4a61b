package relay_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/relay"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/store"
)

// randomWrites makes n commits of random creates, updates and deletes over
// the accounts, keeping a model of the live paths to stay valid.
func randomWrites(up *upstream, rng *rand.Rand, dids []string, n int) {
	live := map[string][]string{}
	for i := range n {
		did := dids[rng.IntN(len(dids))]
		var ws []repo.Write
		used := map[string]bool{}
		for range 1 + rng.IntN(4) {
			paths := live[did]
			switch r := rng.IntN(10); {
			case r < 6 || len(paths) == 0:
				p := fmt.Sprintf("app.bsky.feed.post/%s%06d", []string{"a", "k", "z"}[rng.IntN(3)], rng.IntN(1_000_000))
				if used[p] || slices.Contains(paths, p) {
					continue
				}
				used[p] = true
				ws = append(ws, create(p, fmt.Sprint("post ", i)))
				live[did] = append(live[did], p)
			case r < 8:
				p := paths[rng.IntN(len(paths))]
				if used[p] {
					continue
				}
				used[p] = true
				ws = append(ws, update(p, fmt.Sprint("edit ", i)))
			default:
				j := rng.IntN(len(paths))
				p := paths[j]
				if used[p] {
					continue
				}
				used[p] = true
				ws = append(ws, del(p))
				live[did] = slices.Delete(paths, j, j+1)
			}
		}
		if len(ws) > 0 {
			up.write(did, ws...)
		}
	}
}

// commitsByRev indexes the #commit events of a log by account and rev.
func commitsByRev(log []decoded) map[string]*wire.CommitEvent {
	out := map[string]*wire.CommitEvent{}
	for _, d := range log {
		if c, ok := d.ev.(*wire.CommitEvent); ok {
			out[c.Repo+" "+c.Rev] = c
		}
	}
	return out
}

// The relay ends with every repository byte-identical to the upstream's,
// re-broadcasts every commit with the upstream's blocks and ops unchanged
// and in the upstream's order per account, each verifying against the
// previous one, and reports every event done exactly once.
func TestIngestMirrorsUpstream(t *testing.T) {
	ident := newFakeIdentity()
	up := newUpstream(t)
	var dids []string
	for i := range 3 {
		dids = append(dids, up.createAccount(ident, fmt.Sprintf("user%d.test", i)))
	}
	randomWrites(up, rand.New(rand.NewPCG(1, 2)), dids, 60)

	m := newMirror(t, ident)
	fs := frames(t, up.db, 0)
	m.submit(up.hostname, fs...)
	m.settle()
	m.checkDoneOnce(up.hostname, fs)
	for _, did := range dids {
		sameRepo(t, up.db, m.db, did)
		a, err := m.db.Account(did)
		if err != nil {
			t.Fatal(err)
		}
		if a.Hosted || a.Host != up.hostname || a.Status != store.StatusActive || a.Handle == "" {
			t.Fatalf("mirrored account %+v", a)
		}
	}
	upLog, ourLog := decodeLog(t, up.db, 0), decodeLog(t, m.db, 0)
	keys := pubKeys(up)
	if ours, theirs := verifyOurCommits(t, ourLog, keys), verifyOurCommits(t, upLog, keys); !reflect.DeepEqual(ours, theirs) {
		t.Fatalf("our commits per account %v, upstream's %v", ours, theirs)
	}
	theirs := commitsByRev(upLog)
	for key, c := range commitsByRev(ourLog) {
		u := theirs[key]
		if !bytes.Equal(c.Blocks, u.Blocks) || !reflect.DeepEqual(c.Ops, u.Ops) || c.Since != u.Since || c.PrevData != u.PrevData || c.Commit != u.Commit {
			t.Fatalf("%s: our #commit differs from the upstream's", key)
		}
	}
	// Identity and account events went through too, once each.
	count := map[string]int{}
	for _, d := range ourLog {
		count[d.ev.Type()]++
	}
	if count[wire.TypeIdentity] != 3 || count[wire.TypeAccount] != 3 || count[wire.TypeCommit] != len(theirs) || count[wire.TypeSync] != 0 {
		t.Fatalf("our log holds %v", count)
	}
	if got := m.counter("relay_ingest_events_total", map[string]string{"type": "commit", "outcome": "applied"}); int(got) != len(theirs) {
		t.Fatalf("applied commits counted %v, want %d", got, len(theirs))
	}
}

// Many accounts, their events interleaved at random, many workers: each
// account's events are still applied in order (any reordering would fail
// the chain checks: an invalid outcome, a resync, a #sync).
func TestIngestOrderPerAccount(t *testing.T) {
	ident := newFakeIdentity()
	up := newUpstream(t)
	var dids []string
	for i := range 30 {
		dids = append(dids, up.createAccount(ident, fmt.Sprintf("many%d.test", i)))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	randomWrites(up, rng, dids, 240)
	perDID := map[string][]frame{}
	for _, f := range frames(t, up.db, 0) {
		ev, _ := wire.DecodeFrame(f.bytes)
		did := ev.(wire.DIDEvent).EventDID()
		perDID[did] = append(perDID[did], f)
	}
	var lists [][]frame
	for _, did := range dids {
		lists = append(lists, perDID[did])
	}
	// Seqs out of order across accounts are what a relay sees of
	// different hosts; one host's are increasing, but the ingest does not
	// rely on it.
	all := shuffleInterleave(rng, lists)

	m := newMirror(t, ident, func(o *relay.IngestOptions) { o.Workers = 8; o.QueueLen = 16 })
	m.submit(up.hostname, all...)
	m.settle()
	m.checkDoneOnce(up.hostname, all)
	for _, did := range dids {
		sameRepo(t, up.db, m.db, did)
	}
	for _, outcome := range []string{"invalid", "resync", "stale", "error"} {
		if n := m.counter("relay_ingest_events_total", map[string]string{"outcome": outcome}); n != 0 {
			t.Fatalf("%v events with outcome %s", n, outcome)
		}
	}
	keys := pubKeys(up)
	if ours, theirs := verifyOurCommits(t, decodeLog(t, m.db, 0), keys), verifyOurCommits(t, decodeLog(t, up.db, 0), keys); !reflect.DeepEqual(ours, theirs) {
		t.Fatal("our commits per account differ from the upstream's")
	}
	m.idle()
}

// Submit blocks when the queues are full, returns the context's error when
// it gives up, and resumes when the workers make room. The queues never hold
// more than QueueLen events.
func TestIngestBackpressure(t *testing.T) {
	ident := newFakeIdentity()
	up := newUpstream(t)
	did := up.createAccount(ident, "slow.test")
	for i := range 6 {
		up.write(did, create(fmt.Sprintf("app.bsky.feed.post/%d", i), "x"))
	}
	fs := frames(t, up.db, 0) // #identity, #account, 6 #commit
	ident.gate = make(chan struct{})
	m := newMirror(t, ident, func(o *relay.IngestOptions) { o.QueueLen = 3; o.Workers = 2 })

	m.submit(up.hostname, fs[:3]...) // room for three
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := m.ingest.Submit(ctx, up.hostname, fs[3].seq, fs[3].bytes); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Submit into full queues: %v", err)
	}
	if s := m.ingest.Stats(); s.Events != 3 {
		t.Fatalf("queues hold %d events", s.Events)
	}
	returned := make(chan struct{})
	go func() {
		m.submit(up.hostname, fs[3:]...)
		close(returned)
	}()
	select {
	case <-returned:
		t.Fatal("Submit returned while the queues were full")
	case <-time.After(50 * time.Millisecond):
	}
	for range 20 {
		if s := m.ingest.Stats(); s.Events > 3 {
			t.Fatalf("queues hold %d events > QueueLen", s.Events)
		}
		time.Sleep(time.Millisecond)
	}
	close(ident.gate)
	<-returned
	m.settle()
	m.checkDoneOnce(up.hostname, fs)
	sameRepo(t, up.db, m.db, did)
}

// QueueBytes bounds the queued frames' bytes; a frame larger than the bound
// still passes alone.
func TestIngestQueueBytes(t *testing.T) {
	ident := newFakeIdentity()
	up := newUpstream(t)
	did := up.createAccount(ident, "bytes.test")
	up.write(did, create("app.bsky.feed.post/1", "x"))
	fs := frames(t, up.db, 0)
	ident.gate = make(chan struct{})
	m := newMirror(t, ident, func(o *relay.IngestOptions) { o.QueueBytes = 10 })
	m.submit(up.hostname, fs[0]) // alone, over the bound
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := m.ingest.Submit(ctx, up.hostname, fs[1].seq, fs[1].bytes); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second frame over the byte bound: %v", err)
	}
	close(ident.gate)
	m.submit(up.hostname, fs[1:]...)
	m.settle()
	sameRepo(t, up.db, m.db, did)
}

// Close drains what is queued (every event gets its OnDone), and Submit is
// refused afterwards.
func TestIngestClose(t *testing.T) {
	ident := newFakeIdentity()
	up := newUpstream(t)
	did := up.createAccount(ident, "close.test")
	for i := range 5 {
		up.write(did, create(fmt.Sprintf("app.bsky.feed.post/%d", i), "x"))
	}
	fs := frames(t, up.db, 0)
	ident.gate = make(chan struct{})
	m := newMirror(t, ident)
	m.submit(up.hostname, fs...)
	closed := make(chan struct{})
	go func() {
		m.ingest.Close()
		close(closed)
	}()
	eventuallyTrue(t, "Close to refuse new events", func() bool {
		return errors.Is(m.ingest.Submit(context.Background(), up.hostname, 999, fs[0].bytes), relay.ErrIngestClosed)
	})
	close(ident.gate)
	<-closed
	m.checkDoneOnce(up.hostname, fs)
	sameRepo(t, up.db, m.db, did)
	if err := m.ingest.Backfill(context.Background(), up.hostname, did); !errors.Is(err, relay.ErrIngestClosed) {
		t.Fatalf("Backfill after Close: %v", err)
	}
}

// Frames without an account, legacy types and frames that do not decode
// are settled at once and counted; nothing of them reaches our log.
func TestIngestSkipsWhatHasNoAccount(t *testing.T) {
	ident := newFakeIdentity()
	m := newMirror(t, ident)
	legacy := wire.InfoFrame("OutdatedCursor", "")
	fs := []frame{
		{1, wire.InfoFrame("OutdatedCursor", "old")},
		{2, wire.ErrorFrame("FutureCursor", "")},
		{3, append(bytes.Clone(legacy), 0)},          // trailing byte
		{4, []byte{0xa2, 0x61, 't', 0x62, '#', 'x'}}, // truncated
	}
	m.submit("host.example", fs...)
	m.settle()
	m.checkDoneOnce("host.example", fs)
	if log := frames(t, m.db, 0); len(log) != 0 {
		t.Fatalf("our log holds %d frames", len(log))
	}
	if n := m.counter("relay_ingest_events_total", map[string]string{"outcome": "malformed"}); n != 2 {
		t.Fatalf("malformed frames counted %v", n)
	}
	if n := m.counter("relay_ingest_events_total", map[string]string{"type": "info", "outcome": "skipped"}); n != 1 {
		t.Fatalf("info frames counted %v", n)
	}
}
