package relay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/reservoir-atproto/reservoir/store"
)

func storedHost(t *testing.T, db *store.DB, name string) *store.Host {
	t.Helper()
	h, err := db.Host(name)
	if err != nil {
		t.Fatalf("host %s: %v", name, err)
	}
	return h
}

// TestManagerFollowsHost: a crawled host's frames reach the submitter once
// each, in seq order, across connections the host cuts; the durable cursor
// is stored once every event up to it is done, though they finish out of
// order; a new manager over the same store resumes after it.
func TestManagerFollowsHost(t *testing.T) {
	dir := t.TempDir()
	db := openStore(t, dir)
	up := newFakeUpstream(t)
	up.maxSend = 7 // the host cuts every connection after 7 frames
	sub := &fakeSubmitter{delay: 5 * time.Millisecond}
	m := newTestManager(t, db, sub, nil)
	name := up.hostname()
	if err := m.RequestCrawl(context.Background(), "http://"+name); err != nil {
		t.Fatal(err)
	}
	// A new host is followed live: the first connection has no cursor.
	eventually(t, "a connection", func() bool { return up.openConns() == 1 })
	if h := storedHost(t, db, name); h.Cursor != store.NoCursor || h.Status != store.HostActive {
		t.Fatalf("quiet new host stored as %+v", h)
	}
	up.add(40)
	eventually(t, "40 frames", func() bool { return len(sub.seqs(name)) == 40 })
	up.add(10)
	eventually(t, "50 frames", func() bool { return len(sub.seqs(name)) == 50 })
	if got := sub.seqs(name); !slices.Equal(got, seqRange(1, 50)) {
		t.Fatalf("submitted %v, want 1..50 once each in order", got)
	}
	// The ingest keeps frames until processed and bounds them by their
	// bytes: each is handed over in an allocation of its own size.
	sub.mu.Lock()
	loose := sub.loose
	sub.mu.Unlock()
	if loose != 0 {
		t.Fatalf("%d of 50 frames handed over with spare capacity", loose)
	}
	eventually(t, "stored cursor 50", func() bool { return storedHost(t, db, name).Cursor == 50 })
	h := storedHost(t, db, name)
	if h.Status != store.HostActive || !h.NoSSL || h.LastEventAt.IsZero() || h.ID != 1 {
		t.Fatalf("stored host %+v", h)
	}
	cursors := up.seenCursors()
	if cursors[0] != "" {
		t.Fatalf("first connection with cursor %q, want none", cursors[0])
	}
	for i, c := range cursors[1:] {
		if c == "" {
			t.Fatalf("reconnection %d without a cursor", i+1)
		}
	}

	// A new manager over the same store resumes after the stored cursor.
	m.Stop()
	sub.wg.Wait()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	up.add(5)
	sub2 := &fakeSubmitter{}
	newTestManager(t, db, sub2, nil)
	eventually(t, "5 more frames", func() bool { return len(sub2.seqs(name)) == 5 })
	if got := sub2.seqs(name); !slices.Equal(got, seqRange(51, 55)) {
		t.Fatalf("after restart submitted %v, want 51..55", got)
	}
	if c := up.seenCursors(); c[len(c)-1] != "50" {
		t.Fatalf("restart connected with cursor %q, want 50", c[len(c)-1])
	}
}

// TestManagerOfflineAndBack: a host that goes down is offline after
// OfflineAfter failed attempts, is retried, and is active again with the
// first connection that succeeds, resuming after its cursor.
func TestManagerOfflineAndBack(t *testing.T) {
	db := openStore(t, "")
	up := newFakeUpstream(t)
	sub := &fakeSubmitter{}
	m := newTestManager(t, db, sub, nil)
	name := up.hostname()
	if err := m.RequestCrawl(context.Background(), "http://"+name); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a connection", func() bool { return up.openConns() == 1 })
	up.add(3)
	eventually(t, "3 frames", func() bool { return len(sub.seqs(name)) == 3 })
	up.stop()
	eventually(t, "offline", func() bool {
		h, _ := m.Host(name)
		return h.Status == store.HostOffline
	})
	if h := storedHost(t, db, name); h.Status != store.HostOffline || h.Failures <= 3 {
		t.Fatalf("stored %+v, want offline after more than 3 failures", h)
	}
	up.add(2) // written while the relay could not see them
	up.restart()
	eventually(t, "active again", func() bool {
		h, _ := m.Host(name)
		return h.Status == store.HostActive
	})
	eventually(t, "the frames written while offline", func() bool { return len(sub.seqs(name)) == 5 })
	if got := sub.seqs(name); !slices.Equal(got, seqRange(1, 5)) {
		t.Fatalf("submitted %v", got)
	}
	if c := up.seenCursors(); c[len(c)-1] != "3" {
		t.Fatalf("reconnected with cursor %q, want 3", c[len(c)-1])
	}
	eventually(t, "stored active with no failures", func() bool {
		h := storedHost(t, db, name)
		return h.Status == store.HostActive && h.Failures == 0 && h.Cursor == 5
	})
}

// TestManagerFutureCursor: a host whose seqs restarted below our cursor
// answers FutureCursor; it goes idle, unsubscribed, until a crawl request,
// which resumes it live.
func TestManagerFutureCursor(t *testing.T) {
	db := openStore(t, "")
	up := newFakeUpstream(t)
	name := up.hostname()
	// The relay remembers seq 100 of a host that now has 2 events.
	if err := db.PutHost(context.Background(), &store.Host{Hostname: name, Status: store.HostActive, Cursor: 100, NoSSL: true}); err != nil {
		t.Fatal(err)
	}
	up.add(2)
	up.future = true
	sub := &fakeSubmitter{}
	m := newTestManager(t, db, sub, nil)
	eventually(t, "idle", func() bool { return storedHost(t, db, name).Status == store.HostIdle })
	time.Sleep(100 * time.Millisecond)
	if n := len(up.seenCursors()); n != 1 || up.seenCursors()[0] != "100" {
		t.Fatalf("connections %v, want one with cursor 100 (an idle host is not retried)", up.seenCursors())
	}
	up.mu.Lock()
	up.future = false
	up.mu.Unlock()
	if err := m.RequestCrawl(context.Background(), name); err == nil {
		t.Fatal("a crawl request without the http scheme reached an http-only host")
	}
	if err := m.RequestCrawl(context.Background(), "http://"+name); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a live connection", func() bool { return up.openConns() == 1 })
	if c := up.seenCursors(); c[len(c)-1] != "" {
		t.Fatalf("resumed with cursor %q, want live", c[len(c)-1])
	}
	up.add(1)
	eventually(t, "the new frame", func() bool { return slices.Equal(sub.seqs(name), []int64{3}) })
	eventually(t, "stored cursor 3", func() bool {
		h := storedHost(t, db, name)
		return h.Cursor == 3 && h.Status == store.HostActive
	})
}

// TestManagerThrottled: a host over its events-per-second limit is read
// more slowly and shows as throttled; nothing is dropped.
func TestManagerThrottled(t *testing.T) {
	db := openStore(t, "")
	up := newFakeUpstream(t)
	sub := &fakeSubmitter{}
	m := newTestManager(t, db, sub, nil)
	name := up.hostname()
	if err := m.RequestCrawl(context.Background(), "http://"+name); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetLimits(context.Background(), name, store.HostLimits{EventsPerSecond: 20}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a connection", func() bool { return up.openConns() == 1 })
	start := time.Now()
	up.add(40)
	sawThrottled := false
	eventually(t, "40 frames", func() bool {
		if h, _ := m.Host(name); h.Status == store.HostThrottled {
			sawThrottled = true
		}
		return len(sub.seqs(name)) == 40
	})
	// A burst of 20, then 20 per second: the last frame no sooner than ~1s.
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("40 frames at 20/s took %v", d)
	}
	if !sawThrottled {
		t.Fatal("the host never showed as throttled")
	}
	if got := sub.seqs(name); !slices.Equal(got, seqRange(1, 40)) {
		t.Fatalf("submitted %v", got)
	}
	if h := storedHost(t, db, name); h.Status != store.HostActive || h.Limits.EventsPerSecond != 20 {
		t.Fatalf("stored %+v: throttled is not stored, the limit is", h)
	}
	eventually(t, "no longer throttled", func() bool {
		up.add(1)
		time.Sleep(60 * time.Millisecond)
		h, _ := m.Host(name)
		return h.Status == store.HostActive
	})
}

// TestManagerBan: a banned host is unsubscribed and refused; unbanned, it
// resumes after its cursor.
func TestManagerBan(t *testing.T) {
	db := openStore(t, "")
	up := newFakeUpstream(t)
	sub := &fakeSubmitter{}
	m := newTestManager(t, db, sub, nil)
	ctx := context.Background()
	name := up.hostname()
	if err := m.RequestCrawl(ctx, "http://"+name); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a connection", func() bool { return up.openConns() == 1 })
	up.add(2)
	eventually(t, "2 frames", func() bool { return len(sub.seqs(name)) == 2 })
	if h, err := m.Ban(ctx, name); err != nil || h.Status != store.HostBanned {
		t.Fatalf("ban: %+v %v", h, err)
	}
	eventually(t, "the connection closed", func() bool { return up.openConns() == 0 })
	up.add(2)
	time.Sleep(100 * time.Millisecond)
	if n := len(sub.seqs(name)); n != 2 {
		t.Fatalf("%d frames submitted while banned", n)
	}
	if err := m.RequestCrawl(ctx, "http://"+name); !errors.Is(err, ErrHostBanned) {
		t.Fatalf("crawl request of a banned host: %v", err)
	}
	if _, err := m.AddHost(ctx, name); !errors.Is(err, ErrHostBanned) {
		t.Fatalf("admin add of a banned host: %v", err)
	}
	if h := storedHost(t, db, name); h.Status != store.HostBanned {
		t.Fatalf("stored %+v", h)
	}
	if h, err := m.Unban(ctx, name); err != nil || h.Status != store.HostActive {
		t.Fatalf("unban: %+v %v", h, err)
	}
	eventually(t, "the frames of the ban", func() bool { return len(sub.seqs(name)) == 4 })
	if got := sub.seqs(name); !slices.Equal(got, seqRange(1, 4)) {
		t.Fatalf("submitted %v", got)
	}
	// A host never seen can be banned ahead of its crawl request.
	if _, err := m.Ban(ctx, "spam.example.com"); err != nil {
		t.Fatal(err)
	}
	if err := m.RequestCrawl(ctx, "https://SPAM.example.com/"); !errors.Is(err, ErrHostBanned) {
		t.Fatalf("crawl request of a pre-banned host: %v", err)
	}
	if _, err := m.Unban(ctx, "nowhere.example.com"); !errors.Is(err, ErrHostNotFound) {
		t.Fatalf("unban of an unknown host: %v", err)
	}
}

// TestManagerStopWhileBlocked: Stop returns while the submitter is full
// (Submit blocks): the subscription's context ends it.
func TestManagerStopWhileBlocked(t *testing.T) {
	db := openStore(t, "")
	up := newFakeUpstream(t)
	sub := &fakeSubmitter{block: make(chan struct{})}
	m := newTestManager(t, db, sub, nil)
	name := up.hostname()
	if err := m.RequestCrawl(context.Background(), "http://"+name); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a connection", func() bool { return up.openConns() == 1 })
	up.add(5)
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	m.Stop()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Stop took %v", d)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if h := storedHost(t, db, name); h.Cursor != store.NoCursor {
		t.Fatalf("cursor %d stored though nothing was done", h.Cursor)
	}
}

// TestRequestCrawlChecks: the refusals of crawl requests.
func TestRequestCrawlChecks(t *testing.T) {
	db := openStore(t, "")
	sub := &fakeSubmitter{}
	ctx := context.Background()
	secure := newTestManager(t, db, sub, func(o *ManagerOptions) { o.AllowInsecure = false })
	for _, c := range []struct {
		host string
		want error
	}{
		{"http://pds.example.com", ErrInvalidHostname},
		{"localhost", ErrNonPublicHost},
		{"pds.local", ErrInvalidHostname},
		{"127.0.0.1", ErrInvalidHostname},
		{"ftp://pds.example.com", ErrInvalidHostname},
	} {
		if err := secure.RequestCrawl(ctx, c.host); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.host, err, c.want)
		}
	}

	db2 := openStore(t, "")
	sub2 := &fakeSubmitter{}
	m := newTestManager(t, db2, sub2, func(o *ManagerOptions) { o.NewHostsPerDay = 2 })
	// A port nobody listens on: the host does not answer.
	closed := newFakeUpstream(t)
	closed.stop()
	if err := m.RequestCrawl(ctx, "http://"+closed.hostname()); !errors.Is(err, ErrHostUnreachable) {
		t.Fatalf("unreachable host: %v", err)
	}
	// A host that answers neither _health nor describeServer.
	mute := newFakeUpstream(t)
	mute.noHealth = true
	if err := m.RequestCrawl(ctx, "http://"+mute.hostname()); !errors.Is(err, ErrHostUnreachable) {
		t.Fatalf("host without health: %v", err)
	}
	// The admin adds a host without the answer check.
	if h, err := m.AddHost(ctx, "http://"+mute.hostname()); err != nil || h.Status != store.HostActive {
		t.Fatalf("admin add: %+v %v", h, err)
	}
	// The daily quota of new hosts (the admin's addition did not count).
	a, b, c := newFakeUpstream(t), newFakeUpstream(t), newFakeUpstream(t)
	for _, u := range []*fakeUpstream{a, b} {
		if err := m.RequestCrawl(ctx, "http://"+u.hostname()); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.RequestCrawl(ctx, "http://"+c.hostname()); !errors.Is(err, ErrNewHostQuota) {
		t.Fatalf("third new host of the day: %v", err)
	}
	// Known hosts are not new: asking again is fine.
	if err := m.RequestCrawl(ctx, "http://"+a.hostname()); err != nil {
		t.Fatalf("repeated crawl request: %v", err)
	}
	if got := m.Hosts(0, 10); len(got) != 3 || got[0].Hostname != mute.hostname() || got[1].Hostname != a.hostname() || got[2].Hostname != b.hostname() {
		t.Fatalf("hosts %+v", got)
	}
	if got := m.Hosts(2, 10); len(got) != 1 || got[0].ID != 3 {
		t.Fatalf("hosts after id 2: %+v", got)
	}
}

// TestManagerRecount: the account count of a host follows the mirrored
// accounts in the store, deleted ones left out.
func TestManagerRecount(t *testing.T) {
	db := openStore(t, "")
	ctx := context.Background()
	up := newFakeUpstream(t)
	name := up.hostname()
	if err := db.PutHost(ctx, &store.Host{Hostname: name, Status: store.HostActive, Cursor: store.NoCursor, NoSSL: true}); err != nil {
		t.Fatal(err)
	}
	for i, st := range []store.Status{store.StatusActive, store.StatusDeleted, store.StatusTakendown, store.StatusActive} {
		if _, err := db.Apply(ctx, &store.Change{Account: &store.Account{DID: fmt.Sprintf("did:plc:r%d", i), Host: name, Status: st}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Apply(ctx, &store.Change{Account: &store.Account{DID: "did:plc:elsewhere", Host: "other.example.com"}}); err != nil {
		t.Fatal(err)
	}
	m := newTestManager(t, db, &fakeSubmitter{}, nil)
	eventually(t, "count 3", func() bool {
		h, _ := m.Host(name)
		return h.AccountCount == 3
	})
	eventually(t, "stored count 3", func() bool { return storedHost(t, db, name).AccountCount == 3 })
}

// TestManagerQuietHost: a host that has sent nothing keeps an unknown
// cursor and stays active and subscribed (live, without a cursor); when
// its connection drops, what it writes meanwhile is not lost: the
// reconnection asks for its whole window.
func TestManagerQuietHost(t *testing.T) {
	db := openStore(t, "")
	up := newFakeUpstream(t)
	sub := &fakeSubmitter{}
	m := newTestManager(t, db, sub, nil)
	name := up.hostname()
	if err := m.RequestCrawl(context.Background(), "http://"+name); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a connection", func() bool { return up.openConns() == 1 })
	time.Sleep(50 * time.Millisecond)
	if h := storedHost(t, db, name); h.Cursor != store.NoCursor || h.Status != store.HostActive || !h.LastEventAt.IsZero() || h.Failures != 0 {
		t.Fatalf("quiet host stored as %+v", h)
	}
	up.stop()
	up.add(2) // written while the relay is disconnected
	up.restart()
	eventually(t, "the frames written meanwhile", func() bool { return len(sub.seqs(name)) == 2 })
	if c := up.seenCursors(); c[0] != "" || c[len(c)-1] != "0" {
		t.Fatalf("cursors %q: want live first, then 0", c)
	}
	eventually(t, "stored cursor 2", func() bool {
		h := storedHost(t, db, name)
		return h.Cursor == 2 && !h.LastEventAt.IsZero()
	})
}

// TestManagerBackfill: a new host's repositories (listRepos, page by page)
// are fetched whole, inactive ones skipped; the position is stored after
// each page, so a backfill cut short resumes where it was, and a finished
// one is not run again.
func TestManagerBackfill(t *testing.T) {
	db := openStore(t, t.TempDir())
	up := newFakeUpstream(t)
	inactive := false
	var want []string
	for i := range 35 {
		r := listedRepo{DID: fmt.Sprintf("did:plc:repo%02d", i)}
		if i%7 == 3 {
			r.Active = &inactive
		} else {
			want = append(want, r.DID)
		}
		up.repos = append(up.repos, r)
	}
	name := up.hostname()
	bf := &fakeBackfiller{blockAt: 15} // stops in the second page
	m := newTestManager(t, db, &fakeSubmitter{}, func(o *ManagerOptions) { o.Backfiller = bf; o.BackfillReposPerSecond = 1000 })
	if err := m.RequestCrawl(context.Background(), "http://"+name); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first page stored", func() bool { return storedHost(t, db, name).BackfillCursor == "10" })
	m.Stop()
	m.Close()
	first := bf.fetched()
	for _, did := range want[:9] { // page one: 10 listed, 1 inactive
		if !slices.Contains(first, did) {
			t.Fatalf("first run fetched %v, without %s", first, did)
		}
	}

	bf2 := &fakeBackfiller{}
	newTestManager(t, db, &fakeSubmitter{}, func(o *ManagerOptions) { o.Backfiller = bf2; o.BackfillReposPerSecond = 1000 })
	eventually(t, "backfill done", func() bool { return storedHost(t, db, name).BackfillDone })
	got := bf2.fetched()
	slices.Sort(got)
	if !slices.Equal(got, want[9:]) {
		t.Fatalf("resumed run fetched %v, want the repositories after the first page %v", got, want[9:])
	}
	// The first run listed page one and perhaps page two (cut short); the
	// second from the stored position on.
	if calls := up.listCalls; !slices.Equal(calls, []string{"", "10", "10", "20", "30"}) && !slices.Equal(calls, []string{"", "10", "20", "30"}) {
		t.Fatalf("listRepos cursors %q: want the first run's pages, then from the stored position", calls)
	}
	// Done: a later start does not list again.
	n := len(up.listCalls)
	newTestManager(t, db, &fakeSubmitter{}, func(o *ManagerOptions) { o.Backfiller = &fakeBackfiller{} })
	time.Sleep(100 * time.Millisecond)
	if len(up.listCalls) != n {
		t.Fatalf("a backfilled host was listed again: %q", up.listCalls[n:])
	}
}

// TestManagerAccountLimit: a host at its account limit has the events of
// accounts the store does not hold skipped, and shows as throttled; those
// of its known accounts pass. Raising the limit lets new accounts in.
func TestManagerAccountLimit(t *testing.T) {
	db := openStore(t, "")
	ctx := context.Background()
	up := newFakeUpstream(t)
	name := up.hostname()
	for _, did := range []string{"did:plc:upstream1", "did:plc:upstream2"} {
		if _, err := db.Apply(ctx, &store.Change{Account: &store.Account{DID: did, Host: name}}); err != nil {
			t.Fatal(err)
		}
	}
	sub := &fakeSubmitter{}
	m := newTestManager(t, db, sub, nil)
	if err := m.RequestCrawl(ctx, "http://"+name); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetLimits(ctx, name, store.HostLimits{MaxAccounts: 2}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the recount", func() bool { h, _ := m.Host(name); return h.AccountCount == 2 })
	eventually(t, "a connection", func() bool { return up.openConns() == 1 })
	up.add(4) // #identity of did:plc:upstream1..4
	eventually(t, "throttled", func() bool { h, _ := m.Host(name); return h.Status == store.HostThrottled })
	up.add(1)
	// Skipped events are handled: the durable cursor passes them.
	eventually(t, "stored cursor 5", func() bool { return storedHost(t, db, name).Cursor == 5 })
	if got := sub.seqs(name); !slices.Equal(got, []int64{1, 2}) {
		t.Fatalf("submitted %v, want the two known accounts' events only", got)
	}
	if _, err := m.SetLimits(ctx, name, store.HostLimits{MaxAccounts: 10}); err != nil {
		t.Fatal(err)
	}
	up.add(1)
	eventually(t, "a new account's event", func() bool { return slices.Equal(sub.seqs(name), []int64{1, 2, 6}) })
	if h, _ := m.Host(name); h.Status != store.HostActive {
		t.Fatalf("status %s under the raised limit", h.Status)
	}
	eventually(t, "the durable cursor past the skipped events", func() bool { return storedHost(t, db, name).Cursor == 6 })
}
