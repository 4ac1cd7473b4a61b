package api_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/car"
	"github.com/reservoir-atproto/reservoir/repo"
)

func TestGetRepoAndCheckout(t *testing.T) {
	h := newHarness(t)
	alice := h.createAccount("alice.test")
	key := h.signingKey(alice.did)
	want := model{}
	for i := range 40 {
		rkey := syntax.NewTIDFromInteger(uint64(1_700_000_000_000_000+i) << 10).String()
		rec := post(fmt.Sprintf("post %d", i))
		h.createRecord(alice, "app.bsky.feed.post", rkey, rec)
		want["app.bsky.feed.post/"+rkey] = recordCID(t, rec)
	}
	like := map[string]any{"$type": "app.bsky.feed.like", "subject": map[string]any{"uri": "at://" + alice.did + "/app.bsky.feed.post/x", "cid": want["app.bsky.feed.post/"+syntax.NewTIDFromInteger(uint64(1_700_000_000_000_000)<<10).String()].String()}}
	h.createRecord(alice, "app.bsky.feed.like", "self", like)
	want["app.bsky.feed.like/self"] = recordCID(t, like)

	head, rev := h.latest(alice.did)
	commit := verifyRepoCAR(t, h.query("com.atproto.sync.getRepo", q("did", alice.did)).car(), alice.did, key, head, want)
	if string(commit.Rev) != rev {
		t.Errorf("commit rev %s, getLatestCommit %s", commit.Rev, rev)
	}
	// getCheckout: the same repository, deprecated name.
	verifyRepoCAR(t, h.query("com.atproto.sync.getCheckout", q("did", alice.did)).car(), alice.did, key, head, want)
	// getHead agrees with getLatestCommit.
	if got := h.query("com.atproto.sync.getHead", q("did", alice.did)).ok("com.atproto.sync.getHead"); got["root"] != head.String() {
		t.Errorf("getHead %v, want %s", got, head)
	}
	// An empty since is no since.
	verifyRepoCAR(t, h.query("com.atproto.sync.getRepo", q("did", alice.did, "since", "")).car(), alice.did, key, head, want)
	// since = the current rev: only the root, no blocks.
	f := h.query("com.atproto.sync.getRepo", q("did", alice.did, "since", rev)).car()
	if len(f.roots) != 1 || f.roots[0] != head || len(f.order) != 0 {
		t.Errorf("getRepo since the head's rev: roots %v, %d blocks, want the root and nothing", f.roots, len(f.order))
	}
	// Unknown repositories.
	for _, nsid := range []string{"com.atproto.sync.getRepo", "com.atproto.sync.getCheckout", "com.atproto.sync.getLatestCommit", "com.atproto.sync.getHead"} {
		h.query(nsid, q("did", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")).fails(http.StatusNotFound, "RepoNotFound")
	}
}

// TestGetRepoSinceExact checks getRepo?since= against a model built from
// full exports: after each commit the test fetches the whole repository
// (verified on its own), and a block's rev is the first commit of the
// current unbroken run of exports that hold it. For every earlier rev R the
// answer must be exactly the live blocks whose rev is after R.
func TestGetRepoSinceExact(t *testing.T) {
	h := newHarness(t)
	alice := h.createAccount("alice.test")
	key := h.signingKey(alice.did)
	rng := rand.New(rand.NewPCG(1, 2))

	type state struct {
		rev  string
		live cidSet
	}
	var states []state
	records := model{}
	snapshot := func() {
		head, rev := h.latest(alice.did)
		f := h.query("com.atproto.sync.getRepo", q("did", alice.did)).car()
		verifyRepoCAR(t, f, alice.did, key, head, records)
		states = append(states, state{rev: rev, live: setOf(f.order...)})
	}
	snapshot()
	var paths []string
	for step := range 30 {
		switch op := rng.IntN(10); {
		case op < 5 || len(paths) < 3: // create one or a few
			var writes []any
			for range 1 + rng.IntN(3) {
				rkey := syntax.NewTIDFromInteger(uint64(1_700_000_000_000_000+rng.IntN(1_000_000)) << 10).String()
				if _, taken := records["app.bsky.feed.post/"+rkey]; taken {
					continue
				}
				rec := post(fmt.Sprintf("step %d %s", step, rkey))
				writes = append(writes, map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": "app.bsky.feed.post", "rkey": rkey, "value": rec})
				records["app.bsky.feed.post/"+rkey] = recordCID(t, rec)
				paths = append(paths, "app.bsky.feed.post/"+rkey)
			}
			if len(writes) == 0 {
				continue
			}
			h.procedure("com.atproto.repo.applyWrites", map[string]any{"repo": alice.did, "writes": writes}, alice.cred()).ok("com.atproto.repo.applyWrites")
		case op < 7: // update
			p := paths[rng.IntN(len(paths))]
			rkey := strings.TrimPrefix(p, "app.bsky.feed.post/")
			rec := post(fmt.Sprintf("updated at step %d", step))
			h.procedure("com.atproto.repo.putRecord", map[string]any{"repo": alice.did, "collection": "app.bsky.feed.post", "rkey": rkey, "record": rec}, alice.cred()).ok("com.atproto.repo.putRecord")
			records[p] = recordCID(t, rec)
		case op < 9: // delete
			i := rng.IntN(len(paths))
			p := paths[i]
			paths = append(paths[:i], paths[i+1:]...)
			h.deleteRecord(alice, "app.bsky.feed.post", strings.TrimPrefix(p, "app.bsky.feed.post/"))
			delete(records, p)
		default: // delete and re-create the same record: its blocks come back
			p := paths[rng.IntN(len(paths))]
			rkey := strings.TrimPrefix(p, "app.bsky.feed.post/")
			_, value := h.getRecordValue(alice.did, "app.bsky.feed.post", rkey)
			h.deleteRecord(alice, "app.bsky.feed.post", rkey)
			c := records[p]
			delete(records, p)
			snapshot()
			records[p] = c
			h.procedure("com.atproto.repo.createRecord", map[string]any{"repo": alice.did, "collection": "app.bsky.feed.post", "rkey": rkey, "record": value}, alice.cred()).ok("com.atproto.repo.createRecord")
		}
		snapshot()
	}

	final := states[len(states)-1]
	head, _ := h.latest(alice.did)
	// stored[b]: the rev of the first state of b's last unbroken run.
	stored := map[cid.Cid]string{}
	for b := range final.live {
		i := len(states) - 1
		for i > 0 && states[i-1].live[b] {
			i--
		}
		stored[b] = states[i].rev
	}
	for _, s := range states {
		want := cidSet{}
		for b, rev := range stored {
			if rev > s.rev {
				want[b] = true
			}
		}
		f := h.query("com.atproto.sync.getRepo", q("did", alice.did, "since", s.rev)).car()
		if len(f.roots) != 1 || f.roots[0] != head {
			t.Errorf("since %s: roots %v, want [%s]", s.rev, f.roots, head)
		}
		if d := want.diff(setOf(f.order...)); d != "" {
			t.Errorf("since %s: %s", s.rev, d)
		}
	}
	// A rev before the first commit: everything live.
	f := h.query("com.atproto.sync.getRepo", q("did", alice.did, "since", "2222222222222")).car()
	if d := final.live.diff(setOf(f.order...)); d != "" {
		t.Errorf("since a rev before the repository: %s", d)
	}
}

func TestSyncGetRecord(t *testing.T) {
	h := newHarness(t, func(o *harnessOptions) { o.historyWindow = time.Hour })
	alice := h.createAccount("alice.test")
	key := h.signingKey(alice.did)
	atOld := model{}
	for i := range 30 {
		rkey := syntax.NewTIDFromInteger(uint64(1_700_000_000_000_000+i*7919) << 10).String()
		h.createRecord(alice, "app.bsky.feed.post", rkey, post(strconv.Itoa(i)))
		atOld["app.bsky.feed.post/"+rkey] = recordCID(t, post(strconv.Itoa(i)))
	}
	v1 := map[string]any{"$type": "app.bsky.actor.profile", "displayName": "one"}
	h.createRecord(alice, "app.bsky.actor.profile", "self", v1)
	atOld["app.bsky.actor.profile/self"] = recordCID(t, v1)
	old, _ := h.latest(alice.did)

	proof := func(collection, rkey string, extra ...string) *repo.RecordProofResult {
		t.Helper()
		r := h.query("com.atproto.sync.getRecord", append(q("did", alice.did, "collection", collection, "rkey", rkey), extra...))
		f := r.car()
		if len(f.roots) != 1 {
			t.Fatalf("getRecord CAR roots %v", f.roots)
		}
		res, err := repo.VerifyRecordProof(r.body, syntax.DID(alice.did), key, collection+"/"+rkey)
		if err != nil {
			t.Fatalf("getRecord %s/%s: proof does not verify: %v", collection, rkey, err)
		}
		return res
	}
	// Present.
	res := proof("app.bsky.actor.profile", "self")
	if res.CommitCID != old || res.RecordCID != recordCID(t, v1) {
		t.Errorf("proof of presence: commit %s record %s, want %s %s", res.CommitCID, res.RecordCID, old, recordCID(t, v1))
	}
	// Absent, in a collection that exists and in one that does not: 200,
	// a proof of absence.
	for _, p := range [][2]string{{"app.bsky.feed.post", "3zzzzzzzzzzzz"}, {"app.bsky.feed.post", "2222222222222"}, {"com.example.none", "x"}} {
		if res := proof(p[0], p[1]); res.RecordCID.Defined() {
			t.Errorf("%s/%s: the proof shows record %s", p[0], p[1], res.RecordCID)
		}
	}

	// Update the profile; the old commit is still inside the history
	// window.
	v2 := map[string]any{"$type": "app.bsky.actor.profile", "displayName": "two"}
	h.procedure("com.atproto.repo.putRecord", map[string]any{"repo": alice.did, "collection": "app.bsky.actor.profile", "rkey": "self", "record": v2}, alice.cred()).ok("com.atproto.repo.putRecord")
	now, _ := h.latest(alice.did)
	if res := proof("app.bsky.actor.profile", "self"); res.CommitCID != now || res.RecordCID != recordCID(t, v2) {
		t.Errorf("after the update: commit %s record %s", res.CommitCID, res.RecordCID)
	}
	if res := proof("app.bsky.actor.profile", "self", "commit", old.String()); res.CommitCID != old || res.RecordCID != recordCID(t, v1) {
		t.Errorf("at the old commit: commit %s record %s, want %s %s", res.CommitCID, res.RecordCID, old, recordCID(t, v1))
	}
	// getCheckout at the old commit: the whole repository as it was.
	verifyRepoCAR(t, h.query("com.atproto.sync.getCheckout", q("did", alice.did, "commit", old.String())).car(), alice.did, key, old, atOld)
	atNow := atOld.clone()
	atNow["app.bsky.actor.profile/self"] = recordCID(t, v2)
	verifyRepoCAR(t, h.query("com.atproto.sync.getCheckout", q("did", alice.did, "commit", now.String())).car(), alice.did, key, now, atNow)

	// A commit CID that is no commit of this repository; a record CID.
	bob := h.createAccount("bob.test")
	bobHead, _ := h.latest(bob.did)
	for _, c := range []cid.Cid{bobHead, recordCID(t, v2)} {
		h.query("com.atproto.sync.getRecord", q("did", alice.did, "collection", "app.bsky.actor.profile", "rkey", "self", "commit", c.String())).
			fails(http.StatusBadRequest, "InvalidRequest")
		h.query("com.atproto.sync.getCheckout", q("did", alice.did, "commit", c.String())).fails(http.StatusBadRequest, "InvalidRequest")
	}

	// Past the history window the old commit is gone: a clear 400.
	h.clock.Advance(2 * time.Hour)
	if err := h.db.CollectGarbage(context.Background()); err != nil {
		t.Fatal(err)
	}
	msg := h.query("com.atproto.sync.getRecord", q("did", alice.did, "collection", "app.bsky.actor.profile", "rkey", "self", "commit", old.String())).
		fails(http.StatusBadRequest, "InvalidRequest")
	if !strings.Contains(msg, old.String()) {
		t.Errorf("message %q does not name the commit", msg)
	}
	h.query("com.atproto.sync.getCheckout", q("did", alice.did, "commit", old.String())).fails(http.StatusBadRequest, "InvalidRequest")
	verifyRepoCAR(t, h.query("com.atproto.sync.getCheckout", q("did", alice.did)).car(), alice.did, key, now, atNow)
	// The head is unaffected.
	if res := proof("app.bsky.actor.profile", "self"); res.RecordCID != recordCID(t, v2) {
		t.Errorf("after collection: record %s", res.RecordCID)
	}
	h.query("com.atproto.sync.getRecord", q("did", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "collection", "app.bsky.actor.profile", "rkey", "self")).
		fails(http.StatusNotFound, "RepoNotFound")
}

func TestGetBlocks(t *testing.T) {
	h := newHarness(t)
	alice := h.createAccount("alice.test")
	rec1, rec2 := post("one"), post("two")
	h.createRecord(alice, "app.bsky.feed.post", "3jzfcijpj2z2a", rec1)
	h.createRecord(alice, "app.bsky.feed.post", "3jzfcijpj2z2b", rec2)
	head, _ := h.latest(alice.did)
	c1, c2 := recordCID(t, rec1), recordCID(t, rec2)

	r := h.query("com.atproto.sync.getBlocks", q("did", alice.did, "cids", c1.String(), "cids", head.String(), "cids", c2.String()))
	f := r.car()
	if len(f.roots) != 0 {
		t.Errorf("getBlocks roots %v, want none", f.roots)
	}
	if want := setOf(c1, head, c2); want.diff(setOf(f.order...)) != "" || len(f.order) != 3 {
		t.Errorf("getBlocks blocks %v", f.order)
	}
	// A CID asked twice comes once.
	if f := h.query("com.atproto.sync.getBlocks", q("did", alice.did, "cids", c1.String(), "cids", c1.String())).car(); len(f.order) != 1 || f.order[0] != c1 {
		t.Errorf("getBlocks of one CID twice: %v", f.order)
	}
	// car.ParseBytes reads a zero-root CAR.
	roots, blocks, err := car.ParseBytes(r.body, nil)
	if err != nil || len(roots) != 0 || len(blocks) != 3 {
		t.Errorf("car.ParseBytes: roots %v, %d blocks, %v", roots, len(blocks), err)
	}
	if commit, err := repo.DecodeCommit(blocks[head]); err != nil || commit.DID != syntax.DID(alice.did) {
		t.Errorf("commit block: %v", err)
	}
	// Superseded blocks inside the history window are still served.
	h.deleteRecord(alice, "app.bsky.feed.post", "3jzfcijpj2z2a")
	h.query("com.atproto.sync.getBlocks", q("did", alice.did, "cids", c1.String(), "cids", head.String())).car()

	// Any missing block: BlockNotFound naming it.
	missing := recordCID(t, post("never written"))
	msg := h.query("com.atproto.sync.getBlocks", q("did", alice.did, "cids", c2.String(), "cids", missing.String())).fails(http.StatusNotFound, "BlockNotFound")
	if !strings.Contains(msg, missing.String()) || strings.Contains(msg, c2.String()) {
		t.Errorf("BlockNotFound message %q, want it to name %s only", msg, missing)
	}
	// Blocks are per repository.
	bob := h.createAccount("bob.test")
	h.query("com.atproto.sync.getBlocks", q("did", bob.did, "cids", c2.String())).fails(http.StatusNotFound, "BlockNotFound")
	h.query("com.atproto.sync.getBlocks", q("did", alice.did)).fails(http.StatusBadRequest, "InvalidRequest")
	h.query("com.atproto.sync.getBlocks", q("did", alice.did, "cids", "bafy")).fails(http.StatusBadRequest, "InvalidRequest")
	h.query("com.atproto.sync.getBlocks", q("did", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "cids", c2.String())).fails(http.StatusNotFound, "RepoNotFound")
	many := q("did", alice.did)
	for range 1001 {
		many = append(many, "cids", c2.String())
	}
	h.query("com.atproto.sync.getBlocks", many).fails(http.StatusBadRequest, "InvalidRequest")
}

func TestListRepos(t *testing.T) {
	h := newHarness(t)
	heads := map[string][2]string{} // did → head, rev
	for i := range 7 {
		a := h.createAccount(fmt.Sprintf("user%d.test", i))
		if i%2 == 0 {
			h.createRecord(a, "app.bsky.feed.post", "", post("x"))
		}
		c, rev := h.latest(a.did)
		heads[a.did] = [2]string{c.String(), rev}
	}
	// An adopted account without a commit is not listed.
	priv := newKey(t)
	h.procedure("com.atproto.server.createAccount", map[string]any{"handle": "adopted.test", "did": "did:web:adopted.example.com", "signingKey": priv}, asAdmin).ok("com.atproto.server.createAccount")

	for _, limit := range []int{1, 2, 3, 7, 500} {
		seen := map[string]bool{}
		cursor := ""
		for page := 0; ; page++ {
			params := q("limit", strconv.Itoa(limit))
			if cursor != "" {
				params = append(params, "cursor", cursor)
			}
			out := h.query("com.atproto.sync.listRepos", params).ok("com.atproto.sync.listRepos")
			repos, _ := out["repos"].([]any)
			if len(repos) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(repos))
			}
			for _, r := range repos {
				m := r.(map[string]any)
				did := m["did"].(string)
				if seen[did] {
					t.Errorf("limit %d: %s listed twice", limit, did)
				}
				seen[did] = true
				if want, ok := heads[did]; !ok || m["head"] != want[0] || m["rev"] != want[1] || m["active"] != true || m["status"] != nil {
					t.Errorf("limit %d: %v, want head %v, active", limit, m, heads[did])
				}
			}
			next, _ := out["cursor"].(string)
			if next == "" {
				break
			}
			if page > 10 {
				t.Fatal("listRepos does not end")
			}
			cursor = next
		}
		if len(seen) != len(heads) {
			t.Errorf("limit %d: listed %d repositories, want %d", limit, len(seen), len(heads))
		}
	}
	h.query("com.atproto.sync.listRepos", q("limit", "0")).fails(http.StatusBadRequest, "InvalidRequest")
	h.query("com.atproto.sync.listRepos", q("limit", "1001")).fails(http.StatusBadRequest, "InvalidRequest")
	h.query("com.atproto.sync.listRepos", q("limit", "ten")).fails(http.StatusBadRequest, "InvalidRequest")
	h.query("com.atproto.sync.listRepos", q("cursor", "not-a-cursor")).fails(http.StatusBadRequest, "InvalidRequest")
	h.query("com.atproto.sync.listRepos", q("limit", "1000")).ok("com.atproto.sync.listRepos")
}

func TestListReposByCollection(t *testing.T) {
	h := newHarness(t)
	var users []account
	for i := range 5 {
		users = append(users, h.createAccount(fmt.Sprintf("user%d.test", i)))
	}
	const coll = "com.example.thing"
	thing := map[string]any{"$type": coll, "n": 1}
	for _, u := range users[:4] {
		h.createRecord(u, coll, "a", thing)
	}
	h.createRecord(users[0], coll, "b", thing)
	h.createRecord(users[4], "app.bsky.feed.post", "", post("elsewhere"))

	list := func(limit int) []string {
		t.Helper()
		var dids []string
		cursor := ""
		for page := 0; ; page++ {
			params := q("collection", coll, "limit", strconv.Itoa(limit))
			if cursor != "" {
				params = append(params, "cursor", cursor)
			}
			out := h.query("com.atproto.sync.listReposByCollection", params).ok("com.atproto.sync.listReposByCollection")
			repos, _ := out["repos"].([]any)
			if len(repos) > limit {
				t.Fatalf("page of %d with limit %d", len(repos), limit)
			}
			for _, r := range repos {
				dids = append(dids, r.(map[string]any)["did"].(string))
			}
			next, _ := out["cursor"].(string)
			if next == "" {
				return dids
			}
			if page > 10 {
				t.Fatal("listReposByCollection does not end")
			}
			cursor = next
		}
	}
	check := func(name string, want ...account) {
		t.Helper()
		for _, limit := range []int{1, 2, 500} {
			got := list(limit)
			wantSet, gotSet := map[string]bool{}, map[string]bool{}
			for _, a := range want {
				wantSet[a.did] = true
			}
			for _, d := range got {
				gotSet[d] = true
			}
			if len(got) != len(want) || len(gotSet) != len(wantSet) || fmt.Sprint(gotSet) != fmt.Sprint(wantSet) {
				t.Errorf("%s, limit %d: %v, want %v", name, limit, got, wantSet)
			}
		}
	}
	check("four repositories", users[:4]...)

	// Hidden while taken down; back after reactivation.
	h.adminAction(users[1].did, "takedown")
	check("one taken down", users[0], users[2], users[3])
	h.adminAction(users[1].did, "reactivate")
	check("reactivated", users[:4]...)

	// Gone once its last record of the collection is; users[0] has two.
	h.deleteRecord(users[2], coll, "a")
	h.deleteRecord(users[0], coll, "a")
	check("after deletes", users[0], users[1], users[3])
	h.deleteRecord(users[0], coll, "b")
	check("after the last delete", users[1], users[3])

	h.query("com.atproto.sync.listReposByCollection", q("collection", coll, "limit", "2000")).ok("com.atproto.sync.listReposByCollection")
	h.query("com.atproto.sync.listReposByCollection", q("collection", coll, "limit", "2001")).fails(http.StatusBadRequest, "InvalidRequest")
	h.query("com.atproto.sync.listReposByCollection", q("collection", coll, "limit", "0")).fails(http.StatusBadRequest, "InvalidRequest")
	h.query("com.atproto.sync.listReposByCollection", q("collection", "not an nsid")).fails(http.StatusBadRequest, "InvalidRequest")
	h.query("com.atproto.sync.listReposByCollection", nil).fails(http.StatusBadRequest, "InvalidRequest")
	h.query("com.atproto.sync.listReposByCollection", q("collection", coll, "cursor", "x")).fails(http.StatusBadRequest, "InvalidRequest")
}
