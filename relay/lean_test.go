package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/host"
	"github.com/reservoir-atproto/reservoir/relay"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
)

func leanMirror(o *relay.IngestOptions) { o.Lean = true }

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func get(t *testing.T, c *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// collectionCounts is an account's record count per collection.
func collectionCounts(t *testing.T, db *store.DB, did string) map[string]uint64 {
	t.Helper()
	counts, _, err := db.Collections(uidOf(t, db, did))
	if err != nil {
		t.Fatal(err)
	}
	return counts
}

// A lean relay keeps the state of a mirrored account (head, status, record
// counts per collection) and no content: commits are verified and
// re-broadcast with the upstream's blocks unchanged, a bad one is refused
// and the account resynced (head only), the state reads answer from the
// head, the collection index follows the creates and deletes, and the
// content reads redirect to the PDS (after the takedown gate).
func TestLeanRelay(t *testing.T) {
	ident := newFakeIdentity()
	up := newUpstream(t)
	did := up.createAccount(ident, "lean.test")
	up.write(did, create("app.bsky.feed.post/a", "a"), create("app.bsky.feed.post/b", "b"))
	up.write(did, create("app.bsky.feed.like/l", "like"), update("app.bsky.feed.post/a", "a2"))
	up.write(did, del("app.bsky.feed.post/b"), del("app.bsky.feed.like/l"), create("app.bsky.graph.follow/f", "f"))
	m := newMirror(t, ident, leanMirror)
	base := serveMirror(t, m, true)
	upFrames := frames(t, up.db, 0)
	m.submit(up.hostname, upFrames...)
	m.settle()

	checkLean := func(what string) {
		t.Helper()
		a, err := m.db.Account(did)
		if err != nil {
			t.Fatal(err)
		}
		if a.Head != head(t, up.db, did) || a.Status != store.StatusActive {
			t.Fatalf("%s: head %+v status %q, upstream %+v", what, a.Head, a.Status, head(t, up.db, did))
		}
		blocks := 0
		m.db.LiveBlocks(a.UID, func(_ cid.Cid, _ []byte) error { blocks++; return nil })
		recs, err := m.db.Records(a.UID, "app.bsky.feed.post", "", 100, false)
		if err != nil || blocks != 0 || len(recs) != 0 {
			t.Fatalf("%s: a lean mirror holds %d blocks and %d records (%v)", what, blocks, len(recs), err)
		}
		if got, want := collectionCounts(t, m.db, did), collectionCounts(t, up.db, did); !maps.Equal(got, want) {
			t.Fatalf("%s: collection counts %v, upstream %v", what, got, want)
		}
	}
	checkLean("after the commits")

	// Our #commits are the upstream's, blocks unchanged, and verify.
	log := decodeLog(t, m.db, 0)
	verifyOurCommits(t, log, pubKeys(up))
	upCommits := map[string][]byte{}
	for _, f := range upFrames {
		if ev, _ := wire.DecodeFrame(f.bytes); ev.Type() == wire.TypeCommit {
			upCommits[ev.(*wire.CommitEvent).Rev] = ev.(*wire.CommitEvent).Blocks
		}
	}
	n := 0
	for _, d := range log {
		if c, ok := d.ev.(*wire.CommitEvent); ok {
			n++
			if !bytes.Equal(c.Blocks, upCommits[c.Rev]) {
				t.Fatalf("our #commit rev %s: blocks differ from the upstream's", c.Rev)
			}
		}
	}
	if n != len(upCommits) {
		t.Fatalf("%d #commits forwarded of %d", n, len(upCommits))
	}

	// A bad commit: refused, desynchronized, resynced (the head only).
	ourMark := m.db.LastSeq()
	mark := up.db.LastSeq()
	up.write(did, create("app.bsky.feed.post/c", "c"), create("app.bsky.actor.profile/self", "me"))
	real := frames(t, up.db, mark)[0]
	ev := decodeCommitFrame(t, real)
	ev.PrevData = ev.Commit // not the stored data
	m.submit(up.hostname, frame{real.seq, encodeCommit(t, ev, real.seq)})
	m.settle()
	caughtUp(t, "the resync", m.db, up, did)
	m.idle()
	checkLean("after the resync")
	var types []string
	for _, d := range decodeLog(t, m.db, ourMark) {
		types = append(types, d.ev.Type())
	}
	if len(types) != 3 || types[0] != wire.TypeAccount || types[1] != wire.TypeAccount || types[2] != wire.TypeSync {
		t.Fatalf("our log after the bad commit: %v", types)
	}
	verifyOurCommits(t, decodeLog(t, m.db, 0), pubKeys(up))
	// and later commits chain from the resynced head
	mark = up.db.LastSeq()
	up.write(did, del("app.bsky.actor.profile/self"))
	m.submit(up.hostname, frames(t, up.db, mark)...)
	m.settle()
	checkLean("after a commit on the resynced head")

	// State reads answer from the head.
	h := head(t, up.db, did)
	resp, body := get(t, http.DefaultClient, base+"/xrpc/com.atproto.sync.getLatestCommit?did="+did)
	var latest struct{ CID, Rev string }
	json.Unmarshal(body, &latest)
	if resp.StatusCode != 200 || latest.CID != h.Commit.String() || latest.Rev != h.Rev {
		t.Fatalf("getLatestCommit: %d %s", resp.StatusCode, body)
	}
	if resp, body := get(t, http.DefaultClient, base+"/xrpc/com.atproto.sync.getRepoStatus?did="+did); resp.StatusCode != 200 || !bytes.Contains(body, []byte(h.Rev)) {
		t.Fatalf("getRepoStatus: %d %s", resp.StatusCode, body)
	}
	if resp, body := get(t, http.DefaultClient, base+"/xrpc/com.atproto.sync.listRepos"); resp.StatusCode != 200 || !bytes.Contains(body, []byte(h.Commit.String())) {
		t.Fatalf("listRepos: %d %s", resp.StatusCode, body)
	}
	for coll, want := range map[string]bool{"app.bsky.feed.post": true, "app.bsky.graph.follow": true, "app.bsky.feed.like": false, "app.bsky.actor.profile": false} {
		resp, body := get(t, http.DefaultClient, base+"/xrpc/com.atproto.sync.listReposByCollection?collection="+coll)
		if resp.StatusCode != 200 || bytes.Contains(body, []byte(did)) != want {
			t.Fatalf("listReposByCollection %s: %d %s", coll, resp.StatusCode, body)
		}
	}

	// Content reads redirect to the PDS (http here: the host is crawled
	// without TLS), where they answer as the PDS does.
	if err := m.db.PutHost(context.Background(), &store.Host{Hostname: up.hostname, NoSSL: true, Status: store.HostActive, Cursor: store.NoCursor}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		"/xrpc/com.atproto.sync.getRepo?did=" + did,
		"/xrpc/com.atproto.sync.getRecord?did=" + did + "&collection=app.bsky.feed.post&rkey=a",
		"/xrpc/com.atproto.sync.listBlobs?did=" + did,
		"/xrpc/com.atproto.repo.getRecord?repo=" + did + "&collection=app.bsky.feed.post&rkey=a",
		"/xrpc/com.atproto.repo.listRecords?repo=lean.test&collection=app.bsky.feed.post",
	} {
		resp, _ := get(t, noRedirect, base+path)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != up.url+path {
			t.Fatalf("%s: %d to %q", path, resp.StatusCode, resp.Header.Get("Location"))
		}
		_, direct := get(t, http.DefaultClient, up.url+path)
		if resp, body := get(t, http.DefaultClient, base+path); resp.StatusCode != 200 || !bytes.Equal(body, direct) {
			t.Fatalf("%s through the redirect: %d", path, resp.StatusCode)
		}
	}

	// A takedown here is not redirected around.
	if err := m.ingest.SetStatus(context.Background(), did, store.StatusTakendown); err != nil {
		t.Fatal(err)
	}
	if resp, body := get(t, noRedirect, base+"/xrpc/com.atproto.sync.getRepo?did="+did); resp.StatusCode != 403 || !bytes.Contains(body, []byte("RepoTakendown")) {
		t.Fatalf("getRepo of a taken-down lean mirror: %d %s", resp.StatusCode, body)
	}
}

// A store kept lean and then run as an archive: the first commit of a
// mirrored account cannot be applied to a tree the store never held, so
// the account is fetched whole, and archived from then on.
func TestLeanThenArchive(t *testing.T) {
	ident := newFakeIdentity()
	up := newUpstream(t)
	did := up.createAccount(ident, "switch.test")
	up.write(did, create("app.bsky.feed.post/a", "a"), create("app.bsky.feed.post/b", "b"))
	m := newMirror(t, ident, leanMirror)
	m.submit(up.hostname, frames(t, up.db, 0)...)
	m.settle()
	m.restart(ident) // an archive

	mark := up.db.LastSeq()
	up.write(did, create("app.bsky.feed.post/c", "c"))
	m.submit(up.hostname, frames(t, up.db, mark)...)
	m.settle()
	caughtUp(t, "the resync", m.db, up, did)
	m.idle()
	sameRepo(t, up.db, m.db, did)
	mark = up.db.LastSeq()
	up.write(did, del("app.bsky.feed.post/a"))
	m.submit(up.hostname, frames(t, up.db, mark)...)
	m.settle()
	sameRepo(t, up.db, m.db, did)
}

// liveBlocks counts the live blocks stored of did's repository.
func liveBlocks(t *testing.T, db *store.DB, did string) int {
	t.Helper()
	n := 0
	if err := db.LiveBlocks(uidOf(t, db, did), func(cid.Cid, []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// An archive then run lean: the mirrors' content (blocks, record index),
// which a lean relay never reads, is dropped at its first start, and their
// state kept (head, status, collection counts); hosted repositories keep
// everything. The lean relay goes on from the kept head, and a later
// archive run fetches the repository whole again.
func TestArchiveThenLeanDropsContent(t *testing.T) {
	ident := newFakeIdentity()
	up := newUpstream(t)
	did := up.createAccount(ident, "switch.test")
	up.write(did, create("app.bsky.feed.post/a", "a"), create("app.bsky.feed.post/b", "b"), create("app.bsky.graph.follow/f", "f"))
	var others []string // more mirrors: their drops run concurrently
	for i := range 150 {
		o := up.createAccount(ident, fmt.Sprintf("other%d.test", i))
		up.write(o, create("app.bsky.feed.post/o", "o"))
		others = append(others, o)
	}
	m := newMirror(t, ident)
	m.submit(up.hostname, frames(t, up.db, 0)...)
	m.settle()
	m.idle()
	sameRepo(t, up.db, m.db, did)

	// An account hosted by the relay's own store.
	local := host.New(host.Options{DB: m.db, Repos: &repostore.Repos{DB: m.db}, PublicURL: "http://localhost"})
	key, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		t.Fatal(err)
	}
	mine := newDID()
	if _, err := local.CreateAccount(context.Background(), host.CreateAccountInput{Handle: "mine.test", DID: mine, SigningKey: key.Multibase()}); err != nil {
		t.Fatal(err)
	}
	if _, err := local.ApplyWrites(context.Background(), mine, []host.Write{{Write: create("app.bsky.feed.post/m", "m")}}, cid.Undef); err != nil {
		t.Fatal(err)
	}
	hostedBlocks := liveBlocks(t, m.db, mine)
	before, err := m.db.Account(did)
	if err != nil {
		t.Fatal(err)
	}
	counts := collectionCounts(t, m.db, did)
	if n := liveBlocks(t, m.db, did); n == 0 || hostedBlocks == 0 {
		t.Fatalf("archived %d blocks of the mirror, %d of the hosted account", n, hostedBlocks)
	}
	eventuallyTrue(t, "the archive mode recorded", func() bool {
		mode, _ := m.db.MirrorMode()
		return mode == store.MirrorArchive
	})

	m.restart(ident, leanMirror)
	eventuallyTrue(t, "the lean mode recorded", func() bool {
		mode, _ := m.db.MirrorMode()
		return mode == store.MirrorLean
	})
	for _, d := range append([]string{did}, others...) {
		if n := liveBlocks(t, m.db, d); n != 0 {
			t.Fatalf("%d blocks of the mirror %s left", n, d)
		}
	}
	a, _ := m.db.Account(did)
	if ok, _ := m.db.HasRecord(a.UID, "app.bsky.feed.post/a"); ok {
		t.Fatal("the mirror's record index left")
	}
	if a.Head != before.Head || a.Status != store.StatusActive {
		t.Fatalf("state changed: %+v, was %+v", a, before)
	}
	if got := collectionCounts(t, m.db, did); !maps.Equal(got, counts) {
		t.Fatalf("collection counts %v, were %v", got, counts)
	}
	if n := liveBlocks(t, m.db, mine); n != hostedBlocks {
		t.Fatalf("the hosted account has %d blocks, had %d", n, hostedBlocks)
	}
	if ok, _ := m.db.HasRecord(uidOf(t, m.db, mine), "app.bsky.feed.post/m"); !ok {
		t.Fatal("the hosted account's record index dropped")
	}

	// Lean goes on from the kept head.
	mark := up.db.LastSeq()
	up.write(did, create("app.bsky.feed.post/c", "c"))
	m.submit(up.hostname, frames(t, up.db, mark)...)
	m.settle()
	if a, _ := m.db.Account(did); a.Head != head(t, up.db, did) || a.Status != store.StatusActive {
		t.Fatalf("lean commit after the drop: %+v", a)
	}

	// A second lean start has nothing to drop and keeps the mode.
	m.restart(ident, leanMirror)
	m.idle()
	if mode, _ := m.db.MirrorMode(); mode != store.MirrorLean {
		t.Fatalf("mode %q", mode)
	}

	// Archive again: the next commit finds no tree and resyncs.
	m.restart(ident)
	mark = up.db.LastSeq()
	up.write(did, create("app.bsky.feed.post/d", "d"))
	m.submit(up.hostname, frames(t, up.db, mark)...)
	m.settle()
	caughtUp(t, "the resync", m.db, up, did)
	m.idle()
	sameRepo(t, up.db, m.db, did)
}

func uidOf(t *testing.T, db *store.DB, did string) uint64 {
	t.Helper()
	a, err := db.Account(did)
	if err != nil {
		t.Fatal(err)
	}
	return a.UID
}
