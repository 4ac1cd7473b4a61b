package api_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
)

// importCAR posts a CAR to importRepo; repo, if set, is the ?repo= param.
func (h *harness) importCAR(body []byte, repo string, creds ...cred) *response {
	h.t.Helper()
	path := "/xrpc/com.atproto.repo.importRepo"
	if repo != "" {
		path += queryString("repo", repo)
	}
	return h.do(http.MethodPost, path, bytes.NewReader(body), http.Header{"Content-Type": {"application/vnd.ipld.car"}}, creds...)
}

// TestImportRepo moves an adopted identity's repository from one server
// to another: exported with getRepo from the first, imported on the second,
// served there with the same root and records.
func TestImportRepo(t *testing.T) {
	priv, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := priv.PublicKey()
	const did = "did:web:mover.example.com"
	adopt := func(h *harness) account {
		out := h.procedure("com.atproto.server.createAccount", map[string]any{"handle": "mover.test", "did": did, "signingKey": priv.Multibase()}, asAdmin).ok("com.atproto.server.createAccount")
		return account{did: did, handle: "mover.test", token: str(t, out, "accessJwt")}
	}

	// The old server: three records, then one more (a newer repository).
	old := newHarness(t)
	oldAcct := adopt(old)
	want := model{}
	for _, rkey := range []string{"3jzfcijpj2z2a", "3jzfcijpj2z2b", "3jzfcijpj2z2c"} {
		rec := post(rkey)
		old.createRecord(oldAcct, "app.bsky.feed.post", rkey, rec)
		want["app.bsky.feed.post/"+rkey] = recordCID(t, rec)
	}
	first := old.query("com.atproto.sync.getRepo", q("did", did)).body
	firstHead, _ := old.latest(did)
	old.createRecord(oldAcct, "app.bsky.feed.post", "3jzfcijpj2z2d", post("later"))
	second := old.query("com.atproto.sync.getRepo", q("did", did)).body
	secondHead, _ := old.latest(did)

	// The new server.
	h := newHarness(t)
	acct := adopt(h)
	other := h.createAccount("other.test")

	// Refusals first, while the account has no repository.
	h.importCAR(first, "").fails(http.StatusUnauthorized, "AuthenticationRequired")
	h.importCAR(first, "", asAdmin).fails(http.StatusBadRequest, "InvalidRequest") // admin must name the repo
	h.importCAR(first, did, other.cred()).fails(http.StatusForbidden, "Forbidden")
	h.importCAR([]byte("not a CAR"), "", acct.cred()).fails(http.StatusBadRequest, "InvalidRequest")
	h.importCAR(first[:len(first)-10], "", acct.cred()).fails(http.StatusBadRequest, "InvalidRequest")
	// Another account's repository is not this account's to import.
	otherCAR := h.query("com.atproto.sync.getRepo", q("did", other.did)).body
	h.importCAR(otherCAR, "", acct.cred()).fails(http.StatusBadRequest, "InvalidRequest")
	h.query("com.atproto.sync.getHead", q("did", did)).fails(http.StatusNotFound, "HeadNotFound")

	// The import, with the account's token: the same root and records.
	r := h.importCAR(first, "", acct.cred())
	if r.status != http.StatusOK || len(r.body) != 0 {
		t.Fatalf("importRepo: %d %s", r.status, r.body)
	}
	head, _ := h.latest(did)
	if head != firstHead {
		t.Errorf("imported head %s, want %s", head, firstHead)
	}
	verifyRepoCAR(t, h.query("com.atproto.sync.getRepo", q("did", did)).car(), did, pub, firstHead, want)
	// The same repository again is not newer: refused.
	h.importCAR(first, "", acct.cred()).fails(http.StatusBadRequest, "InvalidRequest")
	// The newer one, as the admin naming the repo.
	r = h.importCAR(second, did, asAdmin)
	if r.status != http.StatusOK {
		t.Fatalf("importRepo as admin: %d %s", r.status, r.body)
	}
	want["app.bsky.feed.post/3jzfcijpj2z2d"] = recordCID(t, post("later"))
	verifyRepoCAR(t, h.query("com.atproto.sync.getRepo", q("did", did)).car(), did, pub, secondHead, want)
	// Writes continue on top of the import.
	h.createRecord(acct, "app.bsky.feed.post", "3jzfcijpj2z2e", post("after the move"))
	if now, _ := h.latest(did); now == secondHead {
		t.Error("no commit after the import")
	}
}
