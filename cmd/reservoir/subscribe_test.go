package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// eventLine is the part of a subscribe JSON line the tests read.
type eventLine struct {
	Type     string `json:"$type"`
	Seq      int64  `json:"seq"`
	Repo     string `json:"repo"`
	DID      string `json:"did"`
	Verified *bool  `json:"verified"`
	Ops      []struct {
		Action string         `json:"action"`
		Path   string         `json:"path"`
		CID    map[string]any `json:"cid"`
		Record map[string]any `json:"record"`
	} `json:"ops"`
}

func parseLines(t *testing.T, lines []string) []eventLine {
	t.Helper()
	var out []eventLine
	for _, l := range lines {
		var e eventLine
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("not JSON: %q: %v", l, err)
		}
		out = append(out, e)
	}
	return out
}

// subscribeUntil runs subscribe until a printed line satisfies stop (then
// it is interrupted as Ctrl-C would), or 30 s pass.
func subscribeUntil(t *testing.T, stop func(line string, n int) bool, args ...string) ([]string, cliResult) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := &lineWatcher{onLine: func(line string, n int) {
		if stop(line, n) {
			cancel()
		}
	}}
	res := runCLIContext(ctx, t, runSubscribe, out, args...)
	if ctx.Err() == context.DeadlineExceeded {
		t.Fatalf("subscribe %q did not reach its stop line; printed:\n%s\n%s", args, strings.Join(out.all(), "\n"), res.stderr)
	}
	return out.all(), res
}

// TestSubscribeResumesWithCursorFile interrupts a subscription, writes
// more records, and resumes from the cursor file: together the two runs
// print every event once, in order, as one uninterrupted run does.
func TestSubscribeResumesWithCursorFile(t *testing.T) {
	r := startReservoir(t)
	alice := r.createAccount("alice.test")
	bob := r.createAccount("bob.test")
	for i := range 3 {
		r.putRecord(alice, "app.bsky.feed.post", fmt.Sprintf("3l%011d", i), textPost(fmt.Sprintf("post %d", i)))
	}
	r.putRecord(bob, "app.bsky.feed.like", "3l00000000001", map[string]any{"$type": "app.bsky.feed.like", "createdAt": "2026-11-26T00:00:00.000Z"})
	cursorFile := filepath.Join(t.TempDir(), "cursor")

	// First run: from the start of the window, stopped after 5 lines.
	first, res := subscribeUntil(t, func(_ string, n int) bool { return n == 5 },
		"--cursor", "0", "--cursor-file", cursorFile, "--verify", "--plc-url", r.plc, r.url)
	if res.code != 0 {
		t.Fatalf("first run: %v\n%s", res.err, res.stderr)
	}
	saved, _ := os.ReadFile(cursorFile)
	firstEvents := parseLines(t, first)
	if got := strings.TrimSpace(string(saved)); got != strconv.FormatInt(firstEvents[len(firstEvents)-1].Seq, 10) {
		t.Fatalf("cursor file holds %q after printing up to seq %d", got, firstEvents[len(firstEvents)-1].Seq)
	}
	for i := 3; i < 6; i++ {
		r.putRecord(alice, "app.bsky.feed.post", fmt.Sprintf("3l%011d", i), textPost(fmt.Sprintf("post %d", i)))
	}
	// Second run: from the cursor file alone, until the last post.
	second, res := subscribeUntil(t, func(line string, _ int) bool { return strings.Contains(line, `"text":"post 5"`) },
		"--cursor-file", cursorFile, "--verify", "--plc-url", r.plc, "ws://"+strings.TrimPrefix(r.url, "http://"))
	if res.code != 0 {
		t.Fatalf("second run: %v\n%s", res.err, res.stderr)
	}
	// The reference: one run over the whole window.
	all, _ := subscribeUntil(t, func(line string, _ int) bool { return strings.Contains(line, `"text":"post 5"`) }, "--cursor", "0", r.url)
	if joined := append(slices.Clone(first), second...); !slices.Equal(stripVerified(t, joined), stripVerified(t, all)) {
		t.Fatalf("interrupted and resumed:\n%s\n\nuninterrupted:\n%s", strings.Join(joined, "\n"), strings.Join(all, "\n"))
	}
	events := parseLines(t, all)
	var texts []string
	for i, e := range events {
		if i > 0 && e.Seq <= events[i-1].Seq {
			t.Errorf("seq %d after %d", e.Seq, events[i-1].Seq)
		}
		for _, op := range e.Ops {
			if s, ok := op.Record["text"].(string); ok {
				texts = append(texts, s)
			}
		}
	}
	if want := []string{"post 0", "post 1", "post 2", "post 3", "post 4", "post 5"}; !slices.Equal(texts, want) {
		t.Errorf("record texts %q, want %q", texts, want)
	}
	for _, e := range parseLines(t, append(first, second...)) {
		if (strings.HasSuffix(e.Type, "#commit") || strings.HasSuffix(e.Type, "#sync")) && (e.Verified == nil || !*e.Verified) {
			t.Errorf("seq %d (%s) not verified", e.Seq, e.Type)
		}
	}

	// Filters.
	likes, _ := subscribeUntil(t, func(_ string, n int) bool { return n == 1 }, "--cursor", "0", "--collection", "app.bsky.feed.like", "--types", "commit", r.url)
	if ev := parseLines(t, likes); len(ev) != 1 || ev[0].Repo != bob.did || len(ev[0].Ops) != 1 || ev[0].Ops[0].Path != "app.bsky.feed.like/3l00000000001" {
		t.Errorf("--collection app.bsky.feed.like: %s", likes)
	}
	bobs, _ := subscribeUntil(t, func(line string, _ int) bool { return strings.Contains(line, "app.bsky.feed.like") },
		"--cursor", "0", "--did", bob.did, "--types", "commit,identity", r.url)
	for _, e := range parseLines(t, bobs) {
		if e.Repo+e.DID != bob.did || !(strings.HasSuffix(e.Type, "#commit") || strings.HasSuffix(e.Type, "#identity")) {
			t.Errorf("--did %s --types commit,identity printed %+v", bob.did, e)
		}
	}
	// --limit stops by itself.
	res = runCLIContext(context.Background(), t, runSubscribe, &syncBuffer{}, "--cursor", "0", "--limit", "3", r.url)
	if res.code != 0 || strings.Count(res.stdout, "\n") != 3 {
		t.Errorf("--limit 3: %v, %d lines", res.err, strings.Count(res.stdout, "\n"))
	}
	// A cursor past the end: FutureCursor, exit 1.
	res = runCLIContext(context.Background(), t, runSubscribe, &syncBuffer{}, "--cursor", "999999", r.url)
	if res.code != 1 || !strings.Contains(res.err.Error(), "FutureCursor") {
		t.Errorf("future cursor: %d %v", res.code, res.err)
	}
}

// stripVerified drops the verification fields, which only the runs with
// --verify print.
func stripVerified(t *testing.T, lines []string) []string {
	var out []string
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		delete(m, "verified")
		delete(m, "verifyError")
		b, _ := json.Marshal(m)
		out = append(out, string(b))
	}
	return out
}

func TestCursorFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c")
	if _, ok, err := readCursorFile(path); ok || err != nil {
		t.Fatalf("absent file: %v %v", ok, err)
	}
	for _, seq := range []int64{1, 123456789, 42} {
		if err := writeCursorFile(path, seq); err != nil {
			t.Fatal(err)
		}
		if got, ok, err := readCursorFile(path); !ok || err != nil || got != seq {
			t.Fatalf("wrote %d, read %d %v %v", seq, got, ok, err)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	os.WriteFile(path, []byte("soon"), 0o644)
	if _, _, err := readCursorFile(path); err == nil {
		t.Error("a file without a seq was accepted")
	}
}
