package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/host"
	"github.com/reservoir-atproto/reservoir/internal/lexcheck"
	"github.com/reservoir-atproto/reservoir/internal/testutil"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/store"
	"github.com/reservoir-atproto/reservoir/xrpc"
)

// The collection tests run the API as `reservoir serve` mounts it (XRPC
// server and /admin/ routes) over an in-memory store, with hosted accounts
// that adopt their DIDs (no directory needed).

const collAdminPassword = "collections-admin"

type collEnv struct {
	t    testing.TB
	db   *store.DB
	host *host.Host
	http http.Handler
}

func newCollEnv(t testing.TB) *collEnv {
	t.Helper()
	db, err := store.Open(store.Options{InMemory: true, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	h := host.New(host.Options{DB: db})
	auth := &xrpc.Auth{AdminPassword: collAdminPassword, Tokens: h}
	srv := xrpc.NewServer(xrpc.Options{})
	a := New(Options{DB: db, Host: h, Auth: auth})
	a.Register(srv)
	mux := http.NewServeMux()
	mux.Handle(xrpc.PathPrefix, srv)
	mux.Handle("/admin/", srv.Endpoint("admin", auth.RequireAdmin(a.AdminHandler())))
	return &collEnv{t: t, db: db, host: h, http: mux}
}

// account creates a hosted account adopting did:web:<name>.test.
func (e *collEnv) account(name string) string {
	e.t.Helper()
	key, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		e.t.Fatal(err)
	}
	did := "did:web:" + name + ".test"
	if _, err := e.host.CreateAccount(context.Background(), host.CreateAccountInput{Handle: name + ".test", DID: did, SigningKey: key.Multibase()}); err != nil {
		e.t.Fatal(err)
	}
	return did
}

// write applies one commit of writes to a repository.
func (e *collEnv) write(did string, ws ...repo.Write) {
	e.t.Helper()
	hw := make([]host.Write, len(ws))
	for i, w := range ws {
		hw[i] = host.Write{Write: w}
	}
	if _, err := e.host.ApplyWrites(context.Background(), did, hw, cid.Undef); err != nil {
		e.t.Fatal(err)
	}
}

func collRecord(coll string, n int) []byte {
	b, err := dagcbor.Marshal(map[string]any{"$type": coll, "n": int64(n), "createdAt": "2026-11-26T00:00:00Z"})
	if err != nil {
		panic(err)
	}
	return b
}

func collCreate(coll, rkey string, n int) repo.Write {
	return repo.Write{Action: repo.ActionCreate, Path: coll + "/" + rkey, Record: collRecord(coll, n)}
}

func collUpdate(coll, rkey string, n int) repo.Write {
	return repo.Write{Action: repo.ActionUpdate, Path: coll + "/" + rkey, Record: collRecord(coll, n)}
}

func collRemove(coll, rkey string) repo.Write {
	return repo.Write{Action: repo.ActionDelete, Path: coll + "/" + rkey}
}

type collResponse struct {
	status int
	body   []byte
}

func (e *collEnv) get(path string, params url.Values, admin bool) collResponse {
	e.t.Helper()
	target := path
	if len(params) > 0 {
		target += "?" + params.Encode()
	}
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if admin {
		req.SetBasicAuth("admin", collAdminPassword)
	}
	rec := httptest.NewRecorder()
	e.http.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Result().Body)
	return collResponse{status: rec.Code, body: body}
}

// listPage calls listReposByCollection and checks the body against the
// lexicon.
func (e *collEnv) listPage(coll string, limit int, cursor string) reposPage {
	e.t.Helper()
	v := url.Values{"collection": {coll}}
	if limit > 0 {
		v.Set("limit", fmt.Sprint(limit))
	}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	r := e.get("/xrpc/com.atproto.sync.listReposByCollection", v, false)
	if r.status != http.StatusOK {
		e.t.Fatalf("listReposByCollection %s: %d %s", coll, r.status, r.body)
	}
	lexcheck.Check(e.t, "com.atproto.sync.listReposByCollection", r.body)
	var page reposPage
	if err := json.Unmarshal(r.body, &page); err != nil {
		e.t.Fatal(err)
	}
	return page
}

// listAll walks a collection to its end.
func (e *collEnv) listAll(coll string, limit int) []string {
	e.t.Helper()
	var dids []string
	cursor := ""
	for range 10000 {
		page := e.listPage(coll, limit, cursor)
		for _, r := range page.Repos {
			dids = append(dids, r.DID)
		}
		if page.Cursor == "" {
			return dids
		}
		cursor = page.Cursor
	}
	e.t.Fatal("walk does not end")
	return nil
}

// adminCounts walks GET /admin/collections to its end.
func (e *collEnv) adminCounts(prefix string, limit int) map[string]uint64 {
	e.t.Helper()
	out := map[string]uint64{}
	cursor, last := "", ""
	for range 10000 {
		v := url.Values{"limit": {fmt.Sprint(limit)}}
		if cursor != "" {
			v.Set("cursor", cursor)
		}
		if prefix != "" {
			v.Set("prefix", prefix)
		}
		r := e.get("/admin/collections", v, true)
		if r.status != http.StatusOK {
			e.t.Fatalf("/admin/collections: %d %s", r.status, r.body)
		}
		var page collectionsPage
		if err := json.Unmarshal(r.body, &page); err != nil {
			e.t.Fatal(err)
		}
		for _, c := range page.Collections {
			if c.Collection <= last {
				e.t.Fatalf("/admin/collections: %s after %s", c.Collection, last)
			}
			last = c.Collection
			out[c.Collection] = c.Repos
		}
		if page.Cursor == "" {
			return out
		}
		cursor = page.Cursor
	}
	e.t.Fatal("walk does not end")
	return nil
}

// Random creates, updates and deletes across many repositories, checked
// against a model after every commit: a repository is listed from its first
// record of a collection until its last one is deleted.
func TestListReposByCollectionFollowsWrites(t *testing.T) {
	e := newCollEnv(t)
	colls := []string{"app.bsky.feed.like", "app.bsky.feed.post", "com.example.thing.v2"}
	var dids []string // creation order, which is UID order
	for i := range 9 {
		dids = append(dids, e.account(fmt.Sprintf("writer%d", i)))
	}
	model := map[string]map[string][]string{} // did → collection → rkeys
	for _, did := range dids {
		model[did] = map[string][]string{}
	}
	check := func(step int) {
		t.Helper()
		counts := map[string]uint64{}
		for _, coll := range colls {
			var want []string
			for _, did := range dids {
				if len(model[did][coll]) > 0 {
					want = append(want, did)
					counts[coll]++
				}
			}
			if got := e.listAll(coll, 2); !slices.Equal(got, want) {
				t.Fatalf("step %d: %s lists %v, want %v", step, coll, got, want)
			}
		}
		for coll, n := range e.adminCounts("", 1) {
			if n != counts[coll] {
				t.Fatalf("step %d: admin view counts %d repositories in %s, want %d", step, n, coll, counts[coll])
			}
			delete(counts, coll)
		}
		if len(counts) > 0 {
			t.Fatalf("step %d: admin view lacks %v", step, counts)
		}
	}
	rng := rand.New(rand.NewSource(1))
	n := 0
	for step := range 120 {
		did := dids[rng.Intn(len(dids))]
		var ws []repo.Write
		for range 1 + rng.Intn(3) { // one to three writes per commit
			coll := colls[rng.Intn(len(colls))]
			rkeys := model[did][coll]
			switch {
			case len(rkeys) > 0 && rng.Intn(100) < 45:
				i := rng.Intn(len(rkeys))
				if slices.ContainsFunc(ws, func(w repo.Write) bool { return w.Path == coll+"/"+rkeys[i] }) {
					continue
				}
				ws = append(ws, collRemove(coll, rkeys[i]))
				model[did][coll] = slices.Delete(rkeys, i, i+1)
			case len(rkeys) > 0 && rng.Intn(100) < 20:
				rk := rkeys[rng.Intn(len(rkeys))]
				if slices.ContainsFunc(ws, func(w repo.Write) bool { return w.Path == coll+"/"+rk }) {
					continue
				}
				n++
				ws = append(ws, collUpdate(coll, rk, n)) // changes nothing in the index
			default:
				n++
				rk := fmt.Sprintf("r%06d", n)
				ws = append(ws, collCreate(coll, rk, n))
				model[did][coll] = append(model[did][coll], rk)
			}
		}
		if len(ws) > 0 {
			e.write(did, ws...)
		}
		check(step)
	}
}

// Takedown, suspension and deactivation hide a repository while they last;
// pages stay full-length scans, so the cursor never skips a repository;
// deletion removes it for good.
func TestListReposByCollectionStatuses(t *testing.T) {
	e := newCollEnv(t)
	const coll = "app.bsky.feed.post"
	var dids []string
	for i := range 6 {
		did := e.account(fmt.Sprintf("status%d", i))
		e.write(did, collCreate(coll, "a", i))
		dids = append(dids, did)
	}
	ctx := context.Background()
	setStatus := func(i int, s store.Status) {
		t.Helper()
		if err := e.host.SetStatus(ctx, dids[i], s); err != nil {
			t.Fatal(err)
		}
	}
	setStatus(1, store.StatusTakendown)
	setStatus(2, store.StatusSuspended)
	setStatus(3, store.StatusDeactivated)
	// Pages of two: each scans two entries; hidden ones cost their place but
	// keep the cursor moving.
	type page struct {
		dids   []string
		cursor bool
	}
	want := []page{{dids[:1], true}, {nil, true}, {dids[4:6], true}, {nil, false}}
	cursor := ""
	for i, w := range want {
		p := e.listPage(coll, 2, cursor)
		var got []string
		for _, r := range p.Repos {
			got = append(got, r.DID)
		}
		if !slices.Equal(got, w.dids) || (p.Cursor != "") != w.cursor {
			t.Fatalf("page %d: %v cursor %q, want %v (cursor %v)", i, got, p.Cursor, w.dids, w.cursor)
		}
		cursor = p.Cursor
	}
	if got := e.listAll(coll, 500); !slices.Equal(got, []string{dids[0], dids[4], dids[5]}) {
		t.Fatalf("with three hidden: %v", got)
	}
	if n := e.adminCounts("", 10)[coll]; n != 6 {
		t.Fatalf("admin view counts %d, want 6 (hidden repositories count)", n)
	}
	// Lifting the statuses shows them again, records intact.
	setStatus(1, store.StatusActive)
	setStatus(3, store.StatusActive)
	if got := e.listAll(coll, 500); !slices.Equal(got, []string{dids[0], dids[1], dids[3], dids[4], dids[5]}) {
		t.Fatalf("after reactivation: %v", got)
	}
	// Deletion, of a suspended and of an active account, removes them.
	for _, i := range []int{2, 4} {
		if err := e.host.DeleteAccount(ctx, dids[i]); err != nil {
			t.Fatal(err)
		}
	}
	if got := e.listAll(coll, 1); !slices.Equal(got, []string{dids[0], dids[1], dids[3], dids[5]}) {
		t.Fatalf("after deletions: %v", got)
	}
	if n := e.adminCounts("", 10)[coll]; n != 4 {
		t.Fatalf("admin view counts %d after deletions, want 4", n)
	}
}

// A walk while writers add and remove repositories: every repository in the
// collection during the whole walk is listed exactly once, none twice.
func TestListReposByCollectionPagingUnderWrites(t *testing.T) {
	e := newCollEnv(t)
	const coll = "com.example.feed.item"
	var stable, churn []string
	for i := range 36 {
		did := e.account(fmt.Sprintf("pager%d", i))
		if i%2 == 0 {
			e.write(did, collCreate(coll, "keep", i))
			stable = append(stable, did)
		} else {
			churn = append(churn, did)
		}
	}
	stop := make(chan struct{})
	var writes atomic.Int64
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := churn[w*len(churn)/2 : (w+1)*len(churn)/2]
			has := map[string]bool{}
			rng := rand.New(rand.NewSource(int64(w)))
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				did := mine[rng.Intn(len(mine))]
				wr := collCreate(coll, "x", i)
				if has[did] {
					wr = collRemove(coll, "x")
				}
				hw := []host.Write{{Write: wr}}
				if _, err := e.host.ApplyWrites(context.Background(), did, hw, cid.Undef); err != nil {
					t.Error(err)
					return
				}
				has[did] = !has[did]
				writes.Add(1)
			}
		}()
	}
	w0 := writes.Load()
	deadline := time.Now().Add(30 * time.Second)
	for walk := 0; walk < 5 || writes.Load()-w0 < 50; walk++ {
		if time.Now().After(deadline) {
			t.Fatalf("only %d writes in %d walks", writes.Load()-w0, walk)
		}
		seen := map[string]int{}
		for _, did := range e.listAll(coll, 3) {
			seen[did]++
		}
		for did, n := range seen {
			if n != 1 {
				t.Fatalf("walk %d: %s listed %d times", walk, did, n)
			}
		}
		for _, did := range stable {
			if seen[did] != 1 {
				t.Fatalf("walk %d: %s, in the collection all along, listed %d times", walk, did, seen[did])
			}
		}
	}
	close(stop)
	wg.Wait()
}

func collError(t *testing.T, r collResponse, status int, name string) {
	t.Helper()
	var body struct{ Error, Message string }
	json.Unmarshal(r.body, &body)
	if r.status != status || body.Error != name {
		t.Errorf("got %d %s, want %d %s", r.status, r.body, status, name)
	}
}

func TestListReposByCollectionParams(t *testing.T) {
	e := newCollEnv(t)
	list := func(v url.Values) collResponse {
		return e.get("/xrpc/com.atproto.sync.listReposByCollection", v, false)
	}
	t.Run("missing collection", func(t *testing.T) {
		collError(t, list(nil), http.StatusBadRequest, "InvalidRequest")
		collError(t, list(url.Values{"collection": {""}}), http.StatusBadRequest, "InvalidRequest")
	})
	t.Run("invalid NSIDs", func(t *testing.T) {
		for _, nsid := range testutil.FixtureLines(t, "interop/syntax/nsid_syntax_invalid.txt") {
			r := list(url.Values{"collection": {nsid}})
			if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"InvalidRequest"`) {
				t.Errorf("collection %q: %d %s, want 400 InvalidRequest", nsid, r.status, r.body)
			}
		}
	})
	t.Run("valid NSIDs", func(t *testing.T) {
		for _, nsid := range testutil.FixtureLines(t, "interop/syntax/nsid_syntax_valid.txt") {
			if page := e.listPage(nsid, 0, ""); len(page.Repos) != 0 || page.Cursor != "" {
				t.Errorf("collection %q: %+v, want an empty last page", nsid, page)
			}
		}
	})
	for _, limit := range []string{"0", "-1", "2001", "ten", "1.5", "1e3"} {
		t.Run("limit "+limit, func(t *testing.T) {
			collError(t, list(url.Values{"collection": {"app.bsky.feed.post"}, "limit": {limit}}), http.StatusBadRequest, "InvalidRequest")
		})
	}
	for _, cursor := range []string{"abc", "-1", "1.5", "18446744073709551616"} {
		t.Run("cursor "+cursor, func(t *testing.T) {
			collError(t, list(url.Values{"collection": {"app.bsky.feed.post"}, "cursor": {cursor}}), http.StatusBadRequest, "InvalidRequest")
		})
	}
	t.Run("repeated collection", func(t *testing.T) {
		collError(t, list(url.Values{"collection": {"a.b.c", "a.b.d"}}), http.StatusBadRequest, "InvalidRequest")
	})
}

// The lexicon's default (500) and maximum (2000) page sizes, on 2,001
// repositories written straight through the store.
func TestListReposByCollectionLimits(t *testing.T) {
	e := newCollEnv(t)
	const coll, repos = "app.bsky.feed.post", 2001
	ctx := context.Background()
	var want []string
	for i := range repos {
		did := fmt.Sprintf("did:web:limit%d.test", i)
		if _, err := e.db.Apply(ctx, &store.Change{Account: &store.Account{DID: did},
			Collections: []store.CollectionCount{{Collection: coll, Count: 1}}}); err != nil {
			t.Fatal(err)
		}
		want = append(want, did)
	}
	sizes := func(limit int) []int {
		var out []int
		cursor := ""
		for {
			p := e.listPage(coll, limit, cursor)
			out = append(out, len(p.Repos))
			if p.Cursor == "" {
				return out
			}
			cursor = p.Cursor
		}
	}
	if got := sizes(0); !slices.Equal(got, []int{500, 500, 500, 500, 1}) {
		t.Fatalf("default pages %v, want four of 500 and one of 1", got)
	}
	if got := sizes(2000); !slices.Equal(got, []int{2000, 1}) {
		t.Fatalf("pages of 2000: %v", got)
	}
	if got := e.listAll(coll, 2000); !slices.Equal(got, want) {
		t.Fatal("walk with limit 2000 lists other repositories")
	}
}

func TestAdminCollections(t *testing.T) {
	e := newCollEnv(t)
	a, b, c := e.account("admin-a"), e.account("admin-b"), e.account("admin-c")
	e.write(a, collCreate("app.bsky.feed.post", "1", 1), collCreate("app.bsky.feed.like", "1", 1))
	e.write(b, collCreate("app.bsky.feed.post", "1", 2), collCreate("com.example.x", "1", 2))
	e.write(c, collCreate("app.bsky.feed.post", "1", 3), collCreate("app.bsky.feed.post", "2", 3))
	e.write(c, collRemove("app.bsky.feed.post", "1")) // still one post: still counted
	want := map[string]uint64{"app.bsky.feed.like": 1, "app.bsky.feed.post": 3, "com.example.x": 1}
	for _, limit := range []int{1, 2, 10000} {
		if got := e.adminCounts("", limit); !maps.Equal(got, want) {
			t.Fatalf("limit %d: %v, want %v", limit, got, want)
		}
	}
	if got := e.adminCounts("app.bsky.", 1); !maps.Equal(got, map[string]uint64{"app.bsky.feed.like": 1, "app.bsky.feed.post": 3}) {
		t.Fatalf("prefix app.bsky.: %v", got)
	}
	if got := e.adminCounts("org.", 5); len(got) != 0 {
		t.Fatalf("prefix org.: %v", got)
	}
	r := e.get("/admin/collections", nil, true)
	var page collectionsPage
	if err := json.Unmarshal(r.body, &page); err != nil || r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if want := `{"collections":[{"collection":"app.bsky.feed.like","repos":1},{"collection":"app.bsky.feed.post","repos":3},{"collection":"com.example.x","repos":1}]}`; string(r.body) != want {
		t.Fatalf("body %s, want %s", r.body, want)
	}

	collError(t, e.get("/admin/collections", nil, false), http.StatusUnauthorized, "AuthenticationRequired")
	req := httptest.NewRequest(http.MethodGet, "/admin/collections", nil)
	req.SetBasicAuth("admin", "wrong")
	rec := httptest.NewRecorder()
	e.http.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d", rec.Code)
	}
	req = httptest.NewRequest(http.MethodPost, "/admin/collections", nil)
	req.SetBasicAuth("admin", collAdminPassword)
	rec = httptest.NewRecorder()
	e.http.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", rec.Code)
	}
	for _, v := range []url.Values{{"limit": {"0"}}, {"limit": {"10001"}}, {"cursor": {"not an nsid"}}, {"prefix": {"a b"}}} {
		collError(t, e.get("/admin/collections", v, true), http.StatusBadRequest, "InvalidRequest")
	}
}

// BenchmarkListReposByCollection pages through a collection of 1M
// repositories (1 % of them taken down), 2,000 per page, through the XRPC
// server in process: routing, parameters, the store read and the JSON
// response (the client's decoding is left out). The accounts are written through the store (no repositories),
// which takes a while before the timer starts.
func BenchmarkListReposByCollection(b *testing.B) {
	const coll, repos, limit = "app.bsky.feed.post", 1_000_000, 2000
	e := newCollEnv(b)
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > repos {
					return
				}
				a := &store.Account{DID: fmt.Sprintf("did:plc:%024d", i)}
				if i%100 == 0 {
					a.Status = store.StatusTakendown
				}
				if _, err := e.db.Apply(ctx, &store.Change{Account: a, Collections: []store.CollectionCount{{Collection: coll, Count: 1}}}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportAllocs()
	cursor := ""
	var bytes int
	for b.Loop() {
		v := url.Values{"collection": {coll}, "limit": {fmt.Sprint(limit)}}
		if cursor != "" {
			v.Set("cursor", cursor)
		}
		req := httptest.NewRequest(http.MethodGet, "/xrpc/com.atproto.sync.listReposByCollection?"+v.Encode(), nil)
		rec := httptest.NewRecorder()
		e.http.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
		b.StopTimer() // the client's decoding is not the endpoint's cost
		var page reposPage
		if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
			b.Fatal(err)
		}
		if len(page.Repos) < limit*98/100 {
			b.Fatalf("page of %d repositories", len(page.Repos))
		}
		bytes += rec.Body.Len()
		cursor = page.Cursor // "" after the last page: start again
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
	b.ReportMetric(float64(bytes)/float64(b.N), "B/page")
}
