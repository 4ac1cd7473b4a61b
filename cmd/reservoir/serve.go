package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/reservoir-atproto/reservoir/api"
	"github.com/reservoir-atproto/reservoir/events"
	"github.com/reservoir-atproto/reservoir/host"
	"github.com/reservoir-atproto/reservoir/identity"
	"github.com/reservoir-atproto/reservoir/plc"
	"github.com/reservoir-atproto/reservoir/relay"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
	"github.com/reservoir-atproto/reservoir/xrpc"
)

// serveConfig is `reservoir serve`'s configuration: the flags of the
// contract, each with its RESERVOIR_* environment twin (flags win).
type serveConfig struct {
	Listen             string
	Data               string
	PublicURL          string
	AdminPassword      string
	PLCURL             string
	Relays             []string
	Archive            bool
	ReplayWindow       time.Duration
	AllowInsecureHosts bool
	Lenient            bool
	MaxSubscribers     int
	// CrawlAuth is "public" (requestCrawl and notifyOfUpdate open to all,
	// rate limited) or "admin" (they require admin Basic auth).
	CrawlAuth string
	// LegacyEvents also emits the legacy #handle, #migrate and #tombstone
	// frames next to the current events of the relay's ingest.
	LegacyEvents bool

	// Relay is the timing of upstream subscriptions. It has no flags: the
	// defaults suit production, and tests shorten them through the
	// RESERVOIR_RELAY_* variables (see relayTimingFromEnv).
	Relay relayTiming
}

// relayTiming overrides the host manager's timing defaults (zero: keep the
// default).
type relayTiming struct {
	MinBackoff, MaxBackoff, OfflineRetry, RecountInterval, FlushInterval time.Duration
	OfflineAfter                                                         int
}

// relayTimingFromEnv reads RESERVOIR_RELAY_MIN_BACKOFF, _MAX_BACKOFF,
// _OFFLINE_RETRY, _RECOUNT_INTERVAL, _FLUSH_INTERVAL (durations) and
// _OFFLINE_AFTER (failed attempts before a host is offline).
func relayTimingFromEnv(getenv func(string) string) (relayTiming, error) {
	var rt relayTiming
	for _, d := range []struct {
		name string
		v    *time.Duration
	}{
		{"RESERVOIR_RELAY_MIN_BACKOFF", &rt.MinBackoff},
		{"RESERVOIR_RELAY_MAX_BACKOFF", &rt.MaxBackoff},
		{"RESERVOIR_RELAY_OFFLINE_RETRY", &rt.OfflineRetry},
		{"RESERVOIR_RELAY_RECOUNT_INTERVAL", &rt.RecountInterval},
		{"RESERVOIR_RELAY_FLUSH_INTERVAL", &rt.FlushInterval},
	} {
		if v := getenv(d.name); v != "" {
			x, err := time.ParseDuration(v)
			if err != nil || x <= 0 {
				return rt, fmt.Errorf("serve: %s: %q is not a positive duration", d.name, v)
			}
			*d.v = x
		}
	}
	if v := getenv("RESERVOIR_RELAY_OFFLINE_AFTER"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return rt, fmt.Errorf("serve: RESERVOIR_RELAY_OFFLINE_AFTER: %q is not a positive integer", v)
		}
		rt.OfflineAfter = n
	}
	return rt, nil
}

func parseServeFlags(args []string, getenv func(string) string, stderr io.Writer) (*serveConfig, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	var cfg serveConfig
	var relays, archive, window, insecure, lenient, maxSubs, legacy string
	fs.StringVar(&cfg.Listen, "listen", env("RESERVOIR_LISTEN", ":2480"), "HTTP address: XRPC, websocket, admin, /metrics, /xrpc/_health (env RESERVOIR_LISTEN)")
	fs.StringVar(&cfg.Data, "data", env("RESERVOIR_DATA", "./data"), "data directory of the embedded store (env RESERVOIR_DATA)")
	fs.StringVar(&cfg.PublicURL, "public-url", env("RESERVOIR_PUBLIC_URL", "http://localhost:2480"), "this service's own URL, the PDS endpoint of hosted accounts (env RESERVOIR_PUBLIC_URL)")
	fs.StringVar(&cfg.AdminPassword, "admin-password", env("RESERVOIR_ADMIN_PASSWORD", ""), "HTTP Basic password of user admin; empty: admin routes answer 401 (env RESERVOIR_ADMIN_PASSWORD)")
	fs.StringVar(&cfg.PLCURL, "plc-url", env("RESERVOIR_PLC_URL", "https://plc.directory"), "did:plc directory to resolve and register DIDs (env RESERVOIR_PLC_URL)")
	fs.StringVar(&relays, "relays", env("RESERVOIR_RELAYS", ""), "comma-separated relay URLs this host sends requestCrawl to (env RESERVOIR_RELAYS)")
	archive, insecure, lenient = env("RESERVOIR_ARCHIVE", "true"), env("RESERVOIR_ALLOW_INSECURE_HOSTS", "false"), env("RESERVOIR_LENIENT", "false")
	fs.Var(boolFlag{&archive}, "archive", "keep full copies of mirrored repos (env RESERVOIR_ARCHIVE)")
	fs.StringVar(&window, "replay-window", env("RESERVOIR_REPLAY_WINDOW", "72h"), "how long firehose events stay replayable (env RESERVOIR_REPLAY_WINDOW)")
	fs.Var(boolFlag{&insecure}, "allow-insecure-hosts", "allow http:// and loopback/private hosts (env RESERVOIR_ALLOW_INSECURE_HOSTS)")
	fs.Var(boolFlag{&lenient}, "lenient", "accept upstream commits without sync-1.1 prevData (env RESERVOIR_LENIENT)")
	fs.StringVar(&maxSubs, "max-subscribers", env("RESERVOIR_MAX_SUBSCRIBERS", "10000"), "firehose (subscribeRepos) connections at once (env RESERVOIR_MAX_SUBSCRIBERS)")
	fs.StringVar(&cfg.CrawlAuth, "crawl-auth", env("RESERVOIR_CRAWL_AUTH", "public"), "who may call requestCrawl and notifyOfUpdate: public (rate limited) or admin (env RESERVOIR_CRAWL_AUTH)")
	legacy = env("RESERVOIR_LEGACY_EVENTS", "false")
	fs.Var(boolFlag{&legacy}, "legacy-events", "also emit the legacy #handle, #migrate and #tombstone frames next to the current ones (env RESERVOIR_LEGACY_EVENTS)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: reservoir serve [flags]")
		fmt.Fprintln(stderr, "\nRuns the server: host, archive, relay and index, on the embedded store in --data.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("serve: unexpected arguments %q", fs.Args())
	}
	if n, err := strconv.Atoi(maxSubs); err != nil || n < 1 {
		return nil, fmt.Errorf("serve: --max-subscribers: %q is not a positive number", maxSubs)
	} else {
		cfg.MaxSubscribers = n
	}
	var boolErr error
	parseBool := func(name, v string) bool {
		b, perr := strconv.ParseBool(v)
		if perr != nil && boolErr == nil {
			boolErr = fmt.Errorf("serve: --%s: %q is not true or false", name, v)
		}
		return b
	}
	cfg.Archive = parseBool("archive", archive)
	cfg.AllowInsecureHosts = parseBool("allow-insecure-hosts", insecure)
	cfg.Lenient = parseBool("lenient", lenient)
	cfg.LegacyEvents = parseBool("legacy-events", legacy)
	if boolErr != nil {
		return nil, boolErr
	}
	if cfg.CrawlAuth != "public" && cfg.CrawlAuth != "admin" {
		return nil, fmt.Errorf("serve: --crawl-auth: %q is not public or admin", cfg.CrawlAuth)
	}
	var err error
	if cfg.ReplayWindow, err = time.ParseDuration(window); err != nil || cfg.ReplayWindow <= 0 {
		return nil, fmt.Errorf("serve: --replay-window: %q is not a positive duration", window)
	}
	for _, r := range strings.Split(relays, ",") {
		if r = strings.TrimSpace(r); r != "" {
			base, err := relayBase(r)
			if err != nil {
				return nil, fmt.Errorf("serve: --relays: %w", err)
			}
			cfg.Relays = append(cfg.Relays, base)
		}
	}
	if _, perr := checkServiceURL(cfg.PublicURL); perr != nil {
		return nil, fmt.Errorf("serve: --public-url: %w", perr)
	}
	if _, perr := checkServiceURL(cfg.PLCURL); perr != nil {
		return nil, fmt.Errorf("serve: --plc-url: %w", perr)
	}
	if cfg.Relay, err = relayTimingFromEnv(getenv); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// boolFlag is a boolean flag that may stand alone (--lenient) or take a
// value (--lenient=false); the value is checked after parsing, with its
// environment twin's, so that a bad one is refused rather than read as
// false.
type boolFlag struct{ v *string }

func (b boolFlag) String() string {
	if b.v == nil {
		return ""
	}
	return *b.v
}

func (b boolFlag) Set(s string) error { *b.v = s; return nil }

func (b boolFlag) IsBoolFlag() bool { return true }

// checkServiceURL accepts an http(s) URL with a host and no query.
func checkServiceURL(s string) (string, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || (scheme != "http" && scheme != "https") || rest == "" || strings.ContainsAny(rest, "?#") {
		return "", fmt.Errorf("%q is not an http(s) URL", s)
	}
	return strings.TrimSuffix(s, "/"), nil
}

// runServe is `reservoir serve`: the server until SIGINT or SIGTERM.
func runServe(args []string) error {
	cfg, err := parseServeFlags(args, os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, cfg, slog.New(slog.NewTextHandler(os.Stderr, nil)), nil)
}

// serve runs the server until ctx ends, then shuts down gracefully. ready,
// if set, is told the listening address (tests listen on port 0).
func serve(ctx context.Context, cfg *serveConfig, logger *slog.Logger, ready func(net.Addr)) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	fhMetrics, err := events.NewMetrics(reg)
	if err != nil {
		return err
	}
	ring := events.NewRing(events.RingOptions{Metrics: fhMetrics})
	db, err := store.Open(store.Options{
		Dir:           filepath.Join(cfg.Data, "store"),
		Logger:        logger.With("component", "store"),
		HistoryWindow: cfg.ReplayWindow,
		EventWindow:   cfg.ReplayWindow,
		OnCommit:      ring.Publish,
	})
	if err != nil {
		return err
	}
	defer db.Close()
	fh, err := events.New(events.Options{Log: db, Ring: ring, EventWindow: cfg.ReplayWindow, MaxSubscribers: cfg.MaxSubscribers, Metrics: fhMetrics, Logger: logger.With("component", "firehose")})
	if err != nil {
		return err
	}
	defer fh.Close() // before db.Close: subscribers may be reading the log
	publicURL, _ := checkServiceURL(cfg.PublicURL)
	plcURL, _ := checkServiceURL(cfg.PLCURL)
	repos := &repostore.Repos{DB: db}
	h := host.New(host.Options{
		DB:        db,
		Repos:     repos,
		DIDs:      &plc.Client{BaseURL: plcURL},
		PublicURL: publicURL,
		Logger:    logger.With("component", "host"),
		Blobs:     &store.FSBlobs{Dir: filepath.Join(cfg.Data, "blobs")},
	})
	metrics, err := xrpc.NewMetrics(reg)
	if err != nil {
		return err
	}
	auth := &xrpc.Auth{AdminPassword: cfg.AdminPassword, Tokens: hostTokens{h}}
	srv := xrpc.NewServer(xrpc.Options{
		Logger:  logger.With("component", "xrpc"),
		Metrics: metrics,
		Version: buildVersion(),
		Health:  db.Healthy,
	})
	hosts, ingest, stopRelay, err := startRelay(cfg, db, repos, plcURL, reg, logger)
	if err != nil {
		return err
	}
	defer stopRelay() // before fh.Close and db.Close: the ingest writes through both
	a := api.New(api.Options{DB: db, Repos: repos, Host: h, Auth: auth, PublicURL: publicURL, Logger: logger, Firehose: fh, Mirrors: ingest, LeanMirrors: !cfg.Archive})
	a.Register(srv)
	rl := api.NewRelay(api.RelayOptions{Hosts: hosts, Auth: auth, AdminCrawlOnly: cfg.CrawlAuth == "admin"})
	rl.Register(srv)
	mux := http.NewServeMux()
	mux.Handle(xrpc.PathPrefix, srv)
	mux.Handle("/admin/", srv.Endpoint("admin", auth.RequireAdmin(a.AdminHandler())))
	adminHosts := srv.Endpoint("admin_hosts", auth.RequireAdmin(rl.AdminHandler()))
	mux.Handle("/admin/hosts", adminHosts)
	mux.Handle("/admin/hosts/", adminHosts)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	hs := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	hs.RegisterOnShutdown(fh.Close) // hijacked websockets are not Shutdown's to close
	logger.Info("reservoir listening", "addr", ln.Addr().String(), "data", cfg.Data, "public_url", publicURL, "plc_url", plcURL)
	if ready != nil {
		ready(ln.Addr())
	}
	go collectBlobs(ctx, h, logger)
	if len(cfg.Relays) > 0 {
		c := &relayCrawler{relays: cfg.Relays, publicURL: publicURL, lastSeq: db.LastSeq, interval: crawlInterval,
			client: &http.Client{Timeout: 30 * time.Second}, log: logger.With("component", "crawlers")}
		go c.run(ctx)
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutCtx); err != nil {
		hs.Close()
	}
	return nil
}

// startRelay starts the relay: the ingest (verify, apply, re-broadcast)
// and the host manager (one subscription per upstream host, the cursors),
// the one submitting frames to the other and told by it when each is done.
// stop ends the subscriptions, drains the ingest and stores the final
// cursors, in that order.
func startRelay(cfg *serveConfig, db *store.DB, repos *repostore.Repos, plcURL string, reg prometheus.Registerer, logger *slog.Logger) (*relay.Manager, *relay.Ingest, func(), error) {
	if !cfg.Archive {
		logger.Info("lean relay (--archive=false): mirrored accounts keep their state only; their content reads redirect to their PDS")
	}
	ids, err := identity.New(identity.Options{PLCURL: plcURL, AllowInsecure: cfg.AllowInsecureHosts, Logger: logger.With("component", "identity")})
	if err != nil {
		return nil, nil, nil, err
	}
	var mgrRef atomic.Pointer[relay.Manager] // set before Start, so before any frame is submitted
	in, err := relay.NewIngest(relay.IngestOptions{
		DB: db, Repos: repos, Identity: ids, Lenient: cfg.Lenient, AllowInsecure: cfg.AllowInsecureHosts, LegacyEvents: cfg.LegacyEvents,
		Lean:   !cfg.Archive,
		OnDone: func(hostname string, seq int64) { mgrRef.Load().Done(hostname, seq) },
		DiscoverHost: func(endpoint string) { // a resync of the start-up sweep may come first
			if m := mgrRef.Load(); m != nil {
				m.Discover(endpoint)
			}
		},
		SweepDesynchronized: true,
		Logger:              logger.With("component", "ingest"),
		Registerer:          reg,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	t := cfg.Relay
	mgr, err := relay.NewManager(relay.ManagerOptions{
		DB: db, Submitter: in, Backfiller: in, AllowInsecure: cfg.AllowInsecureHosts,
		MinBackoff: t.MinBackoff, MaxBackoff: t.MaxBackoff, OfflineAfter: t.OfflineAfter, OfflineRetry: t.OfflineRetry,
		RecountInterval: t.RecountInterval, FlushInterval: t.FlushInterval,
		Logger: logger.With("component", "relay"), Registerer: reg,
	})
	if err == nil {
		mgrRef.Store(mgr)
		err = mgr.Start()
	}
	if err != nil {
		in.Close()
		return nil, nil, nil, err
	}
	stop := func() {
		mgr.Stop()
		in.Close()
		if err := mgr.Close(); err != nil {
			logger.Warn("relay: storing the final cursors", "err", err)
		}
	}
	return mgr, in, stop, nil
}

// collectBlobs removes unreferenced blobs every few minutes until ctx ends.
func collectBlobs(ctx context.Context, h *host.Host, logger *slog.Logger) {
	t := time.NewTicker(5 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := h.CollectBlobs(ctx); err != nil {
				logger.Warn("collecting blobs", "err", err)
			}
		}
	}
}

// hostTokens checks bearer tokens against the host, in the error terms of
// xrpc (a token that names no account or does not match is a 401, not a
// 500).
type hostTokens struct{ h *host.Host }

func (t hostTokens) AccountForToken(ctx context.Context, token string) (string, error) {
	did, err := t.h.AccountForToken(ctx, token)
	if errors.Is(err, host.ErrBadToken) {
		return "", xrpc.ErrInvalidToken
	}
	return did, err
}
