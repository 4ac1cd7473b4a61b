package api_test

import (
	"bytes"
	"net/http"
	"testing"
)

// gatedRead is one read of a repository's content, behind the
// availability gate.
type gatedRead struct {
	nsid   string
	params []string
	kind   string // "json", "car" or "blob"
}

// gatedReads are every read of alice's repository the gate applies to.
func gatedReads(did, handle, blob, record string) []gatedRead {
	return []gatedRead{
		{"com.atproto.sync.getBlob", q("did", did, "cid", blob), "blob"},
		{"com.atproto.sync.getBlocks", q("did", did, "cids", record), "car"},
		{"com.atproto.sync.getCheckout", q("did", did), "car"},
		{"com.atproto.sync.getHead", q("did", did), "json"},
		{"com.atproto.sync.getLatestCommit", q("did", did), "json"},
		{"com.atproto.sync.getRecord", q("did", did, "collection", "app.bsky.feed.post", "rkey", "3jzfcijpj2z2a"), "car"},
		{"com.atproto.sync.getRepo", q("did", did), "car"},
		{"com.atproto.sync.getRepo", q("did", did, "since", "2222222222222"), "car"},
		{"com.atproto.sync.listBlobs", q("did", did), "json"},
		{"com.atproto.repo.getRecord", q("repo", did, "collection", "app.bsky.feed.post", "rkey", "3jzfcijpj2z2a"), "json"},
		{"com.atproto.repo.getRecord", q("repo", handle, "collection", "app.bsky.feed.post", "rkey", "3jzfcijpj2z2a"), "json"},
		{"com.atproto.repo.listRecords", q("repo", did, "collection", "app.bsky.feed.post"), "json"},
		{"com.atproto.repo.describeRepo", q("repo", did), "json"},
		{"com.atproto.repo.describeRepo", q("repo", handle), "json"},
	}
}

// succeeds asserts that a gated read answers.
func (g gatedRead) succeeds(t *testing.T, h *harness, blob []byte, creds ...cred) {
	t.Helper()
	r := h.query(g.nsid, g.params, creds...)
	switch g.kind {
	case "json":
		r.ok(g.nsid)
	case "car":
		r.car()
	case "blob":
		if r.status != http.StatusOK || !bytes.Equal(r.body, blob) {
			t.Errorf("%s: status %d, %d bytes", r.what, r.status, len(r.body))
		}
	}
}

func TestAvailabilityGate(t *testing.T) {
	h := newHarness(t)
	alice := h.createAccount("alice.test")
	bob := h.createAccount("bob.test")
	data := []byte("a blob of alice's")
	bc := blobCID(t, data)
	h.upload(data, "text/plain", "", alice.cred()).ok("com.atproto.repo.uploadBlob")
	rec := withImage("gated", blobRef(bc, "text/plain", len(data)))
	h.createRecord(alice, "app.bsky.feed.post", "3jzfcijpj2z2a", rec)
	reads := gatedReads(alice.did, alice.handle, bc.String(), recordCID(t, rec).String())
	_, rev := h.latest(alice.did)

	for _, g := range reads {
		g.succeeds(t, h, data)
	}
	for _, tc := range []struct {
		action, status, error string
	}{
		{"takedown", "takendown", "RepoTakendown"},
		{"suspend", "suspended", "RepoSuspended"},
		{"deactivate", "deactivated", "RepoDeactivated"},
	} {
		t.Run(tc.action, func(t *testing.T) {
			h := h.with(t)
			if out := h.adminAction(alice.did, tc.action); out["active"] != false || out["status"] != tc.status {
				t.Fatalf("/admin/ %s answered %v", tc.action, out)
			}
			for _, g := range reads {
				h.query(g.nsid, g.params).fails(http.StatusForbidden, tc.error)
				// Another account's token is no better than none.
				h.query(g.nsid, g.params, bob.cred()).fails(http.StatusForbidden, tc.error)
				g.succeeds(t, h, data, alice.cred())
				g.succeeds(t, h, data, asAdmin)
			}
			st := h.query("com.atproto.sync.getRepoStatus", q("did", alice.did)).ok("com.atproto.sync.getRepoStatus")
			if st["active"] != false || st["status"] != tc.status || st["rev"] != nil || len(st) != 3 {
				t.Errorf("getRepoStatus %v, want active false, status %s, no rev", st, tc.status)
			}
			lr := h.query("com.atproto.sync.listRepos", nil).ok("com.atproto.sync.listRepos")
			for _, r := range lr["repos"].([]any) {
				m := r.(map[string]any)
				if m["did"] == alice.did && (m["active"] != false || m["status"] != tc.status) {
					t.Errorf("listRepos item %v, want active false, status %s", m, tc.status)
				}
			}
			// Inactive accounts do not write, even with their own token.
			h.createRecordFails(alice, http.StatusForbidden, "Forbidden")
			h.upload(data, "text/plain", "", alice.cred()).fails(http.StatusForbidden, "Forbidden")

			// Reactivated: public again.
			if out := h.adminAction(alice.did, "reactivate"); out["active"] != true || out["status"] != "" {
				t.Fatalf("/admin/ reactivate answered %v", out)
			}
			for _, g := range reads {
				g.succeeds(t, h, data)
			}
			st = h.query("com.atproto.sync.getRepoStatus", q("did", alice.did)).ok("com.atproto.sync.getRepoStatus")
			if st["active"] != true || st["rev"] != rev || st["status"] != nil {
				t.Errorf("getRepoStatus after reactivation %v, want active with rev %s", st, rev)
			}
		})
	}
	// Unknown repositories are RepoNotFound on every gated read.
	for _, g := range gatedReads("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "nobody.test", bc.String(), recordCID(t, rec).String()) {
		h.query(g.nsid, g.params).fails(http.StatusNotFound, "RepoNotFound")
	}
	h.query("com.atproto.sync.getRepoStatus", q("did", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")).fails(http.StatusNotFound, "RepoNotFound")
}

func (h *harness) createRecordFails(a account, status int, name string) {
	h.t.Helper()
	h.procedure("com.atproto.repo.createRecord", map[string]any{"repo": a.did, "collection": "app.bsky.feed.post", "record": post("x")}, a.cred()).fails(status, name)
}
