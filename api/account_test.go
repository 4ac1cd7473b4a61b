package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

func TestHealth(t *testing.T) {
	h := newHarness(t)
	r := h.do(http.MethodGet, "/xrpc/_health", nil, nil)
	if r.status != http.StatusOK {
		t.Fatalf("status %d, body %s", r.status, r.body)
	}
	if m := decodeJSON(t, r.body); len(m) != 1 || m["version"] != serverVersion {
		t.Errorf("health body %s, want {\"version\": %q}", r.body, serverVersion)
	}
}

func TestUnknownMethodAndWrongHTTPMethod(t *testing.T) {
	h := newHarness(t)
	h.query("com.atproto.sync.noSuchThing", nil).fails(http.StatusNotImplemented, "MethodNotImplemented")
	h.procedure("com.example.nothing", `{}`).fails(http.StatusNotImplemented, "MethodNotImplemented")

	r := h.procedure("com.atproto.sync.getRepo", `{}`)
	r.fails(http.StatusMethodNotAllowed, "InvalidRequest")
	if allow := r.header.Get("Allow"); allow != "GET, HEAD" {
		t.Errorf("Allow %q for a query, want \"GET, HEAD\"", allow)
	}
	r = h.query("com.atproto.repo.createRecord", nil, asAdmin)
	r.fails(http.StatusMethodNotAllowed, "InvalidRequest")
	if allow := r.header.Get("Allow"); allow != "POST" {
		t.Errorf("Allow %q for a procedure, want POST", allow)
	}
	h.do(http.MethodDelete, "/xrpc/com.atproto.sync.listRepos", nil, nil).fails(http.StatusMethodNotAllowed, "InvalidRequest")
}

func TestCreateAccountAuth(t *testing.T) {
	h := newHarness(t)
	in := map[string]any{"handle": "alice.test"}
	r := h.procedure("com.atproto.server.createAccount", in)
	r.fails(http.StatusUnauthorized, "AuthenticationRequired")
	if !strings.Contains(r.header.Get("WWW-Authenticate"), "Basic") {
		t.Errorf("401 without a Basic challenge: %q", r.header.Values("WWW-Authenticate"))
	}
	h.procedure("com.atproto.server.createAccount", in, basic("admin", "wrong")).fails(http.StatusUnauthorized, "AuthenticationRequired")
	h.procedure("com.atproto.server.createAccount", in, basic("root", adminPassword)).fails(http.StatusUnauthorized, "AuthenticationRequired")
	// An account's own token is valid credentials, but not an admin's.
	bob := h.createAccount("bob.test")
	h.procedure("com.atproto.server.createAccount", in, bob.cred()).fails(http.StatusForbidden, "Forbidden")
	// Nothing was created by the refused calls.
	h.query("com.atproto.repo.describeRepo", q("repo", "alice.test")).fails(http.StatusNotFound, "RepoNotFound")
}

func TestCreateAccountRegistersDID(t *testing.T) {
	h := newHarness(t)
	out := h.procedure("com.atproto.server.createAccount", map[string]any{"handle": "Alice.Test"}, asAdmin).ok("com.atproto.server.createAccount")
	did := str(t, out, "did")
	if !strings.HasPrefix(did, "did:plc:") {
		t.Fatalf("did %q, want a new did:plc", did)
	}
	if got := str(t, out, "handle"); got != "alice.test" {
		t.Errorf("handle %q, want the normalized alice.test", got)
	}
	if out["accessJwt"] == "" || out["accessJwt"] != out["refreshJwt"] {
		t.Errorf("accessJwt %v, refreshJwt %v: want the bearer token in both", out["accessJwt"], out["refreshJwt"])
	}

	// The directory has the DID: handle, this service as its PDS, a key.
	data, err := h.plc.Data(context.Background(), syntax.DID(did))
	if err != nil {
		t.Fatalf("the directory does not know %s: %v", did, err)
	}
	if len(data.AlsoKnownAs) != 1 || data.AlsoKnownAs[0] != "at://alice.test" {
		t.Errorf("alsoKnownAs %v, want [at://alice.test]", data.AlsoKnownAs)
	}
	if svc := data.Services["atproto_pds"]; svc.Endpoint != h.url || svc.Type != "AtprotoPersonalDataServer" {
		t.Errorf("atproto_pds service %+v, want endpoint %s", svc, h.url)
	}
	key := h.signingKey(did)

	// The didDoc of the response says the same.
	doc, _ := out["didDoc"].(map[string]any)
	if doc["id"] != did {
		t.Errorf("didDoc id %v, want %s", doc["id"], did)
	}
	if aka, _ := doc["alsoKnownAs"].([]any); len(aka) != 1 || aka[0] != "at://alice.test" {
		t.Errorf("didDoc alsoKnownAs %v", doc["alsoKnownAs"])
	}
	vms, _ := doc["verificationMethod"].([]any)
	if len(vms) != 1 || vms[0].(map[string]any)["publicKeyMultibase"] != key.Multibase() || vms[0].(map[string]any)["id"] != did+"#atproto" {
		t.Errorf("didDoc verificationMethod %v, want the directory's key %s", vms, key.Multibase())
	}
	svcs, _ := doc["service"].([]any)
	if len(svcs) != 1 || svcs[0].(map[string]any)["serviceEndpoint"] != h.url {
		t.Errorf("didDoc service %v, want endpoint %s", svcs, h.url)
	}

	// A new account starts with an empty repository, signed with that key.
	head, rev := h.latest(did)
	f := h.query("com.atproto.sync.getRepo", q("did", did)).car()
	commit := verifyRepoCAR(t, f, did, key, head, model{})
	if string(commit.Rev) != rev {
		t.Errorf("commit rev %s, getLatestCommit rev %s", commit.Rev, rev)
	}
	st := h.query("com.atproto.sync.getRepoStatus", q("did", did)).ok("com.atproto.sync.getRepoStatus")
	if st["active"] != true || st["rev"] != rev || st["status"] != nil {
		t.Errorf("getRepoStatus %v, want active with rev %s", st, rev)
	}

	// The token writes to the repository.
	acct := account{did: did, handle: "alice.test", token: str(t, out, "accessJwt")}
	h.createRecord(acct, "app.bsky.feed.post", "", post("hello"))
}

func TestCreateAccountErrors(t *testing.T) {
	h := newHarness(t)
	h.createAccount("alice.test")
	for _, tc := range []struct {
		name   string
		in     any
		status int
		error  string
	}{
		{"invalid handle", map[string]any{"handle": "not a handle"}, 400, "InvalidHandle"},
		{"single label handle", map[string]any{"handle": "alice"}, 400, "InvalidHandle"},
		{"missing handle", map[string]any{}, 400, "InvalidRequest"},
		{"taken handle", map[string]any{"handle": "alice.test"}, 400, "HandleNotAvailable"},
		{"taken handle in other case", map[string]any{"handle": "ALICE.test"}, 400, "HandleNotAvailable"},
		{"not JSON", `{"handle":`, 400, "InvalidRequest"},
		{"bad signing key", map[string]any{"handle": "carol.test", "did": "did:web:carol.example.com", "signingKey": "zNotAKey"}, 400, "InvalidRequest"},
		{"did without key", map[string]any{"handle": "carol.test", "did": "did:web:carol.example.com"}, 400, "InvalidRequest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.with(t).procedure("com.atproto.server.createAccount", tc.in, asAdmin).fails(tc.status, tc.error)
		})
	}
}

func TestCreateAccountAdoptsIdentity(t *testing.T) {
	h := newHarness(t)
	priv, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := priv.PublicKey()
	const did = "did:web:adopted.example.com"
	out := h.procedure("com.atproto.server.createAccount", map[string]any{"handle": "adopted.test", "did": did, "signingKey": priv.Multibase()}, asAdmin).
		ok("com.atproto.server.createAccount")
	if out["did"] != did || out["handle"] != "adopted.test" {
		t.Fatalf("adopted account %v", out)
	}
	doc, _ := out["didDoc"].(map[string]any)
	vms, _ := doc["verificationMethod"].([]any)
	if len(vms) != 1 || vms[0].(map[string]any)["publicKeyMultibase"] != pub.Multibase() {
		t.Errorf("didDoc verificationMethod %v, want the adopted key %s", vms, pub.Multibase())
	}
	// The directory registered nothing for it.
	if _, err := h.plc.Data(context.Background(), did); err == nil {
		t.Error("an adopted did:web reached the did:plc directory")
	}

	// No commit yet: no head, no latest commit, no repo; status active
	// without a rev.
	h.query("com.atproto.sync.getHead", q("did", did)).fails(http.StatusNotFound, "HeadNotFound")
	h.query("com.atproto.sync.getLatestCommit", q("did", did)).fails(http.StatusNotFound, "RepoNotFound")
	h.query("com.atproto.sync.getRepo", q("did", did)).fails(http.StatusNotFound, "RepoNotFound")
	st := h.query("com.atproto.sync.getRepoStatus", q("did", did)).ok("com.atproto.sync.getRepoStatus")
	if st["active"] != true || st["rev"] != nil {
		t.Errorf("getRepoStatus %v, want active without a rev", st)
	}
	lr := h.query("com.atproto.sync.listRepos", nil).ok("com.atproto.sync.listRepos")
	if repos, _ := lr["repos"].([]any); len(repos) != 0 {
		t.Errorf("listRepos lists an account without a commit: %v", repos)
	}

	// The first write makes the first commit, signed with the adopted key.
	acct := account{did: did, handle: "adopted.test", token: str(t, out, "accessJwt")}
	rec := post("first")
	res := h.createRecord(acct, "app.bsky.feed.post", "3jzfcijpj2z2a", rec)
	head := mustCID(t, str(t, res, "commit", "cid"))
	verifyRepoCAR(t, h.query("com.atproto.sync.getRepo", q("did", did)).car(), did, pub, head,
		model{"app.bsky.feed.post/3jzfcijpj2z2a": recordCID(t, rec)})

	// The same DID cannot be adopted twice.
	h.procedure("com.atproto.server.createAccount", map[string]any{"handle": "again.test", "did": did, "signingKey": priv.Multibase()}, asAdmin).
		fails(http.StatusBadRequest, "InvalidRequest")
}
