package client

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/api"
	"github.com/reservoir-atproto/reservoir/events"
	"github.com/reservoir-atproto/reservoir/host"
	"github.com/reservoir-atproto/reservoir/identity"
	"github.com/reservoir-atproto/reservoir/plc"
	"github.com/reservoir-atproto/reservoir/plc/directory"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
	"github.com/reservoir-atproto/reservoir/xrpc"
)

// The whole server of `reservoir serve` on httptest — in-memory store,
// firehose, host, API — with an in-process did:plc directory, so that the
// client is tested against the real endpoints.

const testAdminPassword = "pw"

type testServer struct {
	t      testing.TB
	url    string
	plcURL string
	plc    *plc.Client
}

type testAccount struct {
	did, token string
}

func newTestServer(t testing.TB) *testServer {
	t.Helper()
	dir, err := directory.New(directory.Options{Store: directory.NewMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	plcServer := httptest.NewServer(dir)
	t.Cleanup(plcServer.Close)
	plcClient := &plc.Client{BaseURL: plcServer.URL}

	ring := events.NewRing(events.RingOptions{})
	db, err := store.Open(store.Options{InMemory: true, GCInterval: -1, OnCommit: ring.Publish})
	if err != nil {
		t.Fatal(err)
	}
	fh, err := events.New(events.Options{Log: db, Ring: ring})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	publicURL := "http://" + ts.Listener.Addr().String()
	repos := &repostore.Repos{DB: db}
	h := host.New(host.Options{DB: db, Repos: repos, DIDs: plcClient, PublicURL: publicURL, Blobs: &store.FSBlobs{Dir: t.TempDir()}})
	auth := &xrpc.Auth{AdminPassword: testAdminPassword, Tokens: h}
	srv := xrpc.NewServer(xrpc.Options{})
	a := api.New(api.Options{DB: db, Repos: repos, Host: h, Auth: auth, PublicURL: publicURL, Firehose: fh})
	a.Register(srv)
	mux := http.NewServeMux()
	mux.Handle(xrpc.PathPrefix, srv)
	mux.Handle("/admin/", srv.Endpoint("admin", auth.RequireAdmin(a.AdminHandler())))
	ts.Config.Handler = mux
	ts.Config.RegisterOnShutdown(fh.Close)
	ts.Start()
	t.Cleanup(func() {
		fh.Close()
		ts.Close()
		db.Close()
	})
	return &testServer{t: t, url: publicURL, plcURL: plcServer.URL, plc: plcClient}
}

// call sends a request and decodes a JSON answer; it fails the test unless
// the status is 200.
func (s *testServer) call(method, path, token string, body io.Reader, contentType string) map[string]any {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token == "admin" {
		req.SetBasicAuth("admin", testAdminPassword)
	} else if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	out := map[string]any{}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			s.t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return out
}

func (s *testServer) procedure(nsid, token string, in any) map[string]any {
	s.t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		s.t.Fatal(err)
	}
	return s.call(http.MethodPost, "/xrpc/"+nsid, token, bytes.NewReader(b), "application/json")
}

func (s *testServer) createAccount(handle string) testAccount {
	s.t.Helper()
	out := s.procedure("com.atproto.server.createAccount", "admin", map[string]any{"handle": handle})
	return testAccount{did: out["did"].(string), token: out["accessJwt"].(string)}
}

// written is what a write answered: the record's CID and the new commit.
type written struct {
	cid, commit, rev string
}

// putRecord writes (creates or replaces) a record.
func (s *testServer) putRecord(a testAccount, collection, rkey string, rec map[string]any) written {
	s.t.Helper()
	out := s.procedure("com.atproto.repo.putRecord", a.token, map[string]any{"repo": a.did, "collection": collection, "rkey": rkey, "record": rec})
	commit := out["commit"].(map[string]any)
	return written{cid: out["cid"].(string), commit: commit["cid"].(string), rev: commit["rev"].(string)}
}

func (s *testServer) deleteRecord(a testAccount, collection, rkey string) {
	s.t.Helper()
	s.procedure("com.atproto.repo.deleteRecord", a.token, map[string]any{"repo": a.did, "collection": collection, "rkey": rkey})
}

// uploadBlob uploads data and returns the blob reference to put in a
// record.
func (s *testServer) uploadBlob(a testAccount, data []byte, mime string) map[string]any {
	s.t.Helper()
	out := s.call(http.MethodPost, "/xrpc/com.atproto.repo.uploadBlob", a.token, bytes.NewReader(data), mime)
	return out["blob"].(map[string]any)
}

func (s *testServer) takedown(did string) {
	s.t.Helper()
	s.call(http.MethodPost, "/admin/accounts/"+did+"/takedown", "admin", nil, "")
}

// resolver resolves DIDs in the test's directory.
func (s *testServer) resolver() *identity.Resolver {
	s.t.Helper()
	r, err := identity.New(identity.Options{PLCURL: s.plcURL, SkipHandleVerification: true})
	if err != nil {
		s.t.Fatal(err)
	}
	return r
}

// signingKey is the account's #atproto key, from the directory.
func (s *testServer) signingKey(did string) atcrypto.PublicKey {
	s.t.Helper()
	doc, err := s.plc.Resolve(context.Background(), syntax.DID(did))
	if err != nil {
		s.t.Fatal(err)
	}
	for _, vm := range doc.VerificationMethod {
		if strings.HasSuffix(vm.ID, "#atproto") {
			k, err := atcrypto.ParsePublicMultibase(vm.PublicKeyMultibase)
			if err != nil {
				s.t.Fatal(err)
			}
			return k
		}
	}
	s.t.Fatalf("%s has no #atproto key", did)
	return nil
}

func (s *testServer) client() *Client {
	s.t.Helper()
	c, err := New(s.url)
	if err != nil {
		s.t.Fatal(err)
	}
	c.sleep = func(context.Context, time.Duration) error { return nil }
	return c
}

func post(text string) map[string]any {
	return map[string]any{"$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-11-26T00:00:00.000Z"}
}

func withBlob(text string, blob map[string]any) map[string]any {
	p := post(text)
	p["embed"] = map[string]any{"$type": "app.bsky.embed.images", "images": []any{map[string]any{"alt": "", "image": blob}}}
	return p
}
