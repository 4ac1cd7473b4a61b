package api_test

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/store"
)

// event is a decoded firehose frame from the store's log.
type event struct {
	seq  int64
	typ  string // "#account", "#commit", ...
	body map[string]any
}

// eventsAfter reads the store's event log after seq.
func (h *harness) eventsAfter(seq int64) []event {
	h.t.Helper()
	var out []event
	err := h.db.Events(seq, func(e store.CommittedEvent) error {
		d := dagcbor.NewDecoder(e.Frame)
		head, err := d.ReadValue()
		if err != nil {
			return err
		}
		body, err := d.ReadValue()
		if err != nil {
			return err
		}
		t, _ := head.(map[string]any)["t"].(string)
		out = append(out, event{seq: e.Seq, typ: t, body: body.(map[string]any)})
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// accountEvents are the #account events of did after seq, as {active,
// status} pairs ("" for no status).
func (h *harness) accountEvents(did string, seq int64) [][2]any {
	h.t.Helper()
	var out [][2]any
	for _, e := range h.eventsAfter(seq) {
		if e.typ == "#account" && e.body["did"] == did {
			st, _ := e.body["status"].(string)
			out = append(out, [2]any{e.body["active"], st})
		}
	}
	return out
}

func repoRef(did string) map[string]any {
	return map[string]any{"$type": "com.atproto.admin.defs#repoRef", "did": did}
}

func TestUpdateSubjectStatus(t *testing.T) {
	h := newHarness(t)
	alice := h.createAccount("alice.test")
	h.createRecord(alice, "app.bsky.feed.post", "3jzfcijpj2z2a", post("x"))
	const nsid = "com.atproto.admin.updateSubjectStatus"
	subject := func() *response {
		return h.query("com.atproto.admin.getSubjectStatus", q("did", alice.did), asAdmin)
	}
	wantSubject := func(takendown, deactivated bool) {
		t.Helper()
		out := subject().ok("com.atproto.admin.getSubjectStatus")
		want := map[string]any{"subject": repoRef(alice.did), "takedown": map[string]any{"applied": takendown}, "deactivated": map[string]any{"applied": deactivated}}
		if !sameJSON(t, out, want) {
			t.Errorf("getSubjectStatus %v, want %v", out, want)
		}
	}
	wantSubject(false, false)

	// Takedown applied.
	seq := h.db.LastSeq()
	out := h.procedure(nsid, map[string]any{"subject": repoRef(alice.did), "takedown": map[string]any{"applied": true, "ref": "case-1"}}, asAdmin).ok(nsid)
	if !sameJSON(t, out, map[string]any{"subject": repoRef(alice.did), "takedown": map[string]any{"applied": true, "ref": "case-1"}}) {
		t.Errorf("updateSubjectStatus answered %v", out)
	}
	if got := h.accountEvents(alice.did, seq); !reflect.DeepEqual(got, [][2]any{{false, "takendown"}}) {
		t.Errorf("#account events %v, want one {active false, status takendown}", got)
	}
	wantSubject(true, false)
	h.query("com.atproto.sync.getRepo", q("did", alice.did)).fails(http.StatusForbidden, "RepoTakendown")
	// Applying it again changes nothing and emits nothing.
	seq = h.db.LastSeq()
	h.procedure(nsid, map[string]any{"subject": repoRef(alice.did), "takedown": map[string]any{"applied": true}}, asAdmin).ok(nsid)
	if got := h.eventsAfter(seq); len(got) != 0 {
		t.Errorf("a repeated takedown emitted %v", got)
	}

	// Lifted: #account active, and the repository is public again.
	seq = h.db.LastSeq()
	h.procedure(nsid, map[string]any{"subject": repoRef(alice.did), "takedown": map[string]any{"applied": false}}, asAdmin).ok(nsid)
	if got := h.accountEvents(alice.did, seq); !reflect.DeepEqual(got, [][2]any{{true, ""}}) {
		t.Errorf("#account events %v, want one {active true}", got)
	}
	types := map[string]int{}
	for _, e := range h.eventsAfter(seq) {
		types[e.typ]++
	}
	if types["#identity"] != 1 || types["#sync"] != 1 {
		t.Errorf("reactivation emitted %v, want #account, #identity and #sync", types)
	}
	wantSubject(false, false)
	h.query("com.atproto.sync.getRepo", q("did", alice.did)).car()

	// Deactivation through the same procedure.
	seq = h.db.LastSeq()
	out = h.procedure(nsid, map[string]any{"subject": repoRef(alice.did), "deactivated": map[string]any{"applied": true}}, asAdmin).ok(nsid)
	if !sameJSON(t, out, map[string]any{"subject": repoRef(alice.did)}) {
		t.Errorf("updateSubjectStatus (deactivated) answered %v", out)
	}
	if got := h.accountEvents(alice.did, seq); !reflect.DeepEqual(got, [][2]any{{false, "deactivated"}}) {
		t.Errorf("#account events %v, want {active false, status deactivated}", got)
	}
	wantSubject(false, true)
	h.query("com.atproto.sync.getLatestCommit", q("did", alice.did)).fails(http.StatusForbidden, "RepoDeactivated")
	h.procedure(nsid, map[string]any{"subject": repoRef(alice.did), "deactivated": map[string]any{"applied": false}}, asAdmin).ok(nsid)
	wantSubject(false, false)

	// Refusals.
	bob := h.createAccount("bob.test")
	in := map[string]any{"subject": repoRef(alice.did), "takedown": map[string]any{"applied": true}}
	h.procedure(nsid, in).fails(http.StatusUnauthorized, "AuthenticationRequired")
	h.procedure(nsid, in, basic("admin", "wrong")).fails(http.StatusUnauthorized, "AuthenticationRequired")
	h.procedure(nsid, in, alice.cred()).fails(http.StatusForbidden, "Forbidden")
	h.procedure(nsid, in, bob.cred()).fails(http.StatusForbidden, "Forbidden")
	h.procedure(nsid, map[string]any{"subject": map[string]any{"$type": "com.atproto.repo.strongRef", "uri": "at://" + alice.did + "/app.bsky.feed.post/3jzfcijpj2z2a", "cid": recordCID(t, post("x")).String()}, "takedown": map[string]any{"applied": true}}, asAdmin).
		fails(http.StatusBadRequest, "InvalidRequest")
	h.procedure(nsid, map[string]any{"subject": repoRef("not-a-did"), "takedown": map[string]any{"applied": true}}, asAdmin).fails(http.StatusBadRequest, "InvalidRequest")
	h.procedure(nsid, map[string]any{"subject": repoRef(alice.did)}, asAdmin).fails(http.StatusBadRequest, "InvalidRequest")
	h.procedure(nsid, map[string]any{"subject": repoRef("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"), "takedown": map[string]any{"applied": true}}, asAdmin).fails(http.StatusNotFound, "RepoNotFound")
	h.procedure(nsid, `[]`, asAdmin).fails(http.StatusBadRequest, "InvalidRequest")
	wantSubject(false, false)

	h.query("com.atproto.admin.getSubjectStatus", q("did", alice.did)).fails(http.StatusUnauthorized, "AuthenticationRequired")
	h.query("com.atproto.admin.getSubjectStatus", q("did", alice.did), alice.cred()).fails(http.StatusForbidden, "Forbidden")
	h.query("com.atproto.admin.getSubjectStatus", q("did", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"), asAdmin).fails(http.StatusNotFound, "RepoNotFound")
	h.query("com.atproto.admin.getSubjectStatus", nil, asAdmin).fails(http.StatusBadRequest, "InvalidRequest")
	h.query("com.atproto.admin.getSubjectStatus", q("did", "nope"), asAdmin).fails(http.StatusBadRequest, "InvalidRequest")
}

func TestAdminRoutes(t *testing.T) {
	h := newHarness(t)
	alice := h.createAccount("alice.test")
	path := "/admin/accounts/" + alice.did
	for _, tc := range []struct {
		method, path string
		creds        []cred
		status       int
		error        string
	}{
		{"POST", path + "/takedown", nil, 401, "AuthenticationRequired"},
		{"POST", path + "/takedown", []cred{basic("admin", "wrong")}, 401, "AuthenticationRequired"},
		{"POST", path + "/takedown", []cred{alice.cred()}, 403, "Forbidden"},
		{"DELETE", path, []cred{alice.cred()}, 403, "Forbidden"},
		{"POST", path + "/explode", []cred{asAdmin}, 404, "NotFound"},
		{"GET", path + "/takedown", []cred{asAdmin}, 405, "InvalidRequest"},
		{"POST", "/admin/accounts/not-a-did/takedown", []cred{asAdmin}, 400, "InvalidRequest"},
		{"POST", "/admin/accounts/did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/suspend", []cred{asAdmin}, 404, "RepoNotFound"},
		{"DELETE", "/admin/accounts/did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", []cred{asAdmin}, 404, "RepoNotFound"},
		{"POST", "/admin/hosts", []cred{asAdmin}, 404, "NotFound"},
	} {
		h.do(tc.method, tc.path, nil, nil, tc.creds...).fails(tc.status, tc.error)
	}
	prev := ""
	for _, tc := range []struct {
		action string
		active bool
		status string
	}{
		{"suspend", false, "suspended"},
		{"takedown", false, "takendown"},
		{"deactivate", false, "deactivated"},
		{"reactivate", true, ""},
		{"reactivate", true, ""},
	} {
		seq := h.db.LastSeq()
		out := h.adminAction(alice.did, tc.action)
		if out["active"] != tc.active || out["status"] != tc.status {
			t.Errorf("%s: %v", tc.action, out)
		}
		st := h.query("com.atproto.sync.getRepoStatus", q("did", alice.did)).ok("com.atproto.sync.getRepoStatus")
		if st["active"] != tc.active || (tc.status != "" && st["status"] != tc.status) {
			t.Errorf("%s: getRepoStatus %v", tc.action, st)
		}
		var want [][2]any
		if tc.status != prev {
			want = [][2]any{{tc.active, tc.status}}
		}
		if got := h.accountEvents(alice.did, seq); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: #account events %v, want %v", tc.action, got, want)
		}
		prev = tc.status
	}
}

func TestDeleteAccount(t *testing.T) {
	h := newHarness(t)
	alice := h.createAccount("alice.test")
	bob := h.createAccount("bob.test")
	data := []byte("alice's blob")
	h.upload(data, "text/plain", "", alice.cred()).ok("com.atproto.repo.uploadBlob")
	rec := withImage("x", blobRef(blobCID(t, data), "text/plain", len(data)))
	h.createRecord(alice, "app.bsky.feed.post", "3jzfcijpj2z2a", rec)
	h.createRecord(bob, "app.bsky.feed.post", "3jzfcijpj2z2a", post("bob's"))
	seq := h.db.LastSeq()

	r := h.do(http.MethodDelete, "/admin/accounts/"+alice.did, nil, nil, asAdmin)
	if r.status != http.StatusOK || !sameJSON(t, decodeJSON(t, r.body), map[string]any{"did": alice.did, "active": false, "status": "deleted"}) {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	// Every read of it is RepoNotFound, whoever asks.
	for _, g := range gatedReads(alice.did, "alice.test", blobCID(t, data).String(), recordCID(t, rec).String()) {
		h.query(g.nsid, g.params).fails(http.StatusNotFound, "RepoNotFound")
		h.query(g.nsid, g.params, asAdmin).fails(http.StatusNotFound, "RepoNotFound")
	}
	st := h.query("com.atproto.sync.getRepoStatus", q("did", alice.did)).ok("com.atproto.sync.getRepoStatus")
	if !sameJSON(t, st, map[string]any{"did": alice.did, "active": false, "status": "deleted"}) {
		t.Errorf("getRepoStatus of a deleted account: %v", st)
	}
	lr := h.query("com.atproto.sync.listRepos", nil).ok("com.atproto.sync.listRepos")
	if repos := lr["repos"].([]any); len(repos) != 1 || repos[0].(map[string]any)["did"] != bob.did {
		t.Errorf("listRepos after the delete: %v", repos)
	}
	lc := h.query("com.atproto.sync.listReposByCollection", q("collection", "app.bsky.feed.post")).ok("com.atproto.sync.listReposByCollection")
	if repos := lc["repos"].([]any); len(repos) != 1 || repos[0].(map[string]any)["did"] != bob.did {
		t.Errorf("listReposByCollection after the delete: %v", repos)
	}
	h.query("com.atproto.admin.getSubjectStatus", q("did", alice.did), asAdmin).fails(http.StatusNotFound, "RepoNotFound")
	// Its events are purged; one #account {deleted} remains.
	if got := h.accountEvents(alice.did, 0); !reflect.DeepEqual(got, [][2]any{{false, "deleted"}}) {
		t.Errorf("#account events of the deleted account %v", got)
	}
	for _, e := range h.eventsAfter(0) {
		if e.body["did"] == alice.did || e.body["repo"] == alice.did {
			if e.typ != "#account" || e.seq <= seq {
				t.Errorf("event %s %d of the deleted account left in the log", e.typ, e.seq)
			}
		}
	}
	// Nothing more can be done to it.
	h.do(http.MethodDelete, "/admin/accounts/"+alice.did, nil, nil, asAdmin).fails(http.StatusNotFound, "RepoNotFound")
	h.do(http.MethodPost, "/admin/accounts/"+alice.did+"/reactivate", nil, nil, asAdmin).fails(http.StatusNotFound, "RepoNotFound")
	h.procedure("com.atproto.admin.updateSubjectStatus", map[string]any{"subject": repoRef(alice.did), "takedown": map[string]any{"applied": false}}, asAdmin).
		fails(http.StatusNotFound, "RepoNotFound")
	h.procedure("com.atproto.repo.createRecord", map[string]any{"repo": alice.did, "collection": "com.example.thing", "record": map[string]any{"$type": "com.example.thing"}}, asAdmin).
		fails(http.StatusNotFound, "RepoNotFound")
	h.upload(data, "text/plain", alice.did, asAdmin).fails(http.StatusNotFound, "RepoNotFound")

	// The handle is free again: a new account takes it.
	again := h.createAccount("alice.test")
	if again.did == alice.did {
		t.Fatal("the new account got the deleted DID")
	}
	d := h.query("com.atproto.repo.describeRepo", q("repo", "alice.test")).ok("com.atproto.repo.describeRepo")
	if d["did"] != again.did {
		t.Errorf("alice.test resolves to %v, want the new %s", d["did"], again.did)
	}
	// bob is untouched.
	h.query("com.atproto.repo.getRecord", q("repo", bob.did, "collection", "app.bsky.feed.post", "rkey", "3jzfcijpj2z2a")).ok("com.atproto.repo.getRecord")
}
