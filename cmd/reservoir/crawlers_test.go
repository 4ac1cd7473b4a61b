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

// TestRelayCrawler: the relays are asked at start, again only after new
// events (at most once an interval), and a relay that failed is asked
// again at the next interval.
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
	var seq atomic.Int64
	c := &relayCrawler{relays: []string{okRelay.URL, flaky.URL}, publicURL: "http://localhost:2480", lastSeq: seq.Load,
		interval: 50 * time.Millisecond, client: http.DefaultClient, log: slog.New(slog.DiscardHandler)}
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
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out: %s (requests %v)", what, got)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	wait("the flaky relay asked twice", func() bool { return count("flaky") >= 2 })
	failing.Store(false)
	wait("the flaky relay asked until it answers", func() bool { return count("flaky") >= 3 })
	time.Sleep(150 * time.Millisecond) // three intervals without events
	if n := count("ok:http://localhost:2480"); n != 1 {
		t.Fatalf("the answering relay asked %d times without new events, want once", n)
	}
	flakyAsked := count("flaky")
	seq.Store(7) // events were committed
	wait("both asked again after events", func() bool { return count("ok:http://localhost:2480") == 2 && count("flaky") == flakyAsked+1 })
	cancel()
	<-done
}
