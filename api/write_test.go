package api_test

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
)

// getRecordValue reads a record with com.atproto.repo.getRecord.
func (h *harness) getRecordValue(did, collection, rkey string) (cid.Cid, map[string]any) {
	h.t.Helper()
	out := h.query("com.atproto.repo.getRecord", q("repo", did, "collection", collection, "rkey", rkey)).ok("com.atproto.repo.getRecord")
	if want := "at://" + did + "/" + collection + "/" + rkey; out["uri"] != want {
		h.t.Errorf("getRecord uri %v, want %s", out["uri"], want)
	}
	v, _ := out["value"].(map[string]any)
	return mustCID(h.t, str(h.t, out, "cid")), v
}

// sameJSON compares a decoded JSON value with a Go value by their JSON.
func sameJSON(t *testing.T, got map[string]any, want any) bool {
	t.Helper()
	return reflect.DeepEqual(got, decodeJSON(t, mustJSON(t, want)))
}

func TestCreateRecord(t *testing.T) {
	h := newHarness(t)
	alice := h.createAccount("alice.test")
	head0, rev0 := h.latest(alice.did)

	// Automatic rkey: a TID.
	rec := post("hello world")
	out := h.createRecord(alice, "app.bsky.feed.post", "", rec)
	uri, err := syntax.ParseATURI(str(t, out, "uri"))
	if err != nil {
		t.Fatal(err)
	}
	if uri.Authority().String() != alice.did || uri.Collection() != "app.bsky.feed.post" {
		t.Errorf("uri %s", uri)
	}
	if _, err := syntax.ParseTID(uri.RecordKey().String()); err != nil {
		t.Errorf("automatic rkey %q is not a TID: %v", uri.RecordKey(), err)
	}
	if got, want := str(t, out, "cid"), recordCID(t, rec).String(); got != want {
		t.Errorf("cid %s, want %s", got, want)
	}
	if out["validationStatus"] != "unknown" {
		t.Errorf("validationStatus %v, want unknown (no lexicon validation)", out["validationStatus"])
	}
	head1, rev1 := h.latest(alice.did)
	if str(t, out, "commit", "cid") != head1.String() || str(t, out, "commit", "rev") != rev1 {
		t.Errorf("commit %v, getLatestCommit %s %s", out["commit"], head1, rev1)
	}
	if head1 == head0 || rev1 <= rev0 {
		t.Errorf("no new commit: %s %s → %s %s", head0, rev0, head1, rev1)
	}
	c, v := h.getRecordValue(alice.did, "app.bsky.feed.post", uri.RecordKey().String())
	if c != recordCID(t, rec) || !sameJSON(t, v, rec) {
		t.Errorf("stored record %s %v, want %v", c, v, rec)
	}

	// Explicit rkey; the repo named by handle; admin credentials.
	profile := map[string]any{"$type": "app.bsky.actor.profile", "displayName": "Alice"}
	out = h.procedure("com.atproto.repo.createRecord", map[string]any{"repo": "alice.test", "collection": "app.bsky.actor.profile", "rkey": "self", "record": profile}, asAdmin).
		ok("com.atproto.repo.createRecord")
	if want := "at://" + alice.did + "/app.bsky.actor.profile/self"; out["uri"] != want {
		t.Errorf("uri %v, want %s", out["uri"], want)
	}
	// swapCommit: the current head passes, an older one does not.
	head2, _ := h.latest(alice.did)
	in := map[string]any{"repo": alice.did, "collection": "app.bsky.feed.post", "rkey": "3jzfcijpj2z2a", "record": post("swap"), "swapCommit": head1.String()}
	h.procedure("com.atproto.repo.createRecord", in, alice.cred()).fails(http.StatusBadRequest, "InvalidSwap")
	in["swapCommit"] = head2.String()
	h.procedure("com.atproto.repo.createRecord", in, alice.cred()).ok("com.atproto.repo.createRecord")
	// The path is now taken.
	in["swapCommit"] = nil
	in["record"] = post("again")
	h.procedure("com.atproto.repo.createRecord", in, alice.cred()).fails(http.StatusBadRequest, "InvalidRequest")

	// Three records, each once.
	lr := h.query("com.atproto.sync.listReposByCollection", q("collection", "app.bsky.actor.profile")).ok("com.atproto.sync.listReposByCollection")
	if repos, _ := lr["repos"].([]any); len(repos) != 1 || repos[0].(map[string]any)["did"] != alice.did {
		t.Errorf("listReposByCollection %v", lr)
	}
	d := h.query("com.atproto.repo.describeRepo", q("repo", alice.did)).ok("com.atproto.repo.describeRepo")
	if !reflect.DeepEqual(d["collections"], []any{"app.bsky.actor.profile", "app.bsky.feed.post"}) {
		t.Errorf("collections %v", d["collections"])
	}
}

func TestCreateRecordRefused(t *testing.T) {
	h := newHarness(t)
	alice := h.createAccount("alice.test")
	bob := h.createAccount("bob.test")
	head, _ := h.latest(alice.did)
	body := func(edit func(m map[string]any)) map[string]any {
		m := map[string]any{"repo": alice.did, "collection": "app.bsky.feed.post", "record": post("x")}
		edit(m)
		return m
	}
	for _, tc := range []struct {
		name   string
		in     any
		creds  []cred
		status int
		error  string
	}{
		{"no auth", body(func(map[string]any) {}), nil, 401, "AuthenticationRequired"},
		{"another account's token", body(func(map[string]any) {}), []cred{bob.cred()}, 403, "Forbidden"},
		{"another account's handle", body(func(m map[string]any) { m["repo"] = "bob.test" }), []cred{alice.cred()}, 403, "Forbidden"},
		{"unknown repo, as admin", body(func(m map[string]any) { m["repo"] = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa" }), []cred{asAdmin}, 404, "RepoNotFound"},
		{"unknown handle", body(func(m map[string]any) { m["repo"] = "nobody.test" }), []cred{asAdmin}, 404, "RepoNotFound"},
		{"bad repo", body(func(m map[string]any) { m["repo"] = "not a repo" }), []cred{alice.cred()}, 400, "InvalidRequest"},
		{"$type mismatch", body(func(m map[string]any) { m["record"] = map[string]any{"$type": "app.bsky.feed.like", "x": "y"} }), []cred{alice.cred()}, 400, "InvalidRequest"},
		{"no $type", body(func(m map[string]any) { m["record"] = map[string]any{"text": "x"} }), []cred{alice.cred()}, 400, "InvalidRequest"},
		{"bad collection", body(func(m map[string]any) { m["collection"] = "not-an-nsid" }), []cred{alice.cred()}, 400, "InvalidRequest"},
		{"bad rkey", body(func(m map[string]any) { m["rkey"] = "a/b" }), []cred{alice.cred()}, 400, "InvalidRequest"},
		{"dot rkey", body(func(m map[string]any) { m["rkey"] = ".." }), []cred{alice.cred()}, 400, "InvalidRequest"},
		{"float in record", `{"repo":"` + alice.did + `","collection":"app.bsky.feed.post","record":{"$type":"app.bsky.feed.post","text":"x","score":1.5}}`, []cred{alice.cred()}, 400, "InvalidRequest"},
		{"no record", body(func(m map[string]any) { delete(m, "record") }), []cred{alice.cred()}, 400, "InvalidRequest"},
		{"record not an object", body(func(m map[string]any) { m["record"] = "text" }), []cred{alice.cred()}, 400, "InvalidRequest"},
		{"bad swapCommit", body(func(m map[string]any) { m["swapCommit"] = "nope" }), []cred{alice.cred()}, 400, "InvalidRequest"},
		{"not JSON", `{"repo":`, []cred{alice.cred()}, 400, "InvalidRequest"},
		{"bad $link", body(func(m map[string]any) {
			m["record"] = map[string]any{"$type": "app.bsky.feed.post", "l": map[string]any{"$link": "nope"}}
		}), []cred{alice.cred()}, 400, "InvalidRequest"},
		{"malformed blob", body(func(m map[string]any) {
			m["record"] = withImage("x", map[string]any{"$type": "blob", "mimeType": "image/png"})
		}), []cred{alice.cred()}, 400, "InvalidRequest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.with(t).procedure("com.atproto.repo.createRecord", tc.in, tc.creds...).fails(tc.status, tc.error)
		})
	}
	r := h.do(http.MethodPost, "/xrpc/com.atproto.repo.createRecord", strings.NewReader(string(mustJSON(t, body(func(map[string]any) {})))), http.Header{"Content-Type": {"text/plain"}}, alice.cred())
	r.fails(http.StatusBadRequest, "InvalidRequest")
	// A body over the 4 MiB limit of a record write: 413 before it is read.
	big := map[string]any{"repo": alice.did, "collection": "app.bsky.feed.post", "record": map[string]any{"$type": "app.bsky.feed.post", "text": strings.Repeat("x", 5<<20)}}
	h.procedure("com.atproto.repo.createRecord", big, alice.cred()).fails(http.StatusRequestEntityTooLarge, "PayloadTooLarge")
	// Under it but over the 1 MB of a record block: 400.
	big["record"] = map[string]any{"$type": "app.bsky.feed.post", "text": strings.Repeat("x", 1<<20)}
	h.procedure("com.atproto.repo.createRecord", big, alice.cred()).fails(http.StatusBadRequest, "InvalidRequest")
	if now, _ := h.latest(alice.did); now != head {
		t.Errorf("a refused write changed the head: %s → %s", head, now)
	}
}

func TestPutRecord(t *testing.T) {
	h := newHarness(t)
	alice := h.createAccount("alice.test")
	put := func(rec any, extra map[string]any) *response {
		in := map[string]any{"repo": alice.did, "collection": "app.bsky.actor.profile", "rkey": "self", "record": rec}
		for k, v := range extra {
			in[k] = v
		}
		return h.procedure("com.atproto.repo.putRecord", in, alice.cred())
	}
	v1 := map[string]any{"$type": "app.bsky.actor.profile", "displayName": "Alice"}
	v2 := map[string]any{"$type": "app.bsky.actor.profile", "displayName": "Alice B."}

	// swapRecord null: the record must not exist yet; it does not, so this
	// creates it.
	out := put(v1, map[string]any{"swapRecord": nil}).ok("com.atproto.repo.putRecord")
	if out["cid"] != recordCID(t, v1).String() || out["uri"] != "at://"+alice.did+"/app.bsky.actor.profile/self" {
		t.Errorf("put (create) %v", out)
	}
	head1, _ := h.latest(alice.did)
	if str(t, out, "commit", "cid") != head1.String() {
		t.Errorf("commit %v, head %s", out["commit"], head1)
	}
	// Now it exists: swapRecord null fails, as does a wrong CID.
	put(v2, map[string]any{"swapRecord": nil}).fails(http.StatusBadRequest, "InvalidSwap")
	put(v2, map[string]any{"swapRecord": recordCID(t, v2).String()}).fails(http.StatusBadRequest, "InvalidSwap")
	put(v2, map[string]any{"swapRecord": 5}).fails(http.StatusBadRequest, "InvalidRequest")
	put(v2, map[string]any{"swapRecord": "not a cid"}).fails(http.StatusBadRequest, "InvalidRequest")
	put(v2, map[string]any{"swapCommit": recordCID(t, v1).String()}).fails(http.StatusBadRequest, "InvalidSwap")

	// Update with the right swapRecord.
	out = put(v2, map[string]any{"swapRecord": recordCID(t, v1).String(), "swapCommit": head1.String()}).ok("com.atproto.repo.putRecord")
	head2, _ := h.latest(alice.did)
	if head2 == head1 || str(t, out, "commit", "cid") != head2.String() {
		t.Errorf("update: commit %v, head %s → %s", out["commit"], head1, head2)
	}
	if c, v := h.getRecordValue(alice.did, "app.bsky.actor.profile", "self"); c != recordCID(t, v2) || !sameJSON(t, v, v2) {
		t.Errorf("after the update: %s %v", c, v)
	}

	// An identical put changes nothing: no commit.
	out = put(v2, nil).ok("com.atproto.repo.putRecord")
	if _, ok := out["commit"]; ok {
		t.Errorf("identical put reports a commit: %v", out)
	}
	if out["cid"] != recordCID(t, v2).String() {
		t.Errorf("identical put cid %v", out["cid"])
	}
	if head3, _ := h.latest(alice.did); head3 != head2 {
		t.Errorf("identical put made a commit: %s → %s", head2, head3)
	}

	// Refusals.
	h.procedure("com.atproto.repo.putRecord", map[string]any{"repo": alice.did, "collection": "app.bsky.actor.profile", "record": v1}, alice.cred()).
		fails(http.StatusBadRequest, "InvalidRequest") // rkey is required
	put(map[string]any{"$type": "app.bsky.feed.post", "text": "x"}, nil).fails(http.StatusBadRequest, "InvalidRequest")
	h.procedure("com.atproto.repo.putRecord", map[string]any{"repo": alice.did, "collection": "app.bsky.actor.profile", "rkey": "self", "record": v1}).
		fails(http.StatusUnauthorized, "AuthenticationRequired")
}

func TestDeleteRecord(t *testing.T) {
	h := newHarness(t)
	alice := h.createAccount("alice.test")
	rec := post("to delete")
	h.createRecord(alice, "app.bsky.feed.post", "3jzfcijpj2z2a", rec)
	h.createRecord(alice, "app.bsky.feed.post", "3jzfcijpj2z2b", post("stays"))
	head1, _ := h.latest(alice.did)
	del := func(rkey string, extra map[string]any, creds ...cred) *response {
		in := map[string]any{"repo": alice.did, "collection": "app.bsky.feed.post", "rkey": rkey}
		for k, v := range extra {
			in[k] = v
		}
		return h.procedure("com.atproto.repo.deleteRecord", in, creds...)
	}
	del("3jzfcijpj2z2a", nil).fails(http.StatusUnauthorized, "AuthenticationRequired")
	bob := h.createAccount("bob.test")
	del("3jzfcijpj2z2a", nil, bob.cred()).fails(http.StatusForbidden, "Forbidden")
	del("3jzfcijpj2z2a", map[string]any{"swapCommit": recordCID(t, rec).String()}, alice.cred()).fails(http.StatusBadRequest, "InvalidSwap")
	del("3jzfcijpj2z2a", map[string]any{"swapRecord": recordCID(t, post("other")).String()}, alice.cred()).fails(http.StatusBadRequest, "InvalidSwap")
	del("a/b", nil, alice.cred()).fails(http.StatusBadRequest, "InvalidRequest")

	out := del("3jzfcijpj2z2a", map[string]any{"swapCommit": head1.String(), "swapRecord": recordCID(t, rec).String()}, alice.cred()).ok("com.atproto.repo.deleteRecord")
	head2, rev2 := h.latest(alice.did)
	if head2 == head1 || str(t, out, "commit", "cid") != head2.String() || str(t, out, "commit", "rev") != rev2 {
		t.Errorf("delete: %v, head %s → %s", out, head1, head2)
	}
	h.query("com.atproto.repo.getRecord", q("repo", alice.did, "collection", "app.bsky.feed.post", "rkey", "3jzfcijpj2z2a")).fails(http.StatusNotFound, "RecordNotFound")

	// Deleting what is not there: 200, nothing to report, no commit.
	out = del("3jzfcijpj2z2a", nil, asAdmin).ok("com.atproto.repo.deleteRecord")
	if len(out) != 0 {
		t.Errorf("no-op delete answered %v, want {}", out)
	}
	if head3, _ := h.latest(alice.did); head3 != head2 {
		t.Errorf("no-op delete made a commit")
	}
	verifyRepoCAR(t, h.query("com.atproto.sync.getRepo", q("did", alice.did)).car(), alice.did, h.signingKey(alice.did), head2,
		model{"app.bsky.feed.post/3jzfcijpj2z2b": recordCID(t, post("stays"))})
}

func TestApplyWrites(t *testing.T) {
	h := newHarness(t)
	alice := h.createAccount("alice.test")
	old := post("old")
	gone := post("gone")
	h.createRecord(alice, "app.bsky.feed.post", "3jzfcijpj2z2a", old)
	h.createRecord(alice, "app.bsky.feed.post", "3jzfcijpj2z2b", gone)

	created := post("created")
	named := map[string]any{"$type": "app.bsky.feed.like", "subject": map[string]any{"uri": "at://did:plc:x/app.bsky.feed.post/1", "cid": recordCID(t, old).String()}}
	updated := post("updated")
	in := map[string]any{
		"repo": "alice.test",
		"writes": []any{
			map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "value": created},
			map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.like", "rkey": "3jzfcijpj2z2c", "value": named},
			map[string]any{"$type": "com.atproto.repo.applyWrites#update", "collection": "app.bsky.feed.post", "rkey": "3jzfcijpj2z2a", "value": updated},
			map[string]any{"$type": "com.atproto.repo.applyWrites#delete", "collection": "app.bsky.feed.post", "rkey": "3jzfcijpj2z2b"},
		},
	}
	out := h.procedure("com.atproto.repo.applyWrites", in, alice.cred()).ok("com.atproto.repo.applyWrites")
	head, rev := h.latest(alice.did)
	if str(t, out, "commit", "cid") != head.String() || str(t, out, "commit", "rev") != rev {
		t.Errorf("commit %v, head %s %s", out["commit"], head, rev)
	}
	results, _ := out["results"].([]any)
	if len(results) != 4 {
		t.Fatalf("results %v", out["results"])
	}
	r0 := results[0].(map[string]any)
	createdURI, err := syntax.ParseATURI(r0["uri"].(string))
	if err != nil || r0["$type"] != "com.atproto.repo.applyWrites#createResult" || r0["cid"] != recordCID(t, created).String() {
		t.Errorf("result 0 %v (%v)", r0, err)
	}
	want := []map[string]any{
		r0,
		{"$type": "com.atproto.repo.applyWrites#createResult", "uri": "at://" + alice.did + "/app.bsky.feed.like/3jzfcijpj2z2c", "cid": recordCID(t, named).String(), "validationStatus": "unknown"},
		{"$type": "com.atproto.repo.applyWrites#updateResult", "uri": "at://" + alice.did + "/app.bsky.feed.post/3jzfcijpj2z2a", "cid": recordCID(t, updated).String(), "validationStatus": "unknown"},
		{"$type": "com.atproto.repo.applyWrites#deleteResult"},
	}
	for i := range want {
		if !reflect.DeepEqual(results[i], want[i]) {
			t.Errorf("result %d %v, want %v", i, results[i], want[i])
		}
	}
	verifyRepoCAR(t, h.query("com.atproto.sync.getRepo", q("did", alice.did)).car(), alice.did, h.signingKey(alice.did), head, model{
		"app.bsky.feed.post/" + createdURI.RecordKey().String(): recordCID(t, created),
		"app.bsky.feed.like/3jzfcijpj2z2c":                      recordCID(t, named),
		"app.bsky.feed.post/3jzfcijpj2z2a":                      recordCID(t, updated),
	})

	// Refusals, none of which commits.
	write := func(i int) map[string]any {
		return map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "rkey": fmt.Sprintf("k%d", i), "value": post("x")}
	}
	many := make([]any, 201)
	for i := range many {
		many[i] = write(i)
	}
	bob := h.createAccount("bob.test")
	for _, tc := range []struct {
		name   string
		in     map[string]any
		creds  []cred
		status int
		error  string
	}{
		{"more than 200 writes", map[string]any{"repo": alice.did, "writes": many}, []cred{alice.cred()}, 400, "InvalidRequest"},
		{"unknown write type", map[string]any{"repo": alice.did, "writes": []any{map[string]any{"$type": "com.atproto.repo.applyWrites#upsert", "collection": "app.bsky.feed.post", "rkey": "a", "value": post("x")}}}, []cred{alice.cred()}, 400, "InvalidRequest"},
		{"create of an existing path", map[string]any{"repo": alice.did, "writes": []any{write(1), map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "rkey": "3jzfcijpj2z2a", "value": post("x")}}}, []cred{alice.cred()}, 400, "InvalidRequest"},
		{"delete without rkey", map[string]any{"repo": alice.did, "writes": []any{map[string]any{"$type": "com.atproto.repo.applyWrites#delete", "collection": "app.bsky.feed.post"}}}, []cred{alice.cred()}, 400, "InvalidRequest"},
		{"value of another collection", map[string]any{"repo": alice.did, "writes": []any{map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.like", "value": post("x")}}}, []cred{alice.cred()}, 400, "InvalidRequest"},
		{"same path twice", map[string]any{"repo": alice.did, "writes": []any{write(1), write(1)}}, []cred{alice.cred()}, 400, "InvalidRequest"},
		{"swapCommit mismatch", map[string]any{"repo": alice.did, "writes": []any{write(1)}, "swapCommit": recordCID(t, old).String()}, []cred{alice.cred()}, 400, "InvalidSwap"},
		{"another account", map[string]any{"repo": alice.did, "writes": []any{write(1)}}, []cred{bob.cred()}, 403, "Forbidden"},
		{"no auth", map[string]any{"repo": alice.did, "writes": []any{write(1)}}, nil, 401, "AuthenticationRequired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.with(t).procedure("com.atproto.repo.applyWrites", tc.in, tc.creds...).fails(tc.status, tc.error)
		})
	}
	if now, _ := h.latest(alice.did); now != head {
		t.Errorf("a refused applyWrites changed the head")
	}

	// Exactly 200 writes are one commit; admin credentials, swapCommit.
	out = h.procedure("com.atproto.repo.applyWrites", map[string]any{"repo": alice.did, "writes": many[:200], "swapCommit": head.String()}, asAdmin).ok("com.atproto.repo.applyWrites")
	if results, _ := out["results"].([]any); len(results) != 200 {
		t.Errorf("%d results for 200 writes", len(results))
	}
	lr := h.query("com.atproto.repo.listRecords", q("repo", alice.did, "collection", "app.bsky.feed.post", "limit", "100")).ok("com.atproto.repo.listRecords")
	if recs, _ := lr["records"].([]any); len(recs) != 100 || lr["cursor"] == nil {
		t.Errorf("listRecords after 200 writes: %d records, cursor %v", len(recs), lr["cursor"])
	}
}
