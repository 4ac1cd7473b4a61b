package events

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/store"

	"github.com/reservoir-atproto/reservoir/events/wire"
)

// clock is a settable clock shared by the store and the firehose.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// testLog is a store with a ring fed by its committer, and a firehose over
// both.
type testLog struct {
	t     testing.TB
	db    *store.DB
	ring  *Ring
	fh    *Firehose
	clock *clock
	opts  Options
}

type logConfig struct {
	ring   RingOptions
	fh     Options
	window time.Duration // the store's event window; default 72h
	dir    string        // on disk when set, else in memory
	clock  *clock
}

func newTestLog(t testing.TB, cfg logConfig) *testLog {
	t.Helper()
	if cfg.clock == nil {
		cfg.clock = newClock()
	}
	if cfg.window == 0 {
		cfg.window = 72 * time.Hour
	}
	l := &testLog{t: t, clock: cfg.clock, ring: NewRing(cfg.ring)}
	db, err := store.Open(store.Options{
		Dir: cfg.dir, InMemory: cfg.dir == "", GCInterval: -1, EventWindow: cfg.window,
		Now: cfg.clock.Now, OnCommit: l.ring.Publish,
	})
	if err != nil {
		t.Fatal(err)
	}
	l.db = db
	o := cfg.fh
	o.Log, o.Ring, o.Now, o.EventWindow = db, l.ring, cfg.clock.Now, cfg.window
	if l.fh, err = New(o); err != nil {
		t.Fatal(err)
	}
	l.opts = l.fh.opts
	t.Cleanup(l.close)
	return l
}

func (l *testLog) close() {
	l.fh.Close()
	l.db.Close()
}

// account creates an account; its creation emits one #identity event.
func (l *testLog) account(did string) uint64 {
	l.t.Helper()
	now := l.clock.Now()
	res, err := l.db.Apply(context.Background(), &store.Change{
		Account: &store.Account{DID: did, CreatedAt: now},
		Events:  []store.FrameEncoder{(&wire.Identity{DID: did, Handle: "new.test", Time: now}).AppendFrame},
	})
	if err != nil {
		l.t.Fatal(err)
	}
	l.published(res.Seqs)
	return res.UID
}

// published waits until the ring has the events of seqs: the committer
// publishes a group just after Apply returns, and tests that look at the
// ring want it settled.
func (l *testLog) published(seqs []int64) {
	if len(seqs) == 0 {
		return
	}
	for deadline := time.Now().Add(10 * time.Second); l.ring.Head() < seqs[len(seqs)-1]; {
		if time.Now().After(deadline) {
			panic("the ring never got the events")
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// emit commits one change of account uid with n #identity events, each a
// little different, and returns their seqs.
func (l *testLog) emit(uid uint64, did string, n int) []int64 {
	return l.emitSized(uid, did, n, 0)
}

// emitSized is emit with handles padded to about pad bytes.
func (l *testLog) emitSized(uid uint64, did string, n, pad int) []int64 {
	l.t.Helper()
	now := l.clock.Now()
	c := &store.Change{UID: uid}
	for i := range n {
		h := fmt.Sprintf("e%d-%d.test", uid, i)
		if pad > len(h) {
			h = strings.Repeat("x", pad-len(h)) + h
		}
		c.Events = append(c.Events, (&wire.Identity{DID: did, Handle: h, Time: now}).AppendFrame)
	}
	res, err := l.db.Apply(context.Background(), c)
	if err != nil {
		l.t.Fatal(err)
	}
	l.published(res.Seqs)
	return res.Seqs
}

// deleteAccount does what host.DeleteAccount does to the log: purge every
// earlier event of the account and add #account {status: deleted}.
func (l *testLog) deleteAccount(uid uint64, did string) int64 {
	return l.accountStatus(uid, did, store.StatusDeleted, true)
}

// accountStatus commits an #account event with status; with purge, the
// same change purges the account's earlier events (as the relay does when
// a host deletes an account, whatever status it then reports).
func (l *testLog) accountStatus(uid uint64, did string, status store.Status, purge bool) int64 {
	l.t.Helper()
	c := &store.Change{UID: uid, Account: &store.Account{UID: uid, DID: did, Status: status}}
	if purge {
		seqs, err := l.db.EventSeqs(uid)
		if err != nil {
			l.t.Fatal(err)
		}
		c.Delete, c.PurgeEvents = true, seqs
	}
	c.Events = []store.FrameEncoder{(&wire.Account{DID: did, Active: status.Active(), Status: string(status), Time: l.clock.Now()}).AppendFrame}
	res, err := l.db.Apply(context.Background(), c)
	if err != nil {
		l.t.Fatal(err)
	}
	l.published(res.Seqs)
	return res.Seqs[0]
}

func (l *testLog) mustOpen(c Cursor) *Stream {
	l.t.Helper()
	s, err := l.fh.Open(c)
	if err != nil {
		l.t.Fatal(err)
	}
	return s
}

// logged is an event as the store holds it.
type logged struct {
	seq   int64
	frame []byte
}

// stored returns the store's log after seq after: the reference every
// stream is checked against.
func (l *testLog) stored(after int64) []logged {
	l.t.Helper()
	var out []logged
	if err := l.db.Events(after, func(ev store.CommittedEvent) error {
		out = append(out, logged{ev.Seq, bytes.Clone(ev.Frame)})
		return nil
	}); err != nil {
		l.t.Fatal(err)
	}
	return out
}

// drain reads a stream until it has nothing more after the store's last
// seq, copying the frames.
func drain(t testing.TB, s *Stream, until int64) []logged {
	t.Helper()
	var out []logged
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for s.Position() < until {
		frames, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("stream at %d (want %d): %v", s.Position(), until, err)
		}
		for _, f := range frames {
			out = append(out, logged{f.Seq, bytes.Clone(f.Data)})
		}
	}
	return out
}

// sameLog fails unless got is exactly want: same seqs, same bytes.
func sameLog(t testing.TB, what string, got, want []logged) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, the store has %d", what, len(got), len(want))
	}
	for i := range want {
		if got[i].seq != want[i].seq {
			t.Fatalf("%s: event %d has seq %d, the store's has %d", what, i, got[i].seq, want[i].seq)
		}
		if !bytes.Equal(got[i].frame, want[i].frame) {
			t.Fatalf("%s: seq %d: frame differs from the store's", what, want[i].seq)
		}
	}
}

// decodeFrame splits a frame into header and body, strictly, and checks the
// body's seq against seq (0: an #info or error frame, which carries none;
// negative: not checked).
func decodeFrame(t testing.TB, frame []byte, seq int64) (map[string]any, map[string]any) {
	t.Helper()
	d := dagcbor.NewDecoder(frame)
	h, err := d.ReadValue()
	if err != nil {
		t.Fatalf("frame header: %v", err)
	}
	b, err := d.ReadValue()
	if err != nil {
		t.Fatalf("frame body: %v", err)
	}
	if err := d.Done(); err != nil {
		t.Fatalf("frame: %v", err)
	}
	hm, ok1 := h.(map[string]any)
	bm, ok2 := b.(map[string]any)
	if !ok1 || !ok2 {
		t.Fatalf("frame: header %T, body %T", h, b)
	}
	switch got, has := bm["seq"]; {
	case seq > 0 && got != seq:
		t.Fatalf("frame of seq %d carries seq %v", seq, got)
	case seq == 0 && has:
		t.Fatalf("an #info or error frame carries seq %v", got)
	}
	return hm, bm
}

// server serves the firehose over websockets the way api does: the cursor
// parameter parsed before the upgrade.
func (l *testLog) server() *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ParseCursor(r.URL.Query().Get("cursor"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if err := l.fh.ServeWebSocket(w, r, c); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	}))
	l.t.Cleanup(srv.Close)
	return srv
}

// dial connects a websocket client at cursor ("" for none).
func dial(t testing.TB, srv *httptest.Server, cursor string) *websocket.Conn {
	t.Helper()
	u := "ws" + strings.TrimPrefix(srv.URL, "http") + "/"
	if cursor != "" {
		u += "?cursor=" + cursor
	}
	c, resp, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	resp.Body.Close()
	t.Cleanup(func() { c.Close() })
	return c
}

// readFrames reads binary messages until it has n of them.
func readFrames(t testing.TB, c *websocket.Conn, n int) [][]byte {
	t.Helper()
	out := make([][]byte, 0, n)
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for len(out) < n {
		typ, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("after %d of %d frames: %v", len(out), n, err)
		}
		if typ != websocket.BinaryMessage {
			t.Fatalf("message type %d, want binary", typ)
		}
		out = append(out, msg)
	}
	return out
}

// seqOf reads the seq of a message frame.
func seqOf(t testing.TB, frame []byte) int64 {
	t.Helper()
	d := dagcbor.NewDecoder(frame)
	if err := d.Skip(); err != nil {
		t.Fatal(err)
	}
	v, err := d.ReadValue()
	if err != nil {
		t.Fatal(err)
	}
	s, ok := v.(map[string]any)["seq"].(int64)
	if !ok {
		t.Fatalf("frame without seq: %v", v)
	}
	return s
}

// closeCode reads until the connection ends and returns the close frame's
// code and text.
func closeCode(t testing.TB, c *websocket.Conn) (int, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		if ce, ok := err.(*websocket.CloseError); ok {
			return ce.Code, ce.Text
		}
		t.Fatalf("connection ended without a close frame: %v", err)
	}
}
