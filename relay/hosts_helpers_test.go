package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/store"
)

// fakeUpstream is a host's firehose for tests: a log of #identity frames
// with seqs 1..n, served after the cursor a subscriber gives, then live as
// frames are appended. It records the cursor of every connection.
type fakeUpstream struct {
	t    *testing.T
	ln   net.Listener
	srv  *http.Server
	addr string // 127.0.0.1:port

	mu        sync.Mutex
	frames    [][]byte
	wake      chan struct{}
	cursors   []string
	conns     int // open connections
	closing   map[*websocket.Conn]bool
	repos     []listedRepo // what listRepos lists, 10 a page
	listCalls []string     // the cursor of every listRepos call
	maxSend   int          // close each connection after sending this many frames (0: never)
	future    bool         // answer every connection with FutureCursor
	noHealth  bool         // answer /xrpc/_health with 404
}

func newFakeUpstream(t *testing.T) *fakeUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &fakeUpstream{t: t, addr: ln.Addr().String(), wake: make(chan struct{}), closing: map[*websocket.Conn]bool{}}
	u.serve(ln)
	t.Cleanup(u.stop)
	return u
}

// hostname is the name a crawl request gives for the upstream.
func (u *fakeUpstream) hostname() string {
	_, port, _ := net.SplitHostPort(u.addr)
	return "localhost:" + port
}

func (u *fakeUpstream) serve(ln net.Listener) {
	u.ln = ln
	mux := http.NewServeMux()
	mux.HandleFunc("/xrpc/_health", func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		noHealth := u.noHealth
		u.mu.Unlock()
		if noHealth {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"version":"fake"}`))
	})
	mux.HandleFunc("/xrpc/com.atproto.sync.subscribeRepos", u.subscribe)
	mux.HandleFunc("/xrpc/com.atproto.sync.listRepos", u.listRepos)
	u.srv = &http.Server{Handler: mux}
	go u.srv.Serve(ln)
}

// stop closes the listener and every connection (the host goes down).
func (u *fakeUpstream) stop() {
	u.srv.Close()
	u.mu.Lock()
	for c := range u.closing {
		c.Close()
	}
	u.mu.Unlock()
}

// restart serves again on the same address.
func (u *fakeUpstream) restart() {
	u.t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port may linger a moment
		if ln, err = net.Listen("tcp", u.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		u.t.Fatal(err)
	}
	u.serve(ln)
}

// add appends n frames (#identity events of did:plc:upstream<seq>).
func (u *fakeUpstream) add(n int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for range n {
		seq := int64(len(u.frames) + 1)
		e := &wire.Identity{DID: fmt.Sprintf("did:plc:upstream%d", seq), Time: time.Unix(0, 0)}
		u.frames = append(u.frames, e.AppendFrame(nil, seq))
	}
	close(u.wake)
	u.wake = make(chan struct{})
}

func (u *fakeUpstream) seenCursors() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.cursors...)
}

func (u *fakeUpstream) openConns() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.conns
}

var testUpgrader = websocket.Upgrader{}

// listRepos pages through u.repos, 10 at a time; the cursor is an index.
func (u *fakeUpstream) listRepos(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	defer u.mu.Unlock()
	cursor := r.URL.Query().Get("cursor")
	u.listCalls = append(u.listCalls, cursor)
	from, _ := strconv.Atoi(cursor)
	to := min(from+10, len(u.repos))
	out := map[string]any{"repos": u.repos[from:to]}
	if to < len(u.repos) {
		out["cursor"] = strconv.Itoa(to)
	}
	json.NewEncoder(w).Encode(out)
}

// fakeBackfiller records the repositories it is asked to fetch; block,
// when set, makes it wait (until ctx ends) once it has fetched that many.
type fakeBackfiller struct {
	mu      sync.Mutex
	dids    []string
	blockAt int
}

func (f *fakeBackfiller) Backfill(ctx context.Context, hostname, did string) error {
	f.mu.Lock()
	if f.blockAt > 0 && len(f.dids) >= f.blockAt {
		f.mu.Unlock()
		<-ctx.Done()
		return ctx.Err()
	}
	f.dids = append(f.dids, did)
	f.mu.Unlock()
	return nil
}

func (f *fakeBackfiller) fetched() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.dids...)
}

func (u *fakeUpstream) subscribe(w http.ResponseWriter, r *http.Request) {
	raw := r.URL.Query().Get("cursor")
	c, err := testUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	u.mu.Lock()
	u.cursors = append(u.cursors, raw)
	u.conns++
	u.closing[c] = true
	future, maxSend := u.future, u.maxSend
	// The position is taken with the connection counted, so frames added
	// once a test sees the connection are sent.
	next := len(u.frames) // live: from the head
	if raw != "" {
		n, _ := strconv.Atoi(raw)
		next = min(n, len(u.frames))
	}
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		u.conns--
		delete(u.closing, c)
		u.mu.Unlock()
	}()
	if future {
		c.WriteMessage(websocket.BinaryMessage, wire.ErrorFrame("FutureCursor", "Cursor in the future."))
		return
	}
	gone := make(chan struct{})
	go func() { // read until the client leaves
		defer close(gone)
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	sent := 0
	for {
		u.mu.Lock()
		pending := u.frames[next:]
		wake := u.wake
		u.mu.Unlock()
		for _, f := range pending {
			if maxSend > 0 && sent == maxSend {
				return
			}
			if err := c.WriteMessage(websocket.BinaryMessage, f); err != nil {
				return
			}
			next++
			sent++
		}
		select {
		case <-wake:
		case <-gone:
			return
		}
	}
}

// fakeSubmitter stands in for the ingest: it records each submission and
// reports it done after a random short delay, so seqs finish out of order.
type fakeSubmitter struct {
	mu     sync.Mutex
	byHost map[string][]int64
	done   func(hostname string, seq int64)
	block  chan struct{} // when set, Submit waits on it (a full ingest)
	delay  time.Duration // upper bound of the random delay before done
	wg     sync.WaitGroup
	loose  int // frames whose slice holds more than their bytes
}

func (f *fakeSubmitter) Submit(ctx context.Context, hostname string, seq int64, frame []byte) error {
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	h, err := readFrameHead(frame)
	if err != nil || h.Seq != seq {
		return fmt.Errorf("fake submitter: frame %v seq %d, given %d", err, h.Seq, seq)
	}
	f.mu.Lock()
	if cap(frame) != len(frame) {
		f.loose++
	}
	if f.byHost == nil {
		f.byHost = map[string][]int64{}
	}
	f.byHost[hostname] = append(f.byHost[hostname], seq)
	f.mu.Unlock()
	f.wg.Go(func() {
		if f.delay > 0 {
			time.Sleep(time.Duration(rand.Int64N(int64(f.delay))))
		}
		f.done(hostname, seq)
	})
	return nil
}

func (f *fakeSubmitter) seqs(hostname string) []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int64(nil), f.byHost[hostname]...)
}

// fastOptions are manager options with test-sized timings.
func fastOptions(db *store.DB, sub *fakeSubmitter) ManagerOptions {
	return ManagerOptions{
		DB: db, Submitter: sub, AllowInsecure: true,
		CheckTimeout: 2 * time.Second, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		OfflineAfter: 3, OfflineRetry: 50 * time.Millisecond, FlushInterval: 20 * time.Millisecond,
		RecountInterval: 50 * time.Millisecond, StopTimeout: 5 * time.Second,
	}
}

// newTestManager starts a manager whose submitter reports to it.
func newTestManager(t *testing.T, db *store.DB, sub *fakeSubmitter, tweak func(*ManagerOptions)) *Manager {
	t.Helper()
	opts := fastOptions(db, sub)
	if tweak != nil {
		tweak(&opts)
	}
	m, err := NewManager(opts)
	if err != nil {
		t.Fatal(err)
	}
	sub.done = m.Done
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Stop()
		sub.wg.Wait()
		m.Close()
	})
	return m
}

func openStore(t *testing.T, dir string) *store.DB {
	t.Helper()
	opts := store.Options{GCInterval: -1}
	if dir == "" {
		opts.InMemory = true
	} else {
		opts.Dir = dir
	}
	db, err := store.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// eventually polls cond every 10ms for up to 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// seqRange is 1..n.
func seqRange(from, to int64) []int64 {
	var s []int64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}
