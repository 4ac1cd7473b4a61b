package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/reservoir-atproto/reservoir/api"
	"github.com/reservoir-atproto/reservoir/host"
	"github.com/reservoir-atproto/reservoir/store"
	"github.com/reservoir-atproto/reservoir/xrpc"
)

// collectionsServer serves the API over an in-memory store holding the
// given repositories (DID → collections with records).
func collectionsServer(t *testing.T, password string, repos map[string][]string) string {
	t.Helper()
	db, err := store.Open(store.Options{InMemory: true, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for did, colls := range repos {
		c := &store.Change{Account: &store.Account{DID: did}}
		for _, coll := range colls {
			c.Collections = append(c.Collections, store.CollectionCount{Collection: coll, Count: 1})
		}
		if _, err := db.Apply(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	h := host.New(host.Options{DB: db})
	auth := &xrpc.Auth{AdminPassword: password, Tokens: h}
	srv := xrpc.NewServer(xrpc.Options{})
	a := api.New(api.Options{DB: db, Host: h, Auth: auth})
	a.Register(srv)
	mux := http.NewServeMux()
	mux.Handle(xrpc.PathPrefix, srv)
	mux.Handle("/admin/", srv.Endpoint("admin", auth.RequireAdmin(a.AdminHandler())))
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts.URL
}

func TestCollectionsSubcommand(t *testing.T) {
	defer func(n int) { collectionsPageLimit = n }(collectionsPageLimit)
	collectionsPageLimit = 2 // several pages
	url := collectionsServer(t, "pw", map[string][]string{
		"did:web:a.test": {"app.bsky.feed.post", "app.bsky.feed.like"},
		"did:web:b.test": {"app.bsky.feed.post", "com.example.longer.name"},
		"did:web:c.test": {"app.bsky.feed.post", "app.bsky.graph.follow"},
	})
	getenv := func(pw string) func(string) string {
		return func(name string) string {
			return map[string]string{"RESERVOIR_URL": url, "RESERVOIR_ADMIN_PASSWORD": pw}[name]
		}
	}
	run := func(pw string, args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := collectionsMain(context.Background(), args, getenv(pw), &out, &errb)
		return out.String(), err
	}
	rows := func(out string) []string {
		var rows []string
		for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
			rows = append(rows, strings.Join(strings.Fields(line), " "))
		}
		return rows
	}
	out, err := run("pw")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"REPOS COLLECTION", "1 app.bsky.feed.like", "3 app.bsky.feed.post", "1 app.bsky.graph.follow", "1 com.example.longer.name"}
	if got := rows(out); !slices.Equal(got, want) {
		t.Fatalf("output:\n%s\nwant rows %q", out, want)
	}
	if !strings.HasPrefix(out, "     REPOS  COLLECTION\n") || !strings.Contains(out, "\n         3  app.bsky.feed.post\n") {
		t.Errorf("counts are not right-aligned:\n%s", out)
	}
	out, err = run("pw", "--prefix", "app.bsky.feed.")
	if err != nil {
		t.Fatal(err)
	}
	if got := rows(out); !slices.Equal(got, want[:3]) {
		t.Fatalf("--prefix app.bsky.feed.:\n%s", out)
	}
	if _, err := run("wrong"); err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "AuthenticationRequired") {
		t.Fatalf("wrong password: %v", err)
	}
	for _, args := range [][]string{{"--server", "ftp://x"}, {"extra"}, {"--prefix", "a b"}} {
		if _, err := run("pw", args...); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
	if _, err := run("pw", "--help"); err != nil {
		t.Fatalf("--help: %v", err)
	}
}
