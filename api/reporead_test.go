package api_test

import (
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

func TestRepoGetRecord(t *testing.T) {
	h := newHarness(t)
	alice := h.createAccount("alice.test")
	rec := post("hello")
	rec["tags"] = []any{"a", "b"}
	rec["n"] = 42
	rec["data"] = map[string]any{"$bytes": "AQIDBA"}
	rec["ref"] = map[string]any{"$link": recordCID(t, post("linked")).String()}
	rec["nested"] = map[string]any{"null": nil, "yes": true, "deep": []any{map[string]any{"k": -7}}}
	h.createRecord(alice, "app.bsky.feed.post", "3jzfcijpj2z2a", rec)
	want := recordCID(t, rec)

	for _, repo := range []string{alice.did, "alice.test", "ALICE.TEST"} {
		out := h.query("com.atproto.repo.getRecord", q("repo", repo, "collection", "app.bsky.feed.post", "rkey", "3jzfcijpj2z2a")).ok("com.atproto.repo.getRecord")
		if out["uri"] != "at://"+alice.did+"/app.bsky.feed.post/3jzfcijpj2z2a" || out["cid"] != want.String() {
			t.Errorf("repo %s: %v", repo, out)
		}
		if !sameJSON(t, out["value"].(map[string]any), rec) {
			t.Errorf("repo %s: value %v, want %v", repo, out["value"], rec)
		}
	}
	// The cid parameter: the current version is found, another is not.
	h.query("com.atproto.repo.getRecord", q("repo", alice.did, "collection", "app.bsky.feed.post", "rkey", "3jzfcijpj2z2a", "cid", want.String())).ok("com.atproto.repo.getRecord")
	h.query("com.atproto.repo.getRecord", q("repo", alice.did, "collection", "app.bsky.feed.post", "rkey", "3jzfcijpj2z2a", "cid", recordCID(t, post("other")).String())).
		fails(http.StatusNotFound, "RecordNotFound")
	h.query("com.atproto.repo.getRecord", q("repo", alice.did, "collection", "app.bsky.feed.post", "rkey", "3jzfcijpj2z2b")).fails(http.StatusNotFound, "RecordNotFound")
	h.query("com.atproto.repo.getRecord", q("repo", alice.did, "collection", "app.bsky.feed.like", "rkey", "3jzfcijpj2z2a")).fails(http.StatusNotFound, "RecordNotFound")
	h.query("com.atproto.repo.getRecord", q("repo", "nobody.test", "collection", "app.bsky.feed.post", "rkey", "3jzfcijpj2z2a")).fails(http.StatusNotFound, "RepoNotFound")
	h.query("com.atproto.repo.getRecord", q("repo", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "collection", "app.bsky.feed.post", "rkey", "3jzfcijpj2z2a")).fails(http.StatusNotFound, "RepoNotFound")
}

func TestListRecords(t *testing.T) {
	h := newHarness(t)
	alice := h.createAccount("alice.test")
	var rkeys []string // ascending
	for i := range 12 {
		rkey := syntax.NewTIDFromInteger(uint64(1_700_000_000_000_000+i*1000) << 10).String()
		rkeys = append(rkeys, rkey)
	}
	// Written out of order; listed by rkey.
	for _, i := range []int{5, 0, 11, 3, 8, 1, 10, 2, 7, 4, 9, 6} {
		h.createRecord(alice, "app.bsky.feed.post", rkeys[i], post(strconv.Itoa(i)))
	}
	h.createRecord(alice, "app.bsky.feed.like", rkeys[0], map[string]any{"$type": "app.bsky.feed.like", "x": 1})
	newestFirst := slices.Clone(rkeys)
	slices.Reverse(newestFirst)

	list := func(limit int, reverse string) []string {
		t.Helper()
		var got []string
		cursor := ""
		for page := 0; ; page++ {
			params := q("repo", alice.did, "collection", "app.bsky.feed.post", "limit", strconv.Itoa(limit))
			if reverse != "" {
				params = append(params, "reverse", reverse)
			}
			if cursor != "" {
				params = append(params, "cursor", cursor)
			}
			out := h.query("com.atproto.repo.listRecords", params).ok("com.atproto.repo.listRecords")
			recs, _ := out["records"].([]any)
			if len(recs) > limit {
				t.Fatalf("page of %d with limit %d", len(recs), limit)
			}
			for _, r := range recs {
				m := r.(map[string]any)
				uri, err := syntax.ParseATURI(m["uri"].(string))
				if err != nil {
					t.Fatal(err)
				}
				rkey := uri.RecordKey().String()
				i := slices.Index(rkeys, rkey)
				if i < 0 || m["cid"] != recordCID(t, post(strconv.Itoa(i))).String() || !sameJSON(t, m["value"].(map[string]any), post(strconv.Itoa(i))) {
					t.Errorf("record %v", m)
				}
				got = append(got, rkey)
			}
			next, _ := out["cursor"].(string)
			if next == "" {
				return got
			}
			if page > 20 {
				t.Fatal("listRecords does not end")
			}
			cursor = next
		}
	}
	for _, limit := range []int{1, 5, 12, 100} {
		if got := list(limit, ""); !slices.Equal(got, newestFirst) {
			t.Errorf("limit %d: %v, want newest first %v", limit, got, newestFirst)
		}
		if got := list(limit, "false"); !slices.Equal(got, newestFirst) {
			t.Errorf("limit %d, reverse=false: %v", limit, got)
		}
		if got := list(limit, "true"); !slices.Equal(got, rkeys) {
			t.Errorf("limit %d, reverse=true: %v, want oldest first %v", limit, got, rkeys)
		}
	}
	// Default limit 50; an empty collection.
	out := h.query("com.atproto.repo.listRecords", q("repo", "alice.test", "collection", "com.example.none")).ok("com.atproto.repo.listRecords")
	if recs := out["records"].([]any); len(recs) != 0 || out["cursor"] != nil {
		t.Errorf("empty collection: %v", out)
	}
	for _, bad := range [][]string{
		q("repo", alice.did, "collection", "app.bsky.feed.post", "limit", "0"),
		q("repo", alice.did, "collection", "app.bsky.feed.post", "limit", "101"),
		q("repo", alice.did, "collection", "app.bsky.feed.post", "reverse", "yes"),
		q("repo", alice.did, "collection", "not an nsid"),
		q("repo", alice.did),
		q("collection", "app.bsky.feed.post"),
	} {
		h.query("com.atproto.repo.listRecords", bad).fails(http.StatusBadRequest, "InvalidRequest")
	}
}

func TestDescribeRepo(t *testing.T) {
	h := newHarness(t)
	alice := h.createAccount("alice.test")
	key := h.signingKey(alice.did)
	for _, coll := range []string{"app.bsky.feed.post", "app.bsky.actor.profile", "com.example.thing", "app.bsky.feed.post"} {
		h.createRecord(alice, coll, "", map[string]any{"$type": coll})
	}
	for _, repo := range []string{alice.did, "alice.test"} {
		out := h.query("com.atproto.repo.describeRepo", q("repo", repo)).ok("com.atproto.repo.describeRepo")
		if out["did"] != alice.did || out["handle"] != "alice.test" || out["handleIsCorrect"] != true {
			t.Errorf("%s: %v", repo, out)
		}
		if !reflect.DeepEqual(out["collections"], []any{"app.bsky.actor.profile", "app.bsky.feed.post", "com.example.thing"}) {
			t.Errorf("%s: collections %v", repo, out["collections"])
		}
		doc := out["didDoc"].(map[string]any)
		vm := doc["verificationMethod"].([]any)[0].(map[string]any)
		svc := doc["service"].([]any)[0].(map[string]any)
		if doc["id"] != alice.did || vm["publicKeyMultibase"] != key.Multibase() || svc["serviceEndpoint"] != h.url || svc["id"] != "#atproto_pds" {
			t.Errorf("%s: didDoc %v", repo, doc)
		}
	}
	// A new account has no collections: an empty list, not null.
	bob := h.createAccount("bob.test")
	out := h.query("com.atproto.repo.describeRepo", q("repo", bob.did)).ok("com.atproto.repo.describeRepo")
	if cs, ok := out["collections"].([]any); !ok || len(cs) != 0 {
		t.Errorf("collections of an empty repository: %v", out["collections"])
	}
	h.query("com.atproto.repo.describeRepo", q("repo", "nobody.test")).fails(http.StatusNotFound, "RepoNotFound")
	h.query("com.atproto.repo.describeRepo", q("repo", "not a repo")).fails(http.StatusBadRequest, "InvalidRequest")
	h.query("com.atproto.repo.describeRepo", nil).fails(http.StatusBadRequest, "InvalidRequest")
}
