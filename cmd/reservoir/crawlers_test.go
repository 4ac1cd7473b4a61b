package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRelayBase(t *testing.T) {
	for in, want := range map[string]string{
		"https://relay.example.com": "https://relay.example.com", "https://relay.example.com/": "https://relay.example.com",
		"wss://relay.example.com": "https://relay.example.com", "ws://127.0.0.1:2470": "http://127.0.0.1:2470",
		"http://localhost:2470": "http://localhost:2470",
	} {
		if got, err := relayBase(in); err != nil || got != want {
			t.Errorf("relayBase(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"relay.example.com", "ftp://relay.example.com", "https://", "https://relay.example.com/xrpc", "https://r.example.com?x"} {
		if got, err := relayBase(bad); err == nil {
			t.Errorf("relayBase(%q) = %q, accepted", bad, got)
		}
	}
	if _, err := parseServeFlags([]string{"--relays", "https://ok.example.com,nope"}, func(string) string { return "" }, io.Discard); err == nil {
		t.Error("a bad --relays entry accepted")
	}
}

func TestCrawlHostname(t *testing.T) {
	for in, want := range map[string]string{
		"https://pds.example.com": "pds.example.com", "https://PDS.example.com:8443": "pds.example.com:8443",
		"https://pds.example.com:443": "pds.example.com", "http://localhost:2480": "http://localhost:2480",
	} {
		if got := crawlHostname(in); got != want {
			t.Errorf("crawlHostname(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRelayCrawler: the relays are asked at start; a failing relay is asked
// again with backoff until it answers; a new event after a quiet interval
// asks them again at once, and a second event inside the interval only when
// the interval ends.
func TestRelayCrawler(t *testing.T) {
	var mu sync.Mutex
	var got []string
	var failing atomic.Bool
	failing.Store(true)
	okRelay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Hostname string }
		if r.Method != http.MethodPost || r.URL.Path != "/xrpc/com.atproto.sync.requestCrawl" || r.Header.Get("Content-Type") != "application/json" ||
			json.NewDecoder(r.Body).Decode(&in) != nil {
			t.Errorf("request %s %s", r.Method, r.URL)
		}
		mu.Lock()
		got = append(got, "ok:"+in.Hostname)
		mu.Unlock()
	}))
	defer okRelay.Close()
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, "flaky")
		mu.Unlock()
		if failing.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer flaky.Close()
	// An older relay: requestCrawl is not implemented, notifyOfUpdate is.
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Hostname string }
		json.NewDecoder(r.Body).Decode(&in)
		if r.URL.Path != "/xrpc/com.atproto.sync.notifyOfUpdate" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		got = append(got, "old:"+in.Hostname)
		mu.Unlock()
	}))
	defer old.Close()
	var seq atomic.Int64
	const interval = time.Second
	c := &relayCrawler{relays: []string{okRelay.URL, flaky.URL, old.URL}, publicURL: "https://pds.example.com", lastSeq: seq.Load,
		interval: interval, poll: 5 * time.Millisecond, minBackoff: 10 * time.Millisecond, client: http.DefaultClient, log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.run(ctx); close(done) }()
	count := func(s string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, g := range got {
			if g == s {
				n++
			}
		}
		return n
	}
	wait := func(what string, within time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(within)
		for !cond() {
			if time.Now().After(deadline) {
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("timed out: %s (requests %v)", what, got)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	const ok, oldOK = "ok:pds.example.com", "old:pds.example.com"
	wait("the flaky relay asked three times", 5*time.Second, func() bool { return count("flaky") >= 3 })
	if count(ok) != 1 || count(oldOK) != 1 {
		t.Fatalf("at start: %d requestCrawl, %d notifyOfUpdate; want one each", count(ok), count(oldOK))
	}
	failing.Store(false)
	n := count("flaky")
	wait("the flaky relay asked until it answers", 5*time.Second, func() bool { return count("flaky") == n+1 })
	time.Sleep(interval + 100*time.Millisecond) // quiet: no events
	flakyAsked := count("flaky")
	if count(ok) != 1 || count(oldOK) != 1 || flakyAsked != n+1 {
		t.Fatalf("asked again without new events: %v", got)
	}
	seq.Store(7) // an event after a quiet interval: all asked at once
	wait("all asked again after an event", interval/2, func() bool {
		return count(ok) == 2 && count(oldOK) == 2 && count("flaky") == flakyAsked+1
	})
	asked := time.Now()
	seq.Store(8) // another event inside the interval: not before it ends
	time.Sleep(interval / 3)
	if count(ok) != 2 {
		t.Fatalf("asked twice within the interval: %v", got)
	}
	wait("asked again when the interval ends", 5*time.Second, func() bool { return count(ok) == 3 })
	// asked is when the poll above saw the second request, a little after
	// the notifier sent it (its interval starts then): allow that lag.
	if d := time.Since(asked); d < interval-50*time.Millisecond {
		t.Fatalf("asked again after %v, inside the interval %v", d, interval)
	}
	cancel()
	<-done
}
