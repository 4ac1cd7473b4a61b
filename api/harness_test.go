package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/reservoir-atproto/reservoir/api"
	"github.com/reservoir-atproto/reservoir/car"
	"github.com/reservoir-atproto/reservoir/host"
	"github.com/reservoir-atproto/reservoir/internal/lexcheck"
	"github.com/reservoir-atproto/reservoir/plc"
	"github.com/reservoir-atproto/reservoir/plc/directory"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
	"github.com/reservoir-atproto/reservoir/xrpc"
)

// The whole server of `reservoir serve` (cmd/reservoir/serve.go) on
// httptest, over an in-memory store, a temporary blob directory and a real
// in-process did:plc directory.

const (
	adminPassword = "correct horse battery staple"
	serverVersion = "apitest-1"
)

// testClock is the injectable clock of the store and the host.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// harness is one running server and what a test needs to reach into it.
type harness struct {
	t     *testing.T
	url   string // the server's base URL, which is also its public URL
	db    *store.DB
	host  *host.Host
	plc   *plc.Client // the in-process directory new accounts are registered in
	clock *testClock
	http  *http.Client
}

// with returns a copy of h that reports to t (a subtest).
func (h *harness) with(t *testing.T) *harness {
	c := *h
	c.t = t
	return &c
}

type harnessOptions struct {
	historyWindow time.Duration
	maxBlobSize   int64 // 0: the host's default
	mirrors       api.MirroredStatus
	leanMirrors   bool
}

func newHarness(t *testing.T, opts ...func(*harnessOptions)) *harness {
	t.Helper()
	o := harnessOptions{historyWindow: 72 * time.Hour}
	for _, f := range opts {
		f(&o)
	}
	clock := &testClock{now: time.Now().UTC()}

	dir, err := directory.New(directory.Options{Store: directory.NewMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	plcServer := httptest.NewServer(dir)
	t.Cleanup(plcServer.Close)
	plcClient := &plc.Client{BaseURL: plcServer.URL, HTTPClient: plcServer.Client()}

	db, err := store.Open(store.Options{InMemory: true, GCInterval: -1, HistoryWindow: o.historyWindow, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	publicURL := "http://" + ts.Listener.Addr().String()
	logger := slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))

	repos := &repostore.Repos{DB: db}
	h := host.New(host.Options{
		DB:          db,
		Repos:       repos,
		DIDs:        plcClient,
		PublicURL:   publicURL,
		Now:         clock.Now,
		Blobs:       &store.FSBlobs{Dir: t.TempDir()},
		MaxBlobSize: o.maxBlobSize,
	})
	auth := &xrpc.Auth{AdminPassword: adminPassword, Tokens: h}
	srv := xrpc.NewServer(xrpc.Options{Logger: logger, Version: serverVersion, Health: db.Healthy})
	a := api.New(api.Options{DB: db, Repos: repos, Host: h, Auth: auth, PublicURL: publicURL, Logger: logger, Now: clock.Now, Mirrors: o.mirrors, LeanMirrors: o.leanMirrors})
	a.Register(srv)
	mux := http.NewServeMux()
	mux.Handle(xrpc.PathPrefix, srv)
	mux.Handle("/admin/", srv.Endpoint("admin", auth.RequireAdmin(a.AdminHandler())))
	ts.Config.Handler = mux
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		db.Close()
	})
	return &harness{t: t, url: publicURL, db: db, host: h, plc: plcClient, clock: clock, http: ts.Client()}
}

// testLogWriter sends the server's warnings and errors (5xx causes) to the
// test log.
type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log("server: " + strings.TrimSpace(string(p)))
	return len(p), nil
}

// cred adds credentials to a request.
type cred func(*http.Request)

func asAdmin(r *http.Request) { r.SetBasicAuth(xrpc.AdminUser, adminPassword) }

func bearer(token string) cred {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

func basic(user, pass string) cred {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

// response is a whole HTTP response.
type response struct {
	t      *testing.T
	what   string // method and path, for messages
	status int
	header http.Header
	body   []byte
}

func (h *harness) do(method, path string, body io.Reader, header http.Header, creds ...cred) *response {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	maps.Copy(req.Header, header)
	for _, c := range creds {
		c(req)
	}
	resp, err := h.http.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return &response{t: h.t, what: method + " " + path, status: resp.StatusCode, header: resp.Header, body: b}
}

// query calls GET /xrpc/nsid with params given as name, value pairs (a name
// may repeat).
func (h *harness) query(nsid string, params []string, creds ...cred) *response {
	h.t.Helper()
	return h.do(http.MethodGet, "/xrpc/"+nsid+queryString(params...), nil, nil, creds...)
}

func queryString(pairs ...string) string {
	if len(pairs)%2 != 0 {
		panic("queryString: odd number of arguments")
	}
	v := url.Values{}
	for i := 0; i < len(pairs); i += 2 {
		v.Add(pairs[i], pairs[i+1])
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// q is a shorthand for query parameter lists.
func q(pairs ...string) []string { return pairs }

// procedure calls POST /xrpc/nsid with in as its JSON body (a string or
// []byte is sent as is).
func (h *harness) procedure(nsid string, in any, creds ...cred) *response {
	h.t.Helper()
	var body []byte
	switch x := in.(type) {
	case string:
		body = []byte(x)
	case []byte:
		body = x
	default:
		var err error
		if body, err = json.Marshal(in); err != nil {
			h.t.Fatal(err)
		}
	}
	return h.do(http.MethodPost, "/xrpc/"+nsid, bytes.NewReader(body), http.Header{"Content-Type": {"application/json"}}, creds...)
}

// ok asserts a 200 JSON response of nsid, checks it against the lexicon and
// decodes it.
func (r *response) ok(nsid string) map[string]any {
	r.t.Helper()
	if r.status != http.StatusOK {
		r.t.Fatalf("%s: status %d, want 200; body %s", r.what, r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		r.t.Fatalf("%s: Content-Type %q, want application/json", r.what, ct)
	}
	lexcheck.Check(r.t, nsid, r.body)
	return decodeJSON(r.t, r.body)
}

// car asserts a 200 CAR response and parses it (see parseCAR).
func (r *response) car() *carFile {
	r.t.Helper()
	if r.status != http.StatusOK {
		r.t.Fatalf("%s: status %d, want 200; body %s", r.what, r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/vnd.ipld.car" {
		r.t.Fatalf("%s: Content-Type %q, want application/vnd.ipld.car", r.what, ct)
	}
	return parseCAR(r.t, r.body)
}

// fails asserts an XRPC error response: the status, the JSON body of
// exactly {"error": name, "message": non-empty text}. It returns the
// message.
func (r *response) fails(status int, name string) string {
	r.t.Helper()
	if r.status != status {
		r.t.Fatalf("%s: status %d, want %d (%s); body %s", r.what, r.status, status, name, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		r.t.Errorf("%s: error with Content-Type %q", r.what, ct)
	}
	var e map[string]any
	if err := json.Unmarshal(r.body, &e); err != nil {
		r.t.Fatalf("%s: error body %q is not JSON: %v", r.what, r.body, err)
	}
	msg, _ := e["message"].(string)
	if e["error"] != name || msg == "" || len(e) != 2 {
		r.t.Fatalf("%s: error body %s, want {\"error\": %q, \"message\": ...}", r.what, r.body, name)
	}
	return msg
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeJSON(t *testing.T, b []byte) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatalf("body %q: %v", b, err)
	}
	return m
}

// str reads a string at a path of nested objects.
func str(t *testing.T, m map[string]any, keys ...string) string {
	t.Helper()
	var v any = m
	for _, k := range keys {
		obj, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("no object at %q in %v", k, m)
		}
		v = obj[k]
	}
	s, ok := v.(string)
	if !ok {
		t.Fatalf("%v: %v is not a string in %v", keys, v, m)
	}
	return s
}

// adminAction posts /admin/accounts/{did}/{action} as the admin and
// returns its answer, {did, active, status}.
func (h *harness) adminAction(did, action string) map[string]any {
	h.t.Helper()
	r := h.do(http.MethodPost, "/admin/accounts/"+did+"/"+action, nil, nil, asAdmin)
	if r.status != http.StatusOK {
		h.t.Fatalf("%s: status %d, body %s", r.what, r.status, r.body)
	}
	out := decodeJSON(h.t, r.body)
	if out["did"] != did || len(out) != 3 {
		h.t.Fatalf("%s: %s", r.what, r.body)
	}
	return out
}

// newKey is a new K-256 private key in multibase, for adopted accounts.
func newKey(t *testing.T) string {
	t.Helper()
	k, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		t.Fatal(err)
	}
	return k.Multibase()
}

// account is a hosted account and its bearer token.
type account struct {
	did, handle, token string
}

func (a account) cred() cred { return bearer(a.token) }

// createAccount makes a new did:plc account through the API.
func (h *harness) createAccount(handle string) account {
	h.t.Helper()
	out := h.procedure("com.atproto.server.createAccount", map[string]any{"handle": handle}, asAdmin).ok("com.atproto.server.createAccount")
	return account{did: str(h.t, out, "did"), handle: str(h.t, out, "handle"), token: str(h.t, out, "accessJwt")}
}

// signingKey resolves the account's signing key in the directory.
func (h *harness) signingKey(did string) atcrypto.PublicKey {
	h.t.Helper()
	doc, err := h.plc.Resolve(context.Background(), syntax.DID(did))
	if err != nil {
		h.t.Fatalf("resolving %s: %v", did, err)
	}
	for _, vm := range doc.VerificationMethod {
		if vm.ID == did+"#atproto" {
			k, err := atcrypto.ParsePublicMultibase(vm.PublicKeyMultibase)
			if err != nil {
				h.t.Fatal(err)
			}
			return k
		}
	}
	h.t.Fatalf("%s: no #atproto key in %+v", did, doc)
	return nil
}

// post is a record of collection app.bsky.feed.post.
func post(text string) map[string]any {
	return map[string]any{"$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-11-25T12:00:00.000Z"}
}

// recordCID is the CID of a record given as JSON, computed with indigo's
// atdata and go-cid: independently of the code under test.
func recordCID(t *testing.T, rec any) cid.Cid {
	t.Helper()
	j, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	m, err := atdata.UnmarshalJSON(j)
	if err != nil {
		t.Fatal(err)
	}
	b, err := atdata.MarshalCBOR(m)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cid.Prefix{Version: 1, Codec: cid.DagCBOR, MhType: multihash.SHA2_256, MhLength: -1}.Sum(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// createRecord writes a record with the account's token and returns the
// response body.
func (h *harness) createRecord(a account, collection, rkey string, rec any) map[string]any {
	h.t.Helper()
	in := map[string]any{"repo": a.did, "collection": collection, "record": rec}
	if rkey != "" {
		in["rkey"] = rkey
	}
	return h.procedure("com.atproto.repo.createRecord", in, a.cred()).ok("com.atproto.repo.createRecord")
}

func (h *harness) deleteRecord(a account, collection, rkey string) map[string]any {
	h.t.Helper()
	return h.procedure("com.atproto.repo.deleteRecord", map[string]any{"repo": a.did, "collection": collection, "rkey": rkey}, a.cred()).ok("com.atproto.repo.deleteRecord")
}

// latest is getLatestCommit.
func (h *harness) latest(did string, creds ...cred) (cid.Cid, string) {
	h.t.Helper()
	out := h.query("com.atproto.sync.getLatestCommit", q("did", did), creds...).ok("com.atproto.sync.getLatestCommit")
	return mustCID(h.t, str(h.t, out, "cid")), str(h.t, out, "rev")
}

func mustCID(t *testing.T, s string) cid.Cid {
	t.Helper()
	c, err := cid.Decode(s)
	if err != nil {
		t.Fatalf("CID %q: %v", s, err)
	}
	return c
}

// carFile is a parsed CAR: roots, blocks in file order, and blocks by CID.
type carFile struct {
	roots  []cid.Cid
	order  []cid.Cid
	blocks map[cid.Cid][]byte
}

// parseCAR reads a CAR with the car package's streaming reader, which
// checks every block against its CID, and fails on a block given twice.
func parseCAR(t *testing.T, b []byte) *carFile {
	t.Helper()
	r, err := car.NewReader(bytes.NewReader(b), nil)
	if err != nil {
		t.Fatalf("CAR: %v", err)
	}
	f := &carFile{roots: r.Roots(), blocks: map[cid.Cid][]byte{}}
	for {
		c, data, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("CAR block %d: %v", len(f.order), err)
		}
		if _, dup := f.blocks[c]; dup {
			t.Fatalf("CAR holds block %s twice", c)
		}
		f.order = append(f.order, c)
		f.blocks[c] = data
	}
	return f
}

// cidSet is a set of CIDs with a readable diff.
type cidSet map[cid.Cid]bool

func setOf(cids ...cid.Cid) cidSet {
	s := cidSet{}
	for _, c := range cids {
		s[c] = true
	}
	return s
}

func (s cidSet) keys() []cid.Cid { return slices.Collect(maps.Keys(s)) }

// diff describes how got differs from want ("" when equal).
func (want cidSet) diff(got cidSet) string {
	var extra, missing []string
	for c := range got {
		if !want[c] {
			extra = append(extra, c.String())
		}
	}
	for c := range want {
		if !got[c] {
			missing = append(missing, c.String())
		}
	}
	if len(extra) == 0 && len(missing) == 0 {
		return ""
	}
	slices.Sort(extra)
	slices.Sort(missing)
	return fmt.Sprintf("%d unexpected %v, %d missing %v", len(extra), extra, len(missing), missing)
}
