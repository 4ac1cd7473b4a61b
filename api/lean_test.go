package api_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/relay"
	"github.com/reservoir-atproto/reservoir/store"
)

// fakeMirrors records the status changes the admin routes ask of the
// relay, and refuses what the relay refuses.
type fakeMirrors struct {
	mu    sync.Mutex
	calls []string
	db    *store.DB
}

func (f *fakeMirrors) SetStatus(ctx context.Context, did string, st store.Status) error {
	f.mu.Lock()
	f.calls = append(f.calls, fmt.Sprintf("%s %s", did, st))
	f.mu.Unlock()
	if st != store.StatusTakendown && st != store.StatusSuspended && st != store.StatusActive {
		return fmt.Errorf("%w: %s", relay.ErrStatusNotOurs, st)
	}
	a, err := f.db.Account(did)
	if err != nil {
		return relay.ErrNotMirrored
	}
	a.Status = st
	_, err = f.db.Apply(ctx, &store.Change{UID: a.UID, Account: a, OldHandle: a.Handle})
	return err
}

// dagSum is the CID of a text's DAG-CBOR.
func dagSum(s string) cid.Cid { return dagcbor.SumCBOR(dagcbor.AppendText(nil, s)) }

// mirror stores a mirrored account of host with a head (no blocks: as a
// lean relay keeps it).
func mirror(t *testing.T, h *harness, did, host string) {
	t.Helper()
	hd := store.Head{Commit: dagSum("commit " + did), Rev: "3lbmqhtxvhs2a", Data: dagSum("data " + did)}
	if _, err := h.db.Apply(context.Background(), &store.Change{Account: &store.Account{DID: did, Host: host}, Head: &hd}); err != nil {
		t.Fatal(err)
	}
}

// On a lean relay, the content reads of a mirrored account redirect to its
// PDS (https, or http for a host crawled without TLS) after the gate, its
// state reads answer from the head, and hosted accounts are served as
// always. The admin's status routes reach the relay for mirrored accounts.
func TestLeanMirrorReads(t *testing.T) {
	var fm fakeMirrors
	h := newHarness(t, func(o *harnessOptions) { o.leanMirrors = true; o.mirrors = &fm })
	fm.db = h.db
	hosted := h.createAccount("hosted.test")
	h.createRecord(hosted, "app.bsky.feed.post", "3lbmqhtxvhs2a", map[string]any{"$type": "app.bsky.feed.post", "text": "x", "createdAt": "2026-11-26T00:00:00.000Z"})
	const tlsDID, plainDID = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
	mirror(t, h, tlsDID, "pds.example.com")
	mirror(t, h, plainDID, "localhost:2583")
	if err := h.db.PutHost(context.Background(), &store.Host{Hostname: "localhost:2583", NoSSL: true, Status: store.HostActive, Cursor: store.NoCursor}); err != nil {
		t.Fatal(err)
	}
	noFollow := *h.http
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	hc := *h
	hc.http = &noFollow

	for _, c := range []struct{ did, base string }{{tlsDID, "https://pds.example.com"}, {plainDID, "http://localhost:2583"}} {
		for _, path := range []string{
			"/xrpc/com.atproto.sync.getRepo?did=" + c.did + "&since=3lbmqhtxvhs2a",
			"/xrpc/com.atproto.sync.getBlocks?did=" + c.did + "&cids=bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm",
			"/xrpc/com.atproto.sync.getBlob?did=" + c.did + "&cid=bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm",
			"/xrpc/com.atproto.sync.listBlobs?did=" + c.did,
			"/xrpc/com.atproto.sync.getRecord?did=" + c.did + "&collection=app.bsky.feed.post&rkey=x",
			"/xrpc/com.atproto.repo.describeRepo?repo=" + c.did,
		} {
			r := hc.do(http.MethodGet, path, nil, nil)
			if r.status != http.StatusFound || r.header.Get("Location") != c.base+path {
				t.Fatalf("%s: %d to %q", path, r.status, r.header.Get("Location"))
			}
		}
		out := h.query("com.atproto.sync.getLatestCommit", q("did", c.did)).ok("com.atproto.sync.getLatestCommit")
		if str(t, out, "cid") != dagSum("commit "+c.did).String() {
			t.Fatalf("getLatestCommit of a lean mirror: %v", out)
		}
		h.query("com.atproto.sync.getRepoStatus", q("did", c.did)).ok("com.atproto.sync.getRepoStatus")
	}
	// Hosted accounts, unknown DIDs and bad parameters are answered here.
	if r := hc.do(http.MethodGet, "/xrpc/com.atproto.sync.getRepo?did="+hosted.did, nil, nil); r.status != 200 {
		t.Fatalf("getRepo of a hosted account on a lean relay: %d", r.status)
	}
	if r := hc.do(http.MethodGet, "/xrpc/com.atproto.sync.getRepo?did=did:plc:cccccccccccccccccccccccc", nil, nil); r.status != 404 {
		t.Fatalf("getRepo of an unknown DID: %d", r.status)
	}
	if r := hc.do(http.MethodGet, "/xrpc/com.atproto.sync.getRepo?did=nope", nil, nil); r.status != 400 {
		t.Fatalf("getRepo of a bad DID: %d", r.status)
	}

	// The admin's takedown of a mirrored account goes to the relay, and
	// then the gate answers before any redirect.
	if out := h.adminAction(tlsDID, "takedown"); out["status"] != "takendown" {
		t.Fatalf("takedown: %v", out)
	}
	if r := hc.do(http.MethodGet, "/xrpc/com.atproto.sync.getRepo?did="+tlsDID, nil, nil); r.status != 403 {
		t.Fatalf("getRepo of a taken-down lean mirror: %d %s", r.status, r.body)
	}
	if r := h.do(http.MethodPost, "/admin/accounts/"+tlsDID+"/deactivate", nil, nil, asAdmin); r.status != 400 {
		t.Fatalf("deactivating a mirrored account: %d %s", r.status, r.body)
	}
	h.adminAction(tlsDID, "reactivate")
	fm.mu.Lock()
	defer fm.mu.Unlock()
	if want := []string{tlsDID + " takendown", tlsDID + " deactivated", tlsDID + " "}; fmt.Sprint(fm.calls) != fmt.Sprint(want) {
		t.Fatalf("relay calls %q, want %q", fm.calls, want)
	}
}

// Without the relay, status changes of mirrored accounts are refused.
func TestMirroredStatusWithoutRelay(t *testing.T) {
	h := newHarness(t)
	mirror(t, h, "did:plc:dddddddddddddddddddddddd", "pds.example.com")
	if r := h.do(http.MethodPost, "/admin/accounts/did:plc:dddddddddddddddddddddddd/takedown", nil, nil, asAdmin); r.status != 400 {
		t.Fatalf("takedown of a mirrored account without the relay: %d %s", r.status, r.body)
	}
	// Only its host deletes a mirrored account.
	h.do(http.MethodDelete, "/admin/accounts/did:plc:dddddddddddddddddddddddd", nil, nil, asAdmin).fails(http.StatusBadRequest, "InvalidRequest")
	if a, err := h.db.Account("did:plc:dddddddddddddddddddddddd"); err != nil || a.Status != store.StatusActive {
		t.Fatalf("the mirrored account after a refused DELETE: %+v %v", a, err)
	}
}
