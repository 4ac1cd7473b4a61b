package relay_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reservoir-atproto/reservoir/events"
	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/mst"
	"github.com/reservoir-atproto/reservoir/relay"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
)

var (
	lagAccounts = flag.Int("lag.accounts", 1_000, "accounts of the relay-lag benchmark's upstream")
	lagCommits  = flag.Int("lag.commits", 10, "commits per account in the relay-lag benchmark's measured phase")
	lagWorkers  = flag.Int("lag.workers", 0, "IngestOptions.Workers in the relay-lag benchmark (0: the default, as serve)")
	lagRate     = flag.String("lag.rates", "500,2000", "measured commits per second of the relay-lag benchmark's runs")
	lagLog      = flag.Bool("lag.log", false, "log the relay's components to stderr in the relay-lag benchmark")
)

// lagUpstream is a fake PDS on loopback that serves one pre-signed stream
// on subscribeRepos: each account's first commit as fast as the relay takes
// them (the warm-up), then, once warm is closed, the measured commits at a
// steady rate, stamping the moment it hands each frame to the socket.
type lagUpstream struct {
	hostname string // localhost:port
	ident    *fakeIdentity
	warmup   [][]byte // first commits, upstream seq 1..n
	measured [][]byte // the commits after them, interleaved across accounts
	index    map[string]int

	mu    sync.Mutex
	run   *lagRun // the run being served
	conns atomic.Int32
}

// lagRun is one benchmark run's schedule and stamps.
type lagRun struct {
	rate int           // measured commits per second
	warm chan struct{} // closed when the relay re-broadcast every warm-up commit
	base time.Time
	// Per measured commit, ns since base (0: not yet): the upstream's
	// write, the relay's Submit of the frame it read, the store's commit.
	sentAt, submitAt, commitAt []atomic.Int64
}

// stamp records now in at[i] for the measured commit with upstream seq.
func (r *lagRun) stamp(at []atomic.Int64, i int) {
	if i >= 0 && i < len(at) {
		at[i].Store(int64(time.Since(r.base)))
	}
}

// submitStamper is the relay's Submitter with a stamp of each measured
// commit's arrival.
type submitStamper struct {
	in     *relay.Ingest
	run    *lagRun
	warmup int
}

func (s submitStamper) Submit(ctx context.Context, hostname string, seq int64, frame []byte) error {
	s.run.stamp(s.run.submitAt, int(seq)-s.warmup-1)
	return s.in.Submit(ctx, hostname, seq, frame)
}

var (
	lagOnce   sync.Once
	theLagged *lagUpstream
)

// key names a commit on both firehoses: the relay keeps repo and rev.
func lagKey(did, rev string) string { return did + " " + rev }

func loadLagUpstream(b *testing.B) *lagUpstream {
	lagOnce.Do(func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		u := &lagUpstream{hostname: "localhost:" + port, ident: newFakeIdentity(), index: map[string]int{}}
		start := time.Now()
		n, c := *lagAccounts, *lagCommits
		firsts := make([][]byte, n)
		nexts := make([][][]byte, n)
		keys := make([][]string, n)
		var wg sync.WaitGroup
		workers := runtime.GOMAXPROCS(0)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += workers {
					firsts[i], nexts[i], keys[i] = lagAccount(b, u.ident, "http://"+u.hostname, i, n, c)
				}
			}()
		}
		wg.Wait()
		u.warmup = firsts
		for j := range c {
			for i := range n {
				u.index[keys[i][j]] = len(u.measured)
				u.measured = append(u.measured, nexts[i][j])
			}
		}
		mux := http.NewServeMux()
		mux.HandleFunc("/xrpc/_health", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"version":"lag"}`)) })
		mux.HandleFunc("/xrpc/com.atproto.sync.listRepos", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"repos":[]}`)) // nothing to backfill: every account arrives on the firehose
		})
		mux.HandleFunc("/xrpc/com.atproto.sync.subscribeRepos", u.subscribe)
		go (&http.Server{Handler: mux}).Serve(ln)
		theLagged = u
		b.Logf("upstream %s: %d accounts, %d measured commits, signed in %v", u.hostname, n, len(u.measured), time.Since(start))
	})
	return theLagged
}

// lagAccount signs account i's first commit (5 records) and its next
// commits (one new record each), with the upstream seqs of their places in
// the stream (the n first commits, then round after round of next commits);
// keys are the next commits' lagKeys.
func lagAccount(b *testing.B, ident *fakeIdentity, pds string, i, n, commits int) (first []byte, next [][]byte, keys []string) {
	priv, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		b.Fatal(err)
	}
	pub, _ := priv.PublicKey()
	did := newDID()
	ident.set(did, pub, pds, "")
	opts := repo.CommitOptions{DID: syntax.DID(did), Key: priv, Clock: repo.NewRevClock(0)}
	tree := mst.NewEmpty(mst.MemBlocks{})
	enc := func(r *repo.CommitResult, seq int) []byte {
		return (&wire.Commit{Repo: did, Rev: string(r.Commit.Rev), Since: string(r.Since), Commit: r.CID, PrevData: r.PrevData,
			Blocks: r.Slice, Ops: r.Ops, Time: time.Now()}).AppendFrame(nil, int64(seq))
	}
	var ws []repo.Write
	for j := range 5 {
		ws = append(ws, create(fmt.Sprintf("app.bsky.feed.post/3l%011d", j), "hello world, this is a post"))
	}
	res, err := repo.BuildCommit(tree, nil, ws, opts)
	if err != nil {
		b.Fatal(err)
	}
	first = enc(res, i+1)
	for c := range commits {
		if res, err = repo.BuildCommit(tree, res.Commit, []repo.Write{create(fmt.Sprintf("app.bsky.feed.like/3m%011d", c), "a like")}, opts); err != nil {
			b.Fatal(err)
		}
		next = append(next, enc(res, n+1+c*n+i))
		keys = append(keys, lagKey(did, string(res.Commit.Rev)))
	}
	return first, next, keys
}

// subscribe serves the current run: the warm-up, then the paced commits.
// Every connection starts from the beginning (the relay connects once).
func (u *lagUpstream) subscribe(w http.ResponseWriter, r *http.Request) {
	c, err := testUpgraderLag.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	u.conns.Add(1)
	u.mu.Lock()
	run := u.run
	u.mu.Unlock()
	go func() { // read (pongs, close) until the relay leaves
		for {
			if _, _, err := c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	for _, f := range u.warmup {
		if err := c.WriteMessage(websocket.BinaryMessage, f); err != nil {
			return
		}
	}
	select {
	case <-run.warm:
	case <-r.Context().Done():
		return
	}
	interval := time.Second / time.Duration(run.rate)
	start := time.Now()
	for i, f := range u.measured {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		run.sentAt[i].Store(int64(time.Since(run.base)))
		if err := c.WriteMessage(websocket.BinaryMessage, f); err != nil {
			return
		}
	}
	<-r.Context().Done()
}

var testUpgraderLag = websocket.Upgrader{}

// BenchmarkRelayLag is performance goal P9: the lag the relay adds, from the
// moment a fake upstream PDS on loopback writes a signed #commit to its
// socket to the moment a consumer of the relay's own subscribeRepos reads
// the relay's frame for it. The relay is wired as `reservoir serve` wires it
// (store with the ring as OnCommit, firehose, Ingest with its defaults,
// Manager crawling the host over a websocket), with the fake identity
// resolver of the tests in place of PLC lookups; the host's events-per-second
// limit is raised as an admin would (the default 1,000/s would throttle the
// 2,000/s run). The upstream streams *lag.accounts* accounts' first
// commits (not measured), then *lag.commits* commits per account,
// interleaved, at the run's rate. Reported: p50/p90/p99/max lag in ms over
// the measured commits, the rate the relay delivered them at (commits/s:
// measured commits over first send → last receive), p50/p99 of the three
// stages of lagResult, and the process's CPU per measured commit. For the
// stages the Manager's Submitter and the store's OnCommit are wrapped with
// stamps (the latter decodes each committed frame, ≈2 µs in the committer).
func BenchmarkRelayLag(b *testing.B) {
	for _, rate := range lagRates(b) {
		b.Run(fmt.Sprintf("rate=%d", rate), func(b *testing.B) {
			u := loadLagUpstream(b)
			var res lagResult
			for b.Loop() {
				res = runLag(b, u, rate)
			}
			b.ReportMetric(pct(res.total, 0.50), "p50-ms")
			b.ReportMetric(pct(res.total, 0.90), "p90-ms")
			b.ReportMetric(pct(res.total, 0.99), "p99-ms")
			b.ReportMetric(pct(res.total, 1), "max-ms")
			b.ReportMetric(float64(len(res.total))/(res.last-res.first).Seconds(), "commits/s")
			b.ReportMetric(float64(res.cpu.Microseconds())/float64(len(res.total)), "cpu-µs/commit")
			for _, st := range []struct {
				name string
				ds   []time.Duration
			}{{"in", res.in}, {"ingest", res.ingest}, {"out", res.out}} {
				b.ReportMetric(pct(st.ds, 0.50), st.name+"-p50-ms")
				b.ReportMetric(pct(st.ds, 0.99), st.name+"-p99-ms")
			}
			if la, err := os.ReadFile("/proc/loadavg"); err == nil {
				b.Logf("load average at the end: %s", strings.TrimSpace(string(la)))
			}
		})
	}
}

func lagRates(b *testing.B) []int {
	var rates []int
	for _, f := range strings.Split(*lagRate, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || r <= 0 {
			b.Fatalf("-lag.rates: %q is not a rate", f)
		}
		rates = append(rates, r)
	}
	return rates
}

// runLag runs one relay through the warm-up and the measured phase at rate
// and returns the lag of every measured commit.
func runLag(b *testing.B, u *lagUpstream, rate int) lagResult {
	n := len(u.measured)
	run := &lagRun{rate: rate, warm: make(chan struct{}), base: time.Now(),
		sentAt: make([]atomic.Int64, n), submitAt: make([]atomic.Int64, n), commitAt: make([]atomic.Int64, n)}
	u.mu.Lock()
	u.run = run
	u.mu.Unlock()
	u.conns.Store(0)

	// The relay, as cmd/reservoir/serve.go wires it.
	var logOut io.Writer = io.Discard
	if *lagLog {
		logOut = os.Stderr
	}
	logger := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := prometheus.NewRegistry()
	fhMetrics, err := events.NewMetrics(reg)
	if err != nil {
		b.Fatal(err)
	}
	ring := events.NewRing(events.RingOptions{Metrics: fhMetrics})
	onCommit := func(evs []store.CommittedEvent) { // ring.Publish, after a stamp of each measured commit
		for _, e := range evs {
			if ev, err := wire.DecodeFrame(e.Frame); err == nil {
				if c, ok := ev.(*wire.CommitEvent); ok {
					if i, ok := u.index[lagKey(c.Repo, c.Rev)]; ok {
						run.stamp(run.commitAt, i)
					}
				}
			}
		}
		ring.Publish(evs)
	}
	db, err := store.Open(store.Options{Dir: b.TempDir(), Logger: logger, HistoryWindow: 72 * time.Hour, EventWindow: 72 * time.Hour, OnCommit: onCommit})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	fh, err := events.New(events.Options{Log: db, Ring: ring, EventWindow: 72 * time.Hour, Metrics: fhMetrics, Logger: logger})
	if err != nil {
		b.Fatal(err)
	}
	defer fh.Close()
	repos := &repostore.Repos{DB: db}
	var mgrRef atomic.Pointer[relay.Manager]
	in, err := relay.NewIngest(relay.IngestOptions{
		DB: db, Repos: repos, Identity: u.ident, AllowInsecure: true, Workers: *lagWorkers,
		OnDone: func(hostname string, seq int64) { mgrRef.Load().Done(hostname, seq) },
		DiscoverHost: func(endpoint string) {
			if m := mgrRef.Load(); m != nil {
				m.Discover(endpoint)
			}
		},
		SweepDesynchronized: true,
		Logger:              logger,
		Registerer:          reg,
	})
	if err != nil {
		b.Fatal(err)
	}
	mgr, err := relay.NewManager(relay.ManagerOptions{DB: db, Submitter: submitStamper{in, run, len(u.warmup)}, Backfiller: in, AllowInsecure: true, Logger: logger, Registerer: reg})
	if err != nil {
		b.Fatal(err)
	}
	mgrRef.Store(mgr)
	if err := mgr.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		mgr.Stop()
		in.Close()
		mgr.Close()
	}()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fh.ServeWebSocket(w, r, events.LiveCursor); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()

	// The consumer connects before the relay crawls the host.
	conn, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	if _, err := mgr.AddHost(ctx, "http://"+u.hostname); err != nil {
		b.Fatal(err)
	}
	if _, err := mgr.SetLimits(ctx, u.hostname, store.HostLimits{EventsPerSecond: 20_000}); err != nil {
		b.Fatal(err)
	}

	recvAt := make([]time.Duration, n)
	received, warm := 0, 0
	var cpu0 time.Duration
	conn.SetReadDeadline(time.Now().Add(time.Minute + time.Duration(n)*time.Second/time.Duration(rate)))
	for received < n {
		_, data, err := conn.ReadMessage()
		at := time.Since(run.base)
		if err != nil {
			b.Fatalf("consumer: %v after %d warm-up and %d measured commits", err, warm, received)
		}
		ev, err := wire.DecodeFrame(data)
		if err != nil {
			b.Fatal(err)
		}
		c, ok := ev.(*wire.CommitEvent)
		if !ok {
			continue
		}
		i, measured := u.index[lagKey(c.Repo, c.Rev)]
		if !measured {
			if warm++; warm == len(u.warmup) {
				cpu0 = cpuTime()
				close(run.warm)
			}
			continue
		}
		if recvAt[i] != 0 {
			b.Fatalf("commit %d re-broadcast twice", i)
		}
		recvAt[i] = at
		received++
	}
	if c := u.conns.Load(); c != 1 {
		b.Fatalf("the relay connected %d times, want once", c)
	}
	res := lagResult{first: time.Duration(run.sentAt[0].Load()), last: slices.Max(recvAt), cpu: cpuTime() - cpu0}
	for i := range n {
		sent, submit, commit := time.Duration(run.sentAt[i].Load()), time.Duration(run.submitAt[i].Load()), time.Duration(run.commitAt[i].Load())
		if sent == 0 || submit == 0 || commit == 0 {
			b.Fatalf("commit %d: sent %v, submitted %v, committed %v", i, sent, submit, commit)
		}
		res.total = append(res.total, recvAt[i]-sent)
		res.in = append(res.in, submit-sent)
		res.ingest = append(res.ingest, commit-submit)
		res.out = append(res.out, recvAt[i]-commit)
	}
	return res
}

// lagResult is one run's lags per measured commit: the whole (upstream
// write → consumer read) and its stages: in (upstream write → the relay's
// Submit: the sockets and the relay's reader), ingest (Submit → durable in
// the store: queue, decode, verification, apply, group commit and fsync),
// out (durable → consumer read: ring, subscriber wake-up, socket).
type lagResult struct {
	total, in, ingest, out []time.Duration
	first, last            time.Duration // first send, last receive
	cpu                    time.Duration // CPU of the process (upstream and consumer included) meanwhile
}

// pct is the p-quantile of ds in ms (ds gets sorted).
func pct(ds []time.Duration, p float64) float64 {
	slices.Sort(ds)
	return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))].Microseconds()) / 1000
}
