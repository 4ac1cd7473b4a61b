package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeCrawlFlags: --crawl-auth (public or admin) and --legacy-events,
// with their environment twins.
func TestServeCrawlFlags(t *testing.T) {
	none := func(string) string { return "" }
	cfg, err := parseServeFlags(nil, none, io.Discard)
	if err != nil || cfg.CrawlAuth != "public" || cfg.LegacyEvents {
		t.Fatalf("defaults: %+v %v", cfg, err)
	}
	cfg, err = parseServeFlags([]string{"--crawl-auth", "admin", "--legacy-events"}, none, io.Discard)
	if err != nil || cfg.CrawlAuth != "admin" || !cfg.LegacyEvents {
		t.Fatalf("flags: %+v %v", cfg, err)
	}
	cfg, err = parseServeFlags(nil, func(k string) string {
		return map[string]string{"RESERVOIR_CRAWL_AUTH": "admin", "RESERVOIR_LEGACY_EVENTS": "true"}[k]
	}, io.Discard)
	if err != nil || cfg.CrawlAuth != "admin" || !cfg.LegacyEvents {
		t.Fatalf("environment: %+v %v", cfg, err)
	}
	for _, bad := range [][]string{{"--crawl-auth", "open"}, {"--crawl-auth", ""}, {"--legacy-events=perhaps"}} {
		if _, err := parseServeFlags(bad, none, io.Discard); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// TestHostNotifiesRelays runs, in process, two relays — one public, one
// with --crawl-auth=admin — and a host whose --relays names both: the
// public relay crawls the host without any manual requestCrawl (it is
// listed, active, and subscribed to the host's firehose); the closed relay
// refuses the host's unauthenticated request and lists no host.
func TestHostNotifiesRelays(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stops []chan error
	defer func() {
		cancel()
		for _, s := range stops {
			<-s
		}
	}()
	start := func(name string, args ...string) string {
		t.Helper()
		port := freePort(t)
		args = append([]string{"--listen", "127.0.0.1:" + port, "--public-url", "http://localhost:" + port,
			"--data", filepath.Join(t.TempDir(), name), "--plc-url", "http://127.0.0.1:1", "--admin-password", "pw"}, args...)
		cfg, err := parseServeFlags(args, func(string) string { return "" }, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		ready, done := make(chan struct{}), make(chan error, 1)
		stops = append(stops, done)
		logs := &syncBuffer{}
		go func() {
			done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})), func(net.Addr) { close(ready) })
		}()
		select {
		case <-ready:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not start\n%s", name, logs)
		}
		return port
	}
	open := start("relay", "--allow-insecure-hosts")
	closed := start("closed-relay", "--allow-insecure-hosts", "--crawl-auth", "admin")
	hostPort := start("host", "--relays", "http://127.0.0.1:"+open+",http://127.0.0.1:"+closed)
	hostName := "localhost:" + hostPort

	deadline := time.Now().Add(20 * time.Second)
	waitFor(t, deadline, "the relay lists the host", func() bool {
		code, body := call(t, "GET", "http://127.0.0.1:"+open+"/xrpc/com.atproto.sync.getHostStatus?hostname="+hostName, "", "")
		return code == 200 && strings.Contains(body, `"status":"active"`)
	})
	waitFor(t, deadline, "the relay subscribed to the host", func() bool {
		_, metrics := call(t, "GET", "http://127.0.0.1:"+hostPort+"/metrics", "", "")
		return strings.Contains(metrics, "\nfirehose_subscribers 1\n")
	})
	// The closed relay was asked at the same start-up and refused.
	if code, body := call(t, "GET", "http://127.0.0.1:"+closed+"/xrpc/com.atproto.sync.listHosts", "", ""); code != 200 || !strings.Contains(body, `"hosts":[]`) {
		t.Fatalf("the closed relay's hosts: %d %s", code, body)
	}
	if code, body := call(t, "POST", "http://127.0.0.1:"+closed+"/xrpc/com.atproto.sync.requestCrawl", "", `{"hostname":"http://`+hostName+`"}`); code != 401 {
		t.Fatalf("unauthenticated requestCrawl to the closed relay: %d %s", code, body)
	}
	if code, body := call(t, "POST", "http://127.0.0.1:"+closed+"/xrpc/com.atproto.sync.requestCrawl", "admin", `{"hostname":"http://`+hostName+`"}`); code != 200 {
		t.Fatalf("the admin's requestCrawl to the closed relay: %d %s", code, body)
	}
}
