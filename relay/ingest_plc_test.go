package relay_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/host"
	"github.com/reservoir-atproto/reservoir/identity"
	"github.com/reservoir-atproto/reservoir/plc"
	"github.com/reservoir-atproto/reservoir/plc/directory"
	"github.com/reservoir-atproto/reservoir/store"
)

// The ingest with the real resolver over an in-process did:plc directory,
// mirroring a host whose accounts have did:plc identities: created there
// (#identity, #account, an empty first #commit, #sync), written to, and
// mirrored byte for byte.
func TestIngestWithPLCDirectory(t *testing.T) {
	dir, err := directory.New(directory.Options{Store: directory.NewMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	plcServer := httptest.NewServer(dir)
	t.Cleanup(plcServer.Close)
	up := newUpstreamWith(t, &plc.Client{BaseURL: plcServer.URL, HTTPClient: plcServer.Client()})
	ids, err := identity.New(identity.Options{PLCURL: plcServer.URL, AllowInsecure: true, SkipHandleVerification: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var dids []string
	for _, h := range []string{"carol.test", "dave.test"} {
		acct, err := up.host.CreateAccount(ctx, host.CreateAccountInput{Handle: h})
		if err != nil {
			t.Fatal(err)
		}
		dids = append(dids, acct.DID)
		up.write(acct.DID, create("app.bsky.feed.post/a", "a"), create("app.bsky.feed.post/b", "b"))
		up.write(acct.DID, del("app.bsky.feed.post/a"))
	}
	m := newMirror(t, ids)
	fs := frames(t, up.db, 0)
	m.submit(up.hostname, fs...)
	m.settle()
	m.checkDoneOnce(up.hostname, fs)
	for _, did := range dids {
		sameRepo(t, up.db, m.db, did)
		a, _ := m.db.Account(did)
		if a.Status != store.StatusActive || a.Host != up.hostname {
			t.Fatalf("mirrored %+v", a)
		}
	}
	count := map[string]int{}
	for _, d := range decodeLog(t, m.db, 0) {
		count[d.ev.Type()]++
		if id, ok := d.ev.(*wire.IdentityEvent); ok && id.Handle == "" {
			t.Fatal("#identity forwarded without the handle its document declares")
		}
	}
	// Each account: #identity, #account, 3 commits; the #sync of the first
	// commit is the state we have.
	if count[wire.TypeIdentity] != 2 || count[wire.TypeAccount] != 2 || count[wire.TypeCommit] != 6 || count[wire.TypeSync] != 0 {
		t.Fatalf("our log: %v", count)
	}
}
