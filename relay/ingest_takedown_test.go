package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/reservoir-atproto/reservoir/api"
	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/host"
	"github.com/reservoir-atproto/reservoir/relay"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
	"github.com/reservoir-atproto/reservoir/xrpc"
)

// serveMirror serves the relay's API over the mirror's store, as serve
// wires it: the admin routes change mirrored accounts through the ingest.
// With lean, the API is a lean relay's (content reads redirect).
func serveMirror(t *testing.T, m *mirror, lean bool) string {
	t.Helper()
	repos := &repostore.Repos{DB: m.db}
	auth := &xrpc.Auth{AdminPassword: "x"}
	a := api.New(api.Options{DB: m.db, Repos: repos, Host: host.New(host.Options{DB: m.db, Repos: repos}), Auth: auth, Mirrors: m.ingest, LeanMirrors: lean})
	srv := xrpc.NewServer(xrpc.Options{Version: "takedown-test"})
	a.Register(srv)
	mux := http.NewServeMux()
	mux.Handle(xrpc.PathPrefix, srv)
	mux.Handle("/admin/", srv.Endpoint("admin", auth.RequireAdmin(a.AdminHandler())))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts.URL
}

// call makes a request and returns the status and the lexicon error name.
func call(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.SetBasicAuth("admin", "x")
	if method == http.MethodGet {
		req.Header.Del("Authorization") // reads as the public
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Error string }
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Error
}

// An admin's takedown of a mirrored account goes through the ingest: the
// account's upstream commits are dropped, reads answer RepoTakendown, our
// #account says so; the reversal announces the account again and fetches
// what was dropped meanwhile. Deactivation is not the relay's to set.
func TestMirroredTakedown(t *testing.T) {
	ident := newFakeIdentity()
	up := newUpstream(t)
	did := up.createAccount(ident, "taken.test")
	up.write(did, create("app.bsky.feed.post/a", "a"))
	m := newMirror(t, ident)
	base := serveMirror(t, m, false)
	m.submit(up.hostname, frames(t, up.db, 0)...)
	m.settle()
	sameRepo(t, up.db, m.db, did)
	read := base + "/xrpc/com.atproto.sync.getRepo?did=" + did
	if code, _ := call(t, http.MethodGet, read); code != 200 {
		t.Fatalf("getRepo before: %d", code)
	}

	ourMark := m.db.LastSeq()
	if code, name := call(t, http.MethodPost, base+"/admin/accounts/"+did+"/takedown"); code != 200 {
		t.Fatalf("takedown: %d %s", code, name)
	}
	if code, name := call(t, http.MethodGet, read); code != 403 || name != "RepoTakendown" {
		t.Fatalf("getRepo of a taken-down mirror: %d %s", code, name)
	}
	before := head(t, m.db, did)
	mark := up.db.LastSeq()
	up.write(did, create("app.bsky.feed.post/b", "b"))
	m.submit(up.hostname, frames(t, up.db, mark)...)
	m.settle()
	if h := head(t, m.db, did); h != before {
		t.Fatal("a commit of a taken-down account was applied")
	}
	log := decodeLog(t, m.db, ourMark)
	if len(log) != 1 {
		t.Fatalf("%d frames after the takedown, want one #account", len(log))
	}
	if a, ok := log[0].ev.(*wire.AccountEvent); !ok || a.Active || a.Status != "takendown" {
		t.Fatalf("after the takedown: %+v", log[0].ev)
	}

	// Deactivation is the account's own.
	if code, name := call(t, http.MethodPost, base+"/admin/accounts/"+did+"/deactivate"); code != 400 || name != "InvalidRequest" {
		t.Fatalf("deactivate a mirror: %d %s", code, name)
	}

	ourMark = m.db.LastSeq()
	if code, name := call(t, http.MethodPost, base+"/admin/accounts/"+did+"/reactivate"); code != 200 {
		t.Fatalf("reactivate: %d %s", code, name)
	}
	eventuallyTrue(t, "the resync after the reversal", func() bool { return head(t, m.db, did) == head(t, up.db, did) })
	m.idle()
	sameRepo(t, up.db, m.db, did)
	if code, _ := call(t, http.MethodGet, read); code != 200 {
		t.Fatalf("getRepo after the reversal: %d", code)
	}
	var types []string
	for _, d := range decodeLog(t, m.db, ourMark) {
		types = append(types, d.ev.Type())
	}
	// active again, the stored head, the state fetched
	if want := []string{wire.TypeAccount, wire.TypeSync, wire.TypeSync}; len(types) != 3 || types[0] != want[0] || types[1] != want[1] || types[2] != want[2] {
		t.Fatalf("after the reversal: %v", types)
	}
	verifyOurCommits(t, decodeLog(t, m.db, 0), pubKeys(up))

	mark = up.db.LastSeq()
	up.write(did, create("app.bsky.feed.post/c", "c"))
	m.submit(up.hostname, frames(t, up.db, mark)...)
	m.settle()
	sameRepo(t, up.db, m.db, did)

	// The same through com.atproto.admin.updateSubjectStatus.
	subject := func(applied bool) {
		t.Helper()
		body := fmt.Sprintf(`{"subject":{"$type":"com.atproto.admin.defs#repoRef","did":%q},"takedown":{"applied":%v}}`, did, applied)
		req, _ := http.NewRequest(http.MethodPost, base+"/xrpc/com.atproto.admin.updateSubjectStatus", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth("admin", "x")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("updateSubjectStatus applied=%v: %d", applied, resp.StatusCode)
		}
	}
	subject(true)
	if code, name := call(t, http.MethodGet, read); code != 403 || name != "RepoTakendown" {
		t.Fatalf("getRepo after updateSubjectStatus: %d %s", code, name)
	}
	subject(false)
	eventuallyTrue(t, "the reversal", func() bool { a, _ := m.db.Account(did); return a.Status == store.StatusActive })
	m.idle()
	if code, _ := call(t, http.MethodGet, read); code != 200 {
		t.Fatalf("getRepo after the reversal: %d", code)
	}

	// Unknown and hosted accounts are not the relay's.
	if err := m.ingest.SetStatus(context.Background(), newDID(), store.StatusTakendown); !errors.Is(err, relay.ErrNotMirrored) {
		t.Fatalf("takedown of an unknown account: %v", err)
	}
}

// A takedown is queued behind the account's events in flight: a commit
// submitted before it is applied and forwarded first, one submitted after
// it is dropped.
func TestMirroredTakedownOrder(t *testing.T) {
	ident := newFakeIdentity()
	up := newUpstream(t)
	did := up.createAccount(ident, "ordered.test")
	up.write(did, create("app.bsky.feed.post/a", "a"))
	m := newMirror(t, ident)
	m.submit(up.hostname, frames(t, up.db, 0)...)
	m.settle()

	mark := up.db.LastSeq()
	up.write(did, create("app.bsky.feed.post/b", "b"))
	up.write(did, create("app.bsky.feed.post/c", "c"))
	fs := frames(t, up.db, mark)
	ourMark := m.db.LastSeq()

	gate := make(chan struct{})
	ident.mu.Lock()
	ident.gate = gate // the first commit waits in its worker
	ident.mu.Unlock()
	m.submit(up.hostname, fs[0])
	done := make(chan error, 1)
	go func() { done <- m.ingest.SetStatus(context.Background(), did, store.StatusTakendown) }()
	eventuallyTrue(t, "the takedown queued", func() bool { return m.ingest.Stats().Events == 2 })
	m.submit(up.hostname, fs[1])
	ident.mu.Lock()
	ident.gate = nil
	ident.mu.Unlock()
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	m.settle()

	log := decodeLog(t, m.db, ourMark)
	if len(log) != 2 || log[0].ev.Type() != wire.TypeCommit || log[1].ev.Type() != wire.TypeAccount {
		t.Fatalf("our log: %d frames", len(log))
	}
	if c := log[0].ev.(*wire.CommitEvent); c.Rev != decodeCommitFrame(t, fs[0]).Rev {
		t.Fatalf("forwarded rev %s", c.Rev)
	}
	if a, _ := m.db.Account(did); a.Status != store.StatusTakendown {
		t.Fatalf("status %q", a.Status)
	}
	if n := m.counter("relay_ingest_events_total", map[string]string{"type": "commit", "outcome": "inactive"}); n != 1 {
		t.Fatalf("%v commits dropped as inactive", n)
	}
}
