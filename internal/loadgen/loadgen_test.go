package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	indigo "github.com/bluesky-social/indigo/atproto/identity"
	"github.com/gorilla/websocket"

	"github.com/reservoir-atproto/reservoir/client"
	"github.com/reservoir-atproto/reservoir/repo"
)

var (
	smallOnce   sync.Once
	smallStream *Stream
	smallErr    error
	smallDir    string
)

// small is a stream of 40 accounts, 5 records each, then 1,500 commits,
// generated once for the package's tests.
func small(t *testing.T) *Stream {
	t.Helper()
	smallOnce.Do(func() {
		smallDir, smallErr = osMkdirTemp()
		if smallErr == nil {
			smallStream, smallErr = Generate(context.Background(), smallDir, Params{Accounts: 40, FirstRecords: 5, Commits: 1500, Seed: 7}, GenerateOptions{})
		}
	})
	if smallErr != nil {
		t.Fatal(smallErr)
	}
	return smallStream
}

func decodeCommit(t *testing.T, frame []byte) *client.Commit {
	t.Helper()
	ev, err := client.DecodeFrame(frame)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := ev.(*client.Commit)
	if !ok {
		t.Fatalf("frame is a %T, want a #commit", ev)
	}
	return c
}

func message(c *client.Commit) *repo.CommitMessage {
	ops := make([]repo.Op, len(c.Ops))
	for i, op := range c.Ops {
		ops[i] = repo.Op{Action: repo.Action(op.Action), Path: op.Path, CID: op.CID, Prev: op.Prev}
	}
	return &repo.CommitMessage{Repo: string(c.Repo), Rev: string(c.Rev), Since: c.Since, Commit: c.CommitCID, PrevData: c.PrevData, Blocks: c.Blocks, Ops: ops}
}

// Every generated commit verifies (signature against the key the directory
// publishes, chain, sync-1.1 inversion), seqs run 1..N, genesis commits
// come first, and the op mix and record sizes are as specified.
func TestGeneratedCommitsVerify(t *testing.T) {
	s := small(t)
	accounts, err := s.Accounts()
	if err != nil {
		t.Fatal(err)
	}
	if len(accounts) != 40 || s.Len() != 40+1500 || s.Manifest.First != 40 {
		t.Fatalf("%d accounts, %d frames (first %d); want 40, 1540 (40)", len(accounts), s.Len(), s.Manifest.First)
	}
	dir, err := NewDirectory(accounts, "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	keys := map[string]atcrypto.PublicKey{}
	for _, a := range accounts {
		doc, ok := dir.Document(a.DID)
		if !ok {
			t.Fatalf("no document for %s", a.DID)
		}
		var d indigo.DIDDocument
		if err := json.Unmarshal(doc, &d); err != nil {
			t.Fatal(err)
		}
		id := indigo.ParseIdentity(&d)
		if id.PDSEndpoint() != "http://127.0.0.1:1" {
			t.Fatalf("PDS %q", id.PDSEndpoint())
		}
		k, err := id.PublicKey()
		if err != nil {
			t.Fatal(err)
		}
		keys[a.DID] = k
	}
	states := map[string]repo.RepoState{}
	kinds := map[Kind]int{}
	var sizes []int
	r := s.Reader(0)
	for {
		frame, seq, err := r.Next(nil)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		c := decodeCommit(t, frame)
		if c.Seq != seq {
			t.Fatalf("frame %d carries seq %d", seq, c.Seq)
		}
		did := string(c.Repo)
		prev, seen := states[did]
		if (seq <= 40) == seen {
			t.Fatalf("seq %d: genesis commit of %s out of place", seq, did)
		}
		opts := repo.VerifyOptions{Key: keys[did]}
		if seen {
			opts.Prev = &prev
		}
		v, err := repo.VerifyCommitMessage(message(c), opts)
		if err != nil {
			t.Fatalf("seq %d (%s): %v", seq, did, err)
		}
		states[did] = v.State()
		if seq <= 40 {
			if len(c.Ops) != 5 {
				t.Fatalf("genesis commit of %d ops, want 5", len(c.Ops))
			}
			continue
		}
		if len(c.Ops) != 1 {
			t.Fatalf("seq %d: %d ops, want 1", seq, len(c.Ops))
		}
		op := c.Ops[0]
		if op.Action == "delete" {
			kinds[KindDelete]++
			continue
		}
		kinds[kindOf(op.Path)]++
		sizes = append(sizes, len(v.Blocks[op.CID]))
	}
	if len(states) != 40 {
		t.Fatalf("%d accounts in the stream, want 40", len(states))
	}
	// 1,500 draws: each kind within a few points of its weight.
	for k, w := range DefaultMix {
		got := float64(kinds[Kind(k)]) / 1500 * 100
		if got < float64(w)-4 || got > float64(w)+4 {
			t.Errorf("%v: %.1f %% of commits, want about %d %%", Kind(k), got, w)
		}
	}
	in := 0
	for _, n := range sizes {
		if n > 1000 {
			t.Errorf("a record of %d bytes", n)
		}
		if n >= 100 && n <= 500 {
			in++
		}
	}
	if frac := float64(in) / float64(len(sizes)); frac < 0.8 {
		t.Errorf("%.0f %% of records are 100–500 bytes, want most (≥ 80 %%)", frac*100)
	}
	if got := s.Manifest.Ops["like"] + s.Manifest.Ops["delete"]; got != kinds[KindLike]+kinds[KindDelete] {
		t.Errorf("manifest counts %d likes and deletes, the stream %d", got, kinds[KindLike]+kinds[KindDelete])
	}
}

// A second Generate with the same parameters opens the cached stream.
func TestGenerateIsCached(t *testing.T) {
	s := small(t)
	again, err := Generate(context.Background(), smallDir, s.Manifest.Params, GenerateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if !again.Manifest.Generated.Equal(s.Manifest.Generated) || again.Dir != s.Dir {
		t.Fatalf("generated again: %v in %s, first %v in %s", again.Manifest.Generated, again.Dir, s.Manifest.Generated, s.Dir)
	}
	if _, err := Generate(context.Background(), smallDir, Params{Accounts: 0, FirstRecords: 1}, GenerateOptions{}); err == nil {
		t.Fatal("no accounts: no error")
	}
}

func dial(t *testing.T, h *Host, query string) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial("ws://"+h.Hostname()+"/xrpc/com.atproto.sync.subscribeRepos"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	return c
}

func readFrames(t *testing.T, c *websocket.Conn, n int) [][]byte {
	t.Helper()
	var out [][]byte
	for range n {
		_, b, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// The host serves the stream's frames, byte for byte, from the cursor on;
// a subscription without a cursor starts at what is released after it.
func TestHostServesFromCursor(t *testing.T) {
	s := small(t)
	h, err := NewHost(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	h.Release(100)
	c := dial(t, h, "?cursor=37")
	got := readFrames(t, c, 63)
	for i, b := range got {
		want, err := s.Frame(int64(38 + i))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, want) {
			t.Fatalf("frame %d of the subscription is not seq %d", i, 38+i)
		}
	}
	live := dial(t, h, "")
	for h.Subscribers(); ; time.Sleep(time.Millisecond) {
		if open, _ := h.Subscribers(); open == 2 {
			break
		}
	}
	h.Release(105)
	for i, b := range readFrames(t, live, 5) {
		if seq := decodeCommit(t, b).Seq; seq != int64(101+i) {
			t.Fatalf("live subscription: frame %d is seq %d, want %d", i, seq, 101+i)
		}
	}
	if b := readFrames(t, c, 5); decodeCommit(t, b[4]).Seq != 105 {
		t.Fatal("the cursor subscription did not continue to seq 105")
	}
	// A cursor ahead of the stream: a FutureCursor error frame.
	f := dial(t, h, "?cursor=999999")
	ev, err := client.DecodeFrame(readFrames(t, f, 1)[0])
	if e, ok := ev.(*client.ErrorFrame); err != nil || !ok || e.Name != "FutureCursor" {
		t.Fatalf("future cursor: %v %v", ev, err)
	}
	resp, err := http.Get(h.URL() + "/xrpc/com.atproto.sync.listRepos")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"repos":[]`) {
		t.Fatalf("listRepos: %d %s", resp.StatusCode, body)
	}
}

// Pace releases frames at the rate asked, up to the mark.
func TestHostPace(t *testing.T) {
	s := small(t)
	h, err := NewHost(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Pace(context.Background(), 120, 10_000); err != nil {
		t.Fatal(err)
	}
	if got := h.Released(); got != 120 {
		t.Fatalf("released %d, want 120", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.Pace(ctx, 1000, 1); err == nil || h.Released() != 120 {
		t.Fatalf("cancelled pace: %v, released %d", err, h.Released())
	}
}
