package directory_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/plc"
	"github.com/reservoir-atproto/reservoir/plc/directory"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable time source for the recovery window.
type clock struct{ ns atomic.Int64 }

func newClock() *clock               { c := &clock{}; c.set(t0); return c }
func (c *clock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) add(d time.Duration) { c.set(c.now().Add(d)) }

type env struct {
	url    string
	client *plc.Client
	clock  *clock
	store  directory.Store
}

func newEnv(t *testing.T, store directory.Store) *env {
	t.Helper()
	c := newClock()
	srv, err := directory.New(directory.Options{Store: store, Now: c.now, Version: "test-1", MaxExportCount: 5})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &env{url: ts.URL, client: &plc.Client{BaseURL: ts.URL}, clock: c, store: store}
}

type key struct {
	priv atcrypto.PrivateKey
	pub  atcrypto.PublicKey
}

func newKey(t *testing.T, p256 bool) key {
	t.Helper()
	var (
		priv atcrypto.PrivateKey
		err  error
	)
	if p256 {
		priv, err = atcrypto.GeneratePrivateKeyP256()
	} else {
		priv, err = atcrypto.GeneratePrivateKeyK256()
	}
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := priv.PublicKey()
	return key{priv, pub}
}

func account(handle string, signing key, rotation ...key) plc.Account {
	a := plc.Account{Handle: syntax.Handle(handle), Endpoint: "https://pds.example.com", SigningKey: signing.pub}
	for _, k := range rotation {
		a.RotationKeys = append(a.RotationKeys, k.pub)
	}
	return a
}

func signed(t *testing.T, op plc.Op, k key) plc.Op {
	t.Helper()
	if err := plc.Sign(op, k.priv); err != nil {
		t.Fatal(err)
	}
	return op
}

func updated(t *testing.T, prev plc.Op, k key, changes ...plc.Change) plc.Op {
	t.Helper()
	op, err := plc.Update(prev, changes...)
	if err != nil {
		t.Fatal(err)
	}
	return signed(t, op, k)
}

// get fetches path and returns the status, content type and body.
func get(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// message decodes an error body, which must be exactly {"message": ...}.
func message(t *testing.T, body string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil || len(m) != 1 {
		t.Fatalf("error body is not {\"message\": ...}: %s", body)
	}
	s, ok := m["message"].(string)
	if !ok {
		t.Fatalf("message is not a string: %s", body)
	}
	return s
}

func TestRoutes(t *testing.T) {
	e := newEnv(t, directory.NewMemStore())
	ctx := context.Background()
	k := newKey(t, false)
	did, g, err := e.client.CreateAccount(ctx, account("alice.test", k, k), k.priv)
	if err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}

	status, ctype, body := get(t, e.url+"/_health")
	if status != 200 || !strings.HasPrefix(ctype, "application/json") || body != `{"version":"test-1"}` {
		t.Errorf("/_health = %d %s %s", status, ctype, body)
	}
	status, ctype, body = get(t, e.url+"/"+did.String())
	if status != 200 || ctype != "application/did+ld+json" {
		t.Errorf("GET /{did} = %d %s", status, ctype)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(body), &doc); err != nil || doc["id"] != did.String() || doc["alsoKnownAs"].([]any)[0] != "at://alice.test" {
		t.Errorf("document %s", body)
	}
	resolved, err := e.client.Resolve(ctx, did)
	if err != nil || resolved.Service[0].ServiceEndpoint != "https://pds.example.com" || resolved.VerificationMethod[0].PublicKeyMultibase != strings.TrimPrefix(k.pub.DIDKey(), "did:key:") {
		t.Errorf("Resolve = %+v, %v", resolved, err)
	}

	e.clock.add(time.Minute)
	u := updated(t, g, k, plc.SetHandle("bob.test"))
	if err := e.client.Submit(ctx, did, u); err != nil {
		t.Fatalf("update: %v", err)
	}
	data, err := e.client.Data(ctx, did)
	if err != nil || data.AlsoKnownAs[0] != "at://bob.test" || data.RotationKeys[0] != k.pub.DIDKey() {
		t.Errorf("Data = %+v, %v", data, err)
	}
	ops, err := e.client.Log(ctx, did)
	if err != nil || len(ops) != 2 || !ops[0].CID().Equals(g.CID()) || !ops[1].CID().Equals(u.CID()) {
		t.Errorf("Log = %v, %v", ops, err)
	}
	last, err := e.client.Last(ctx, did)
	if err != nil || !last.CID().Equals(u.CID()) {
		t.Errorf("Last = %v, %v", last, err)
	}
	_, _, body = get(t, e.url+"/"+did.String()+"/log/audit")
	want := fmt.Sprintf(`[{"did":%q,"operation":%s,"cid":%q,"nullified":false,"createdAt":"2025-06-01T12:00:00.000Z"},{"did":%q,"operation":%s,"cid":%q,"nullified":false,"createdAt":"2025-06-01T12:01:00.000Z"}]`,
		did, plc.AppendJSON(nil, g), g.CID(), did, plc.AppendJSON(nil, u), u.CID())
	if body != want {
		t.Errorf("audit log\n got %s\nwant %s", body, want)
	}

	ts := signed(t, plc.NewTombstone(u), k)
	if err := e.client.Submit(ctx, did, ts); err != nil {
		t.Fatalf("tombstone: %v", err)
	}
	for _, path := range []string{"", "/data"} {
		status, _, body := get(t, e.url+"/"+did.String()+path)
		if status != 404 || message(t, body) != "DID not available: "+did.String() {
			t.Errorf("GET /{did}%s of a tombstoned DID = %d %s", path, status, body)
		}
	}
	if _, err := e.client.Resolve(ctx, did); !errors.Is(err, plc.ErrDeactivated) {
		t.Errorf("Resolve of a tombstoned DID: %v, want ErrDeactivated", err)
	}
	if last, err := e.client.Last(ctx, did); err != nil || last.Type() != plc.TypeTombstone {
		t.Errorf("Last after the tombstone = %v, %v", last, err)
	}
	audit, err := e.client.AuditLog(ctx, did)
	if err != nil || len(audit) != 3 {
		t.Fatalf("AuditLog = %d entries, %v", len(audit), err)
	}
	if _, err := plc.VerifyAuditLog(did, audit); err != nil {
		t.Errorf("the served audit log does not verify: %v", err)
	}
	err = e.client.Submit(ctx, did, updated(t, g, k))
	if !errors.Is(err, plc.ErrRejected) {
		t.Errorf("fork by the same key after a tombstone: %v", err)
	}
}

func TestErrorShapes(t *testing.T) {
	e := newEnv(t, directory.NewMemStore())
	k := newKey(t, true)
	g, did, err := plc.CreateGenesis(account("alice.test", k, k), k.priv)
	if err != nil {
		t.Fatal(err)
	}
	unknown := "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
	for _, path := range []string{"", "/data", "/log", "/log/audit", "/log/last"} {
		status, ctype, body := get(t, e.url+"/"+unknown+path)
		if status != 404 || !strings.HasPrefix(ctype, "application/json") || message(t, body) != "DID not registered: "+unknown {
			t.Errorf("GET /{unknown}%s = %d %s %s", path, status, ctype, body)
		}
	}
	if _, err := e.client.Data(context.Background(), syntax.DID(unknown)); !errors.Is(err, plc.ErrNotFound) {
		t.Errorf("client: %v, want ErrNotFound", err)
	}
	gj, _ := g.MarshalJSON()
	cases := []struct {
		name, path, body string
		status           int
		msg              string
	}{
		{"not JSON", "/" + did.String(), "{", 400, "malformed operation"},
		{"wrong shape", "/" + did.String(), `{"type":"plc_operation"}`, 400, "missing field"},
		{"genesis for another DID", "/" + unknown, string(gj), 400, "genesis hash does not match the DID"},
		{"not a DID", "/not-a-did", string(gj), 400, "Invalid DID"},
		{"body too large", "/" + did.String(), `{"x":"` + strings.Repeat("a", 200<<10) + `"}`, 413, "request entity too large"},
	}
	for _, tc := range cases {
		status, body := post(t, e.url+tc.path, tc.body)
		if status != tc.status || !strings.Contains(message(t, body), tc.msg) {
			t.Errorf("%s: %d %s, want %d containing %q", tc.name, status, body, tc.status, tc.msg)
		}
	}
	for _, path := range []string{"/a/b/c/d", "/" + did.String() + "/log/else"} {
		status, _, body := get(t, e.url+path)
		if status != 404 {
			t.Errorf("GET %s = %d", path, status)
		}
		message(t, body)
	}
	req, _ := http.NewRequest(http.MethodPut, e.url+"/"+did.String(), strings.NewReader(string(gj)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 4 {
		t.Errorf("PUT /{did} = %d", resp.StatusCode)
	}
	message(t, string(b))
	// Nothing above was stored.
	if status, _, _ := get(t, e.url+"/"+did.String()); status != 404 {
		t.Errorf("a refused operation was stored: %d", status)
	}
	if status, body := post(t, e.url+"/"+did.String(), string(gj)); status != 200 || body != "OK" {
		t.Errorf("valid genesis: %d %s", status, body)
	}
	if status, body := post(t, e.url+"/"+did.String(), string(gj)); status != 400 {
		t.Errorf("the same genesis twice: %d %s", status, body)
	}
}

func TestRecoveryOverHTTP(t *testing.T) {
	e := newEnv(t, directory.NewMemStore())
	ctx := context.Background()
	recovery, rotation := newKey(t, false), newKey(t, true)
	did, g, err := e.client.CreateAccount(ctx, account("alice.test", rotation, recovery, rotation), rotation.priv)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.add(time.Hour)
	hijack := updated(t, g, rotation, plc.SetHandle("hijacked.test"))
	if err := e.client.Submit(ctx, did, hijack); err != nil {
		t.Fatal(err)
	}
	audit, err := e.client.AuditLog(ctx, did)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.set(audit[1].CreatedAt.Add(plc.RecoveryWindow))
	fix := updated(t, g, recovery, plc.SetRotationKeys(recovery.pub))
	if err := e.client.Submit(ctx, did, fix); err != nil {
		t.Fatalf("recovery at exactly 72 h refused: %v", err)
	}
	audit, err = e.client.AuditLog(ctx, did)
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != 3 || audit[0].Nullified || !audit[1].Nullified || audit[2].Nullified || !audit[1].CID.Equals(hijack.CID()) {
		t.Fatalf("audit log after recovery: %+v", audit)
	}
	if _, err := plc.VerifyAuditLog(did, audit); err != nil {
		t.Errorf("served audit log does not verify: %v", err)
	}
	ops, _ := e.client.Log(ctx, did)
	if len(ops) != 2 || !ops[1].CID().Equals(fix.CID()) {
		t.Errorf("log after recovery has %d operations", len(ops))
	}
	data, _ := e.client.Data(ctx, did)
	if data.AlsoKnownAs[0] != "at://alice.test" {
		t.Errorf("state after recovery: %v", data.AlsoKnownAs)
	}

	// A second DID: the recovery comes a millisecond too late.
	did2, g2, err := e.client.CreateAccount(ctx, account("carol.test", rotation, recovery, rotation), rotation.priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.client.Submit(ctx, did2, updated(t, g2, rotation, plc.SetHandle("hijacked2.test"))); err != nil {
		t.Fatal(err)
	}
	audit2, err := e.client.AuditLog(ctx, did2)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.set(audit2[1].CreatedAt.Add(plc.RecoveryWindow + time.Millisecond))
	err = e.client.Submit(ctx, did2, updated(t, g2, recovery))
	var de *plc.DirectoryError
	if !errors.As(err, &de) || de.Status != 400 || !strings.Contains(de.Message, "recovery outside the 72 h window") {
		t.Errorf("late recovery: %v", err)
	}
}

func TestExport(t *testing.T) {
	e := newEnv(t, directory.NewMemStore())
	ctx := context.Background()
	var dids []syntax.DID
	for i := range 7 {
		k := newKey(t, i%2 == 0)
		did, _, err := e.client.CreateAccount(ctx, account(fmt.Sprintf("u%d.test", i), k, k), k.priv)
		if err != nil {
			t.Fatal(err)
		}
		dids = append(dids, did)
		// Two operations in the same millisecond still get distinct times.
		if i != 3 {
			e.clock.add(time.Second)
		}
	}
	type line struct {
		Seq       int64           `json:"seq"`
		Type      string          `json:"type"`
		DID       string          `json:"did"`
		CID       string          `json:"cid"`
		CreatedAt string          `json:"createdAt"`
		Nullified *bool           `json:"nullified"`
		Operation json.RawMessage `json:"operation"`
	}
	page := func(query string) []line {
		t.Helper()
		status, ctype, body := get(t, e.url+"/export"+query)
		if status != 200 || ctype != "application/jsonlines" {
			t.Fatalf("/export%s = %d %s %s", query, status, ctype, body)
		}
		if body == "" {
			return nil
		}
		var out []line
		for _, l := range strings.Split(body, "\n") {
			var x line
			if err := json.Unmarshal([]byte(l), &x); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			out = append(out, x)
		}
		return out
	}
	// Sequence form, pages of 3.
	var got []string
	for after := "0"; ; {
		lines := page("?count=3&after=" + after)
		if len(lines) == 0 {
			break
		}
		if len(lines) > 3 {
			t.Fatalf("page of %d lines, count 3", len(lines))
		}
		for _, l := range lines {
			if l.Type != "indexed_op" || l.Nullified != nil {
				t.Fatalf("sequence-form line %+v", l)
			}
			if _, err := plc.ParseOp(l.Operation); err != nil {
				t.Fatalf("exported operation: %v", err)
			}
			got = append(got, l.DID)
			after = fmt.Sprint(l.Seq)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(dids) {
		t.Errorf("sequence export %v, want %v", got, dids)
	}
	// Legacy form, by createdAt.
	got = nil
	for after := ""; ; {
		q := "?count=2"
		if after != "" {
			q += "&after=" + after
		}
		lines := page(q)
		if len(lines) == 0 {
			break
		}
		for _, l := range lines {
			if l.Type != "" || l.Nullified == nil || l.Seq != 0 {
				t.Fatalf("legacy-form line %+v", l)
			}
			got = append(got, l.DID)
			after = l.CreatedAt
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(dids) {
		t.Errorf("legacy export %v, want %v", got, dids)
	}
	if n := len(page("")); n != 5 {
		t.Errorf("default page has %d lines, want MaxExportCount 5", n)
	}
	if n := len(page("?count=1000")); n != 5 {
		t.Errorf("count above the maximum gave %d lines, want 5", n)
	}
	for _, q := range []string{"?count=0", "?count=-1", "?count=ten", "?count=1.5", "?after=yesterday", "?after=-5"} {
		status, _, body := get(t, e.url+"/export"+q)
		if status != 400 {
			t.Errorf("/export%s = %d", q, status)
		}
		message(t, body)
	}
}

// Submissions racing on one DID are decided one after the other: of many
// updates from the same prev by the same key, one wins, the rest are forks
// without higher authority.
func TestConcurrentSubmissions(t *testing.T) {
	e := newEnv(t, directory.NewMemStore())
	ctx := context.Background()
	k := newKey(t, false)
	did, g, err := e.client.CreateAccount(ctx, account("alice.test", k, k), k.priv)
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	var (
		wg       sync.WaitGroup
		accepted atomic.Int32
	)
	for i := range n {
		op := updated(t, g, k, plc.SetHandle(syntax.Handle(fmt.Sprintf("h%d.test", i))))
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := e.client.Submit(ctx, did, op)
			switch {
			case err == nil:
				accepted.Add(1)
			case !errors.Is(err, plc.ErrRejected):
				t.Errorf("submission failed other than by rejection: %v", err)
			}
		}()
	}
	wg.Wait()
	if accepted.Load() != 1 {
		t.Fatalf("%d of %d racing forks accepted, want 1", accepted.Load(), n)
	}
	audit, _ := e.client.AuditLog(ctx, did)
	if len(audit) != 2 {
		t.Fatalf("audit log has %d entries, want 2", len(audit))
	}
}

// failingStore fails or panics on Log.
type failingStore struct {
	directory.Store
	panic bool
}

func (s failingStore) Log(ctx context.Context, did syntax.DID) ([]directory.Record, error) {
	if s.panic {
		panic("store exploded")
	}
	return nil, errors.New("disk on fire at /secret/path")
}

func TestInternalErrorsAreHidden(t *testing.T) {
	for _, panics := range []bool{false, true} {
		e := newEnv(t, failingStore{Store: directory.NewMemStore(), panic: panics})
		status, _, body := get(t, e.url+"/did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/data")
		if status != 500 || message(t, body) != "Internal Server Error" {
			t.Errorf("panic=%t: %d %s", panics, status, body)
		}
	}
	if _, err := directory.New(directory.Options{}); err == nil {
		t.Error("New without a store succeeded")
	}
}
