package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/gorilla/websocket"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/api"
	"github.com/reservoir-atproto/reservoir/car"
	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/events"
	"github.com/reservoir-atproto/reservoir/host"
	"github.com/reservoir-atproto/reservoir/internal/lexcheck"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/store"
	"github.com/reservoir-atproto/reservoir/xrpc"
)

// The subscribeRepos tests run the whole path: host writes → store
// committer → ring → firehose → xrpc route → websocket → a gorilla client.

const subscribeNSID = "com.atproto.sync.subscribeRepos"

// subDIDs registers made-up did:plc DIDs and remembers their keys.
type subDIDs struct {
	mu sync.Mutex
	n  int
}

func (d *subDIDs) CreateDID(_ context.Context, _ string, _, _ atcrypto.PrivateKey, _ string) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n++
	return fmt.Sprintf("did:plc:sub%019d", d.n), nil
}

type subEnv struct {
	t    *testing.T
	db   *store.DB
	host *host.Host
	fh   *events.Firehose
	srv  *httptest.Server
}

func newSubEnv(t *testing.T, withFirehose bool) *subEnv {
	t.Helper()
	ring := events.NewRing(events.RingOptions{MaxEvents: 64})
	db, err := store.Open(store.Options{InMemory: true, GCInterval: -1, OnCommit: ring.Publish})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &subEnv{t: t, db: db}
	if withFirehose {
		if e.fh, err = events.New(events.Options{Log: db, Ring: ring}); err != nil {
			t.Fatal(err)
		}
	}
	e.host = host.New(host.Options{DB: db, DIDs: &subDIDs{}, PublicURL: "https://pds.test"})
	srv := xrpc.NewServer(xrpc.Options{})
	api.New(api.Options{DB: db, Host: e.host, Firehose: e.fh}).Register(srv)
	e.srv = httptest.NewServer(srv)
	t.Cleanup(e.srv.Close)
	if e.fh != nil {
		t.Cleanup(e.fh.Close) // first: subscribers end before the store closes
	}
	return e
}

func (e *subEnv) url(cursor string) string {
	u := "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/xrpc/" + subscribeNSID
	if cursor != "" {
		u += "?cursor=" + cursor
	}
	return u
}

func (e *subEnv) dial(cursor string) *websocket.Conn {
	e.t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(e.url(cursor), nil)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	resp.Body.Close()
	e.t.Cleanup(func() { c.Close() })
	return c
}

func (e *subEnv) createAccount(handle string) string {
	e.t.Helper()
	a, err := e.host.CreateAccount(context.Background(), host.CreateAccountInput{Handle: handle})
	if err != nil {
		e.t.Fatal(err)
	}
	return a.DID
}

func subRecord(text string, pad int) []byte {
	b, err := dagcbor.Marshal(map[string]any{"$type": "app.bsky.feed.post", "text": text + strings.Repeat("x", pad), "createdAt": "2026-11-25T00:00:00Z"})
	if err != nil {
		panic(err)
	}
	return b
}

func (e *subEnv) write(did string, writes ...repo.Write) error {
	hw := make([]host.Write, len(writes))
	for i, w := range writes {
		hw[i] = host.Write{Write: w}
	}
	_, err := e.host.ApplyWrites(context.Background(), did, hw, cid.Undef)
	return err
}

// subFrame is a frame read from the socket, decoded.
type subFrame struct {
	raw    []byte
	header map[string]any
	body   map[string]any
}

// readSub reads n binary messages, each decoded strictly as exactly two
// DAG-CBOR objects.
func readSub(t *testing.T, c *websocket.Conn, n int) []subFrame {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var out []subFrame
	for len(out) < n {
		typ, msg, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("after %d of %d frames: %v", len(out), n, err)
		}
		if typ != websocket.BinaryMessage {
			t.Fatalf("message type %d", typ)
		}
		d := dagcbor.NewDecoder(msg)
		h, err1 := d.ReadValue()
		b, err2 := d.ReadValue()
		if err := errors.Join(err1, err2, d.Done()); err != nil {
			t.Fatalf("frame %d: %v", len(out), err)
		}
		hm, _ := h.(map[string]any)
		bm, _ := b.(map[string]any)
		if hm == nil || bm == nil {
			t.Fatalf("frame %d: header %T body %T", len(out), h, b)
		}
		out = append(out, subFrame{msg, hm, bm})
	}
	return out
}

func readClose(t *testing.T, c *websocket.Conn) (int, string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) {
				t.Fatalf("ended without a close frame: %v", err)
			}
			return ce.Code, ce.Text
		}
	}
}

func TestSubscribeReposRefusesBeforeUpgrade(t *testing.T) {
	e := newSubEnv(t, true)
	upgrade := http.Header{
		"Connection": {"Upgrade"}, "Upgrade": {"websocket"},
		"Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="},
	}
	cases := []struct {
		name, method, query string
		header              http.Header
		status              int
		errName             string
	}{
		{"cursor not a number", "GET", "?cursor=abc", upgrade, 400, "InvalidRequest"},
		{"negative cursor", "GET", "?cursor=-1", upgrade, 400, "InvalidRequest"},
		{"fractional cursor", "GET", "?cursor=1.5", upgrade, 400, "InvalidRequest"},
		{"cursor past 2^53-1", "GET", "?cursor=9007199254740992", upgrade, 400, "InvalidRequest"},
		{"cursor twice", "GET", "?cursor=1&cursor=2", upgrade, 400, "InvalidRequest"},
		{"no upgrade", "GET", "?cursor=0", nil, 426, "InvalidRequest"},
		{"no upgrade, no cursor", "GET", "", nil, 426, "InvalidRequest"},
		{"POST", "POST", "", upgrade, 405, "InvalidRequest"},
		{"bad websocket version", "GET", "", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"8"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}, 400, "InvalidRequest"},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, e.srv.URL+"/xrpc/"+subscribeNSID+tc.query, nil)
		for k, v := range tc.header {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var got struct{ Error, Message string }
		if resp.StatusCode != tc.status || json.Unmarshal(body, &got) != nil || got.Error != tc.errName || got.Message == "" {
			t.Errorf("%s: %d %s, want %d %s", tc.name, resp.StatusCode, body, tc.status, tc.errName)
		}
		if tc.status == 426 && resp.Header.Get("Upgrade") != "websocket" {
			t.Errorf("%s: 426 without Upgrade: websocket", tc.name)
		}
	}

	// Without a firehose the method exists but has no stream.
	bare := newSubEnv(t, false)
	_, resp, err := websocket.DefaultDialer.Dial(bare.url(""), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusNotImplemented {
		t.Fatalf("no firehose: %v %v", resp, err)
	}
}

func TestSubscribeReposFutureCursor(t *testing.T) {
	e := newSubEnv(t, true)
	e.createAccount("alice.test") // seqs 1..4
	c := e.dial("5")
	f := readSub(t, c, 1)[0]
	if len(f.header) != 1 || f.header["op"] != int64(-1) {
		t.Fatalf("header %v, want {op: -1}", f.header)
	}
	if f.body["error"] != "FutureCursor" {
		t.Fatalf("body %v", f.body)
	}
	if code, reason := readClose(t, c); code != 1008 || reason != "FutureCursor" {
		t.Fatalf("close %d %q", code, reason)
	}
	// The newest seq itself is not in the future: nothing to send yet.
	c = e.dial("4")
	e.createAccount("bob.test")
	if f := readSub(t, c, 1)[0]; f.body["seq"] != int64(5) {
		t.Fatalf("after cursor 4: %v", f.body)
	}
}

// TestSubscribeReposHostEvents replays everything the host emitted and
// checks every frame: the stored bytes, the lexicon shapes, the producing
// limits, and each #commit against the sync-1.1 verifier, chained per
// repository; #sync against its verifier.
func TestSubscribeReposHostEvents(t *testing.T) {
	e := newSubEnv(t, true)
	live := e.dial("")
	alice := e.createAccount("alice.test")
	bob := e.createAccount("bob.test")
	keys := map[string]atcrypto.PublicKey{}
	for _, did := range []string{alice, bob} {
		a, err := e.db.Account(did)
		if err != nil {
			t.Fatal(err)
		}
		if keys[did], err = e.host.PublicKey(a); err != nil {
			t.Fatal(err)
		}
	}
	// A commit at the ops limit.
	var big []repo.Write
	for i := range repo.MaxCommitOps {
		big = append(big, repo.Write{Action: repo.ActionCreate, Path: fmt.Sprintf("app.bsky.feed.post/r%04d", i), Record: subRecord(fmt.Sprint(i), 0)})
	}
	if err := e.write(alice, big...); err != nil {
		t.Fatal(err)
	}
	// Over the limits: refused, and nothing is emitted.
	before := e.db.LastSeq()
	tooMany := append(big, repo.Write{Action: repo.ActionCreate, Path: "app.bsky.feed.post/extra", Record: subRecord("x", 0)})
	if err := e.write(bob, tooMany...); !errors.Is(err, repo.ErrTooManyOps) {
		t.Fatalf("201 ops: %v", err)
	}
	var huge []repo.Write
	for i := range 3 {
		huge = append(huge, repo.Write{Action: repo.ActionCreate, Path: fmt.Sprintf("app.bsky.feed.post/h%d", i), Record: subRecord(fmt.Sprint(i), 900_000)})
	}
	if err := e.write(bob, huge...); !errors.Is(err, repo.ErrTooLarge) {
		t.Fatalf("2.7 MB of blocks: %v", err)
	}
	if e.db.LastSeq() != before {
		t.Fatal("a refused commit emitted events")
	}
	// Near the blocks limit, updates, deletes, status changes.
	if err := e.write(bob, huge[:2]...); err != nil {
		t.Fatal(err)
	}
	if err := e.write(alice,
		repo.Write{Action: repo.ActionUpdate, Path: "app.bsky.feed.post/r0001", Record: subRecord("changed", 0)},
		repo.Write{Action: repo.ActionDelete, Path: "app.bsky.feed.post/r0002"},
		repo.Write{Action: repo.ActionCreate, Path: "app.bsky.feed.post/new", Record: subRecord("new", 0)},
	); err != nil {
		t.Fatal(err)
	}
	if err := e.host.SetStatus(context.Background(), bob, store.StatusDeactivated); err != nil {
		t.Fatal(err)
	}
	if err := e.host.SetStatus(context.Background(), bob, store.StatusActive); err != nil {
		t.Fatal(err)
	}
	if err := e.write(bob, repo.Write{Action: repo.ActionDelete, Path: "app.bsky.feed.post/h0"}); err != nil {
		t.Fatal(err)
	}

	var stored [][]byte
	if err := e.db.Events(0, func(ev store.CommittedEvent) error {
		stored = append(stored, bytes.Clone(ev.Frame))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	replay := readSub(t, e.dial("0"), len(stored))
	liveFrames := readSub(t, live, len(stored))
	state := map[string]*repo.RepoState{}
	counts := map[string]int{}
	for i, f := range replay {
		if !bytes.Equal(f.raw, stored[i]) || !bytes.Equal(liveFrames[i].raw, stored[i]) {
			t.Fatalf("frame %d is not the stored bytes", i)
		}
		if f.body["seq"] != int64(i+1) {
			t.Fatalf("frame %d has seq %v", i, f.body["seq"])
		}
		typ, _ := f.header["t"].(string)
		if f.header["op"] != int64(1) || len(f.header) != 2 {
			t.Fatalf("frame %d header %v", i, f.header)
		}
		counts[typ]++
		js, err := dagcbor.ToJSON(f.body)
		if err != nil {
			t.Fatal(err)
		}
		lexcheck.CheckDef(t, subscribeNSID+typ, js)
		switch typ {
		case "#commit":
			checkCommitFrame(t, f.body, keys, state)
		case "#sync":
			checkSyncFrame(t, f.body, keys, state)
		}
	}
	// Two creations (identity, account, commit, sync each), three commits,
	// deactivation (account), activation (account, identity, sync), one
	// commit.
	want := map[string]int{"#identity": 3, "#account": 4, "#commit": 6, "#sync": 3}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Fatalf("events by type %v, want %v", counts, want)
	}
}

// checkCommitFrame checks a #commit body against the limits and the
// verifier, and advances the repository's verified state.
func checkCommitFrame(t *testing.T, body map[string]any, keys map[string]atcrypto.PublicKey, state map[string]*repo.RepoState) {
	t.Helper()
	did := body["repo"].(string)
	blocks := body["blocks"].([]byte)
	ops := body["ops"].([]any)
	if len(ops) > repo.MaxCommitOps || len(blocks) > repo.MaxCommitBlocksBytes {
		t.Fatalf("#commit over the limits: %d ops, %d bytes of blocks", len(ops), len(blocks))
	}
	if body["tooBig"] != false || body["rebase"] != false || len(body["blobs"].([]any)) != 0 {
		t.Fatalf("#commit deprecated fields %v %v %v", body["tooBig"], body["rebase"], body["blobs"])
	}
	msg := &repo.CommitMessage{Repo: did, Rev: body["rev"].(string), Commit: body["commit"].(cid.Cid), Blocks: blocks}
	if s, ok := body["since"].(string); ok {
		msg.Since = s
	}
	if p, ok := body["prevData"].(cid.Cid); ok {
		msg.PrevData = p
	}
	for _, o := range ops {
		om := o.(map[string]any)
		op := repo.Op{Action: repo.Action(om["action"].(string)), Path: om["path"].(string)}
		if c, ok := om["cid"].(cid.Cid); ok {
			op.CID = c
		}
		if c, ok := om["prev"].(cid.Cid); ok {
			op.Prev = c
		}
		msg.Ops = append(msg.Ops, op)
	}
	prev := state[did]
	if (prev == nil) != (msg.Since == "") || (prev == nil) != !msg.PrevData.Defined() {
		t.Fatalf("#commit of %s: since %q, prevData %v, known state %v", did, msg.Since, msg.PrevData, prev)
	}
	v, err := repo.VerifyCommitMessage(msg, repo.VerifyOptions{Key: keys[did], Prev: prev})
	if err != nil {
		t.Fatalf("#commit of %s rev %s does not verify: %v", did, msg.Rev, err)
	}
	s := v.State()
	state[did] = &s
}

// checkSyncFrame checks a #sync: the commit block only, within 10,000
// bytes, signed, and the repository's current state.
func checkSyncFrame(t *testing.T, body map[string]any, keys map[string]atcrypto.PublicKey, state map[string]*repo.RepoState) {
	t.Helper()
	did := body["did"].(string)
	blocks := body["blocks"].([]byte)
	if len(blocks) > 10_000 {
		t.Fatalf("#sync blocks of %d bytes", len(blocks))
	}
	roots, bs, err := car.ParseBytes(blocks, nil)
	if err != nil || len(roots) != 1 || len(bs) != 1 {
		t.Fatalf("#sync CAR: %d roots, %d blocks, %v", len(roots), len(bs), err)
	}
	commit, c, err := repo.VerifySyncMessage(&repo.SyncMessage{DID: did, Rev: body["rev"].(string), Blocks: blocks}, keys[did])
	if err != nil || c != roots[0] {
		t.Fatalf("#sync of %s: %v", did, err)
	}
	if s := state[did]; s == nil || s.Rev != commit.Rev || s.Data != commit.Data {
		t.Fatalf("#sync of %s at rev %s, the last #commit is %v", did, commit.Rev, s)
	}
}

// TestSubscribeReposAccountDeletion: deleting an account purges its earlier
// events. A consumer replaying afterwards sees only the deletion for it; a
// consumer that had them live sees the deletion after them. (That a
// consumer the server had not yet sent them to never gets them is
// events.TestDeletionPurgesTheRing: over a socket the server sends ahead
// of what the client reads.)
func TestSubscribeReposAccountDeletion(t *testing.T) {
	e := newSubEnv(t, true)
	alice := e.createAccount("alice.test") // 1..4
	bob := e.createAccount("bob.test")     // 5..8
	if err := e.write(alice, repo.Write{Action: repo.ActionCreate, Path: "app.bsky.feed.post/a", Record: subRecord("a", 0)}); err != nil {
		t.Fatal(err) // 9
	}
	before := e.dial("0")
	early := readSub(t, before, 9) // it has everything so far
	if err := e.host.DeleteAccount(context.Background(), alice); err != nil {
		t.Fatal(err) // 10
	}
	if err := e.write(bob, repo.Write{Action: repo.ActionCreate, Path: "app.bsky.feed.post/b", Record: subRecord("b", 0)}); err != nil {
		t.Fatal(err) // 11
	}
	dids := func(fs []subFrame) string {
		var out []string
		for _, f := range fs {
			d, _ := f.body["did"].(string)
			if d == "" {
				d, _ = f.body["repo"].(string)
			}
			name := map[string]string{alice: "alice", bob: "bob"}[d]
			out = append(out, fmt.Sprintf("%d:%s%s", f.body["seq"], name, f.header["t"]))
		}
		return strings.Join(out, " ")
	}
	after := readSub(t, e.dial("0"), 5)
	if got, want := dids(after), "5:bob#identity 6:bob#account 7:bob#commit 8:bob#sync 10:alice#account"; got != want {
		t.Fatalf("replay after the deletion: %s, want %s", got, want)
	}
	if after[4].body["active"] != false || after[4].body["status"] != "deleted" {
		t.Fatalf("deletion event %v", after[4].body)
	}
	if len(early) != 9 {
		t.Fatal(len(early))
	}
	if got := dids(readSub(t, before, 2)); got != "10:alice#account 11:bob#commit" {
		t.Fatalf("consumer that had alice's events: %s", got)
	}
}

func TestSubscribeReposShutdown(t *testing.T) {
	e := newSubEnv(t, true)
	c := e.dial("")
	for e.fh.Subscribers() != 1 {
		time.Sleep(time.Millisecond)
	}
	e.fh.Close()
	if code, _ := readClose(t, c); code != websocket.CloseGoingAway {
		t.Fatalf("close %d, want 1001", code)
	}
	_, resp, err := websocket.DefaultDialer.Dial(e.url(""), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("after shutdown: %v %v", resp, err)
	}
}
