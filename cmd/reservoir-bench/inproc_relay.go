package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/reservoir-atproto/reservoir/events"
	"github.com/reservoir-atproto/reservoir/identity"
	"github.com/reservoir-atproto/reservoir/internal/loadgen"
	"github.com/reservoir-atproto/reservoir/relay"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
)

// inProcessStarter runs the relay in this process, wired as `reservoir
// serve` wires it (store, ring and firehose, identity resolver, ingest,
// host manager), so that --cpuprofile sees it. Its CPU and RSS are this
// process's, which also runs the fake host and the counting consumer.
func inProcessStarter(lean bool) relayStarter {
	return func(ctx context.Context, dir string, host *loadgen.Host, plcURL string) (*relayProc, error) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		lf, err := os.Create(filepath.Join(dir, "reservoir-inprocess.log"))
		if err != nil {
			return nil, err
		}
		logger := slog.New(slog.NewTextHandler(lf, &slog.HandlerOptions{Level: slog.LevelWarn}))
		p := &relayProc{name: "reservoir", exited: make(chan struct{}), logf: lf,
			statsFn: func() (procStats, error) { return readProc(os.Getpid()) }}
		var closers []func()
		p.after = func() {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
		fail := func(err error) (*relayProc, error) { p.after(); lf.Close(); return nil, err }
		ring := events.NewRing(events.RingOptions{})
		db, err := store.Open(store.Options{Dir: filepath.Join(dir, "store"), HistoryWindow: 72 * time.Hour, EventWindow: 72 * time.Hour, OnCommit: ring.Publish, Logger: logger})
		if err != nil {
			return fail(err)
		}
		closers = append(closers, func() { db.Close() })
		fh, err := events.New(events.Options{Log: db, Ring: ring, EventWindow: 72 * time.Hour, MaxSubscribers: 10_000, Logger: logger})
		if err != nil {
			return fail(err)
		}
		closers = append(closers, fh.Close)
		ids, err := identity.New(identity.Options{PLCURL: plcURL, AllowInsecure: true, Logger: logger})
		if err != nil {
			return fail(err)
		}
		repos := &repostore.Repos{DB: db}
		var mgr *relay.Manager
		in, err := relay.NewIngest(relay.IngestOptions{DB: db, Repos: repos, Identity: ids, AllowInsecure: true, Lean: lean,
			OnDone: func(hostname string, seq int64) { mgr.Done(hostname, seq) }, SweepDesynchronized: true, Logger: logger})
		if err != nil {
			return fail(err)
		}
		if mgr, err = relay.NewManager(relay.ManagerOptions{DB: db, Submitter: in, Backfiller: in, AllowInsecure: true, Logger: logger}); err == nil {
			err = mgr.Start()
		}
		if err != nil {
			in.Close()
			return fail(err)
		}
		closers = append(closers, func() { mgr.Stop(); in.Close(); mgr.Close() })
		mux := http.NewServeMux()
		mux.HandleFunc("/xrpc/com.atproto.sync.subscribeRepos", func(w http.ResponseWriter, r *http.Request) {
			c, err := events.ParseCursor(r.URL.Query().Get("cursor"))
			if err == nil {
				err = fh.ServeWebSocket(w, r, c)
			}
			if err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
			}
		})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fail(err)
		}
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		closers = append(closers, func() { srv.Close() })
		p.root = "http://" + ln.Addr().String()
		// As crawl does for a child relay: the host added, its event limit
		// raised, then the crawl requested.
		if _, err := mgr.AddHost(ctx, host.URL()); err != nil {
			return fail(errors.Join(errors.New("in-process relay: adding the host"), err))
		}
		if _, err := mgr.SetLimits(ctx, host.Hostname(), store.HostLimits{EventsPerSecond: benchHostEventsPerSecond}); err != nil {
			return fail(errors.Join(errors.New("in-process relay: host limits"), err))
		}
		if err := mgr.RequestCrawl(ctx, host.URL()); err != nil {
			return fail(errors.Join(errors.New("in-process relay: requestCrawl"), err))
		}
		return p, nil
	}
}
