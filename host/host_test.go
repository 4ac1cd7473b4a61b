package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/car"
	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/mst"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
)

type fakeDIDs struct {
	mu   sync.Mutex
	n    int
	keys map[string]atcrypto.PublicKey
}

func (f *fakeDIDs) CreateDID(ctx context.Context, handle string, signing, rotation atcrypto.PrivateKey, endpoint string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	did := fmt.Sprintf("did:plc:fake%020d", f.n)
	pub, _ := signing.PublicKey()
	f.keys[did] = pub
	return did, nil
}

type env struct {
	t     *testing.T
	db    *store.DB
	repos *repostore.Repos
	host  *Host
	dids  *fakeDIDs
}

func newEnv(t *testing.T) *env {
	t.Helper()
	db, err := store.Open(store.Options{InMemory: true, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	dids := &fakeDIDs{keys: map[string]atcrypto.PublicKey{}}
	repos := &repostore.Repos{DB: db}
	return &env{t: t, db: db, repos: repos, dids: dids, host: New(Options{DB: db, Repos: repos, DIDs: dids, PublicURL: "https://pds.test"})}
}

func record(text string) []byte {
	b, _ := dagcbor.Marshal(map[string]any{"$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-11-25T00:00:00Z"})
	return b
}

// frame is a decoded firehose frame.
type frame struct {
	t    string
	body map[string]any
}

func (e *env) events(after int64) []frame {
	var out []frame
	if err := e.db.Events(after, func(ev store.CommittedEvent) error {
		d := dagcbor.NewDecoder(ev.Frame)
		h, err := d.ReadValue()
		if err != nil {
			return err
		}
		body, err := d.ReadValue()
		if err != nil {
			return err
		}
		if err := d.Done(); err != nil {
			return err
		}
		m := body.(map[string]any)
		if m["seq"] != ev.Seq {
			return fmt.Errorf("frame at seq %d carries seq %v", ev.Seq, m["seq"])
		}
		out = append(out, frame{t: h.(map[string]any)["t"].(string), body: m})
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// commitMessage turns a decoded #commit body into what the verifier reads.
func commitMessage(t *testing.T, body map[string]any) *repo.CommitMessage {
	m := &repo.CommitMessage{Repo: body["repo"].(string), Rev: body["rev"].(string), Commit: body["commit"].(cid.Cid), Blocks: body["blocks"].([]byte)}
	if s, ok := body["since"].(string); ok {
		m.Since = s
	}
	if p, ok := body["prevData"].(cid.Cid); ok {
		m.PrevData = p
	}
	for _, o := range body["ops"].([]any) {
		om := o.(map[string]any)
		op := repo.Op{Action: repo.Action(om["action"].(string)), Path: om["path"].(string)}
		if c, ok := om["cid"].(cid.Cid); ok {
			op.CID = c
		}
		if c, ok := om["prev"].(cid.Cid); ok {
			op.Prev = c
		}
		m.Ops = append(m.Ops, op)
	}
	return m
}

// checkLiveSet asserts that the store's live blocks of the account are
// exactly what its head reaches: the commit, every MST node, every record.
func (e *env) checkLiveSet(did string) {
	e.t.Helper()
	a, err := e.db.Account(did)
	if err != nil {
		e.t.Fatal(err)
	}
	want := map[cid.Cid]bool{a.Head.Commit: true}
	var walkNodes func(c cid.Cid)
	walkNodes = func(c cid.Cid) {
		want[c] = true
		data, _, err := e.db.Block(a.UID, c)
		if err != nil {
			e.t.Fatalf("node %s: %v", c, err)
		}
		v, _ := dagcbor.Unmarshal(data)
		n := v.(map[string]any)
		if l, ok := n["l"].(cid.Cid); ok {
			walkNodes(l)
		}
		for _, en := range n["e"].([]any) {
			em := en.(map[string]any)
			want[em["v"].(cid.Cid)] = true
			if tt, ok := em["t"].(cid.Cid); ok {
				walkNodes(tt)
			}
		}
	}
	walkNodes(a.Head.Data)
	got := map[cid.Cid]bool{}
	if err := e.db.LiveBlocks(a.UID, func(c cid.Cid, _ []byte) error { got[c] = true; return nil }); err != nil {
		e.t.Fatal(err)
	}
	if len(got) != len(want) {
		e.t.Fatalf("%s: %d live blocks, head reaches %d", did, len(got), len(want))
	}
	for c := range want {
		if !got[c] {
			e.t.Fatalf("%s: reachable block %s is not live", did, c)
		}
	}
}

func TestCreateAccountEmitsTheReferenceSequence(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	acct, err := e.host.CreateAccount(ctx, CreateAccountInput{Handle: "Alice.Test"})
	if err != nil {
		t.Fatal(err)
	}
	if acct.Handle != "alice.test" {
		t.Fatalf("handle not normalized: %s", acct.Handle)
	}
	evs := e.events(0)
	var types []string
	for _, f := range evs {
		types = append(types, f.t)
	}
	if fmt.Sprint(types) != "[#identity #account #commit #sync]" {
		t.Fatalf("events %v", types)
	}
	if evs[0].body["handle"] != "alice.test" || evs[1].body["active"] != true {
		t.Fatalf("identity/account bodies: %v %v", evs[0].body, evs[1].body)
	}
	msg := commitMessage(t, evs[2].body)
	if msg.Since != "" || msg.PrevData.Defined() || len(msg.Ops) != 0 {
		t.Fatalf("first commit: since %q prevData %s ops %d", msg.Since, msg.PrevData, len(msg.Ops))
	}
	if _, err := repo.VerifyCommitMessage(msg, repo.VerifyOptions{Key: e.dids.keys[acct.DID]}); err != nil {
		t.Fatalf("first commit does not verify: %v", err)
	}
	syncMsg := &repo.SyncMessage{DID: acct.DID, Rev: evs[3].body["rev"].(string), Blocks: evs[3].body["blocks"].([]byte)}
	if _, c, err := repo.VerifySyncMessage(syncMsg, e.dids.keys[acct.DID]); err != nil || c != msg.Commit {
		t.Fatalf("#sync: %v (commit %s, want %s)", err, c, msg.Commit)
	}
	if len(syncMsg.Blocks) > 10_000 {
		t.Fatalf("#sync blocks %d bytes", len(syncMsg.Blocks))
	}
	did, err := e.host.AccountForToken(ctx, acct.Token)
	if err != nil || did != acct.DID {
		t.Fatalf("token: %s %v", did, err)
	}
	if _, err := e.host.AccountForToken(ctx, acct.Token+"x"); !errors.Is(err, ErrBadToken) {
		t.Fatal("a tampered token was accepted")
	}
	if _, err := e.host.CreateAccount(ctx, CreateAccountInput{Handle: "alice.test"}); !errors.Is(err, ErrHandleTaken) {
		t.Fatalf("duplicate handle: %v", err)
	}
	if _, err := e.host.CreateAccount(ctx, CreateAccountInput{Handle: "not a handle"}); !errors.Is(err, ErrInvalidHandle) {
		t.Fatalf("bad handle: %v", err)
	}
	e.checkLiveSet(acct.DID)
}

func TestAdoptedIdentity(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key, _ := atcrypto.GeneratePrivateKeyP256()
	acct, err := e.host.CreateAccount(ctx, CreateAccountInput{Handle: "bob.test", DID: "did:web:bob.test", SigningKey: key.Multibase()})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, f := range e.events(0) {
		types = append(types, f.t)
	}
	if fmt.Sprint(types) != "[#identity #account]" || acct.DID != "did:web:bob.test" {
		t.Fatalf("adopted account events %v", types)
	}
	seq := e.db.LastSeq()
	if _, err := e.host.ApplyWrites(ctx, acct.DID, []Write{{Write: repo.Write{Action: repo.ActionCreate, Path: "app.bsky.feed.post/a", Record: record("a")}}}, cid.Undef); err != nil {
		t.Fatal(err)
	}
	pub, _ := key.PublicKey()
	msg := commitMessage(t, e.events(seq)[0].body)
	if msg.Since != "" || msg.PrevData.Defined() {
		t.Fatalf("first commit of an adopted account: since %q prevData %s", msg.Since, msg.PrevData)
	}
	if _, err := repo.VerifyCommitMessage(msg, repo.VerifyOptions{Key: pub}); err != nil {
		t.Fatalf("adopted key does not sign: %v", err)
	}
	e.checkLiveSet(acct.DID)
	if _, err := e.host.CreateAccount(ctx, CreateAccountInput{Handle: "carol.test", DID: "did:web:carol.test", SigningKey: "zNope"}); !errors.Is(err, ErrBadKey) {
		t.Fatalf("bad key: %v", err)
	}
}

// A random history of writes: every #commit verifies against the previous
// state, the live set stays exactly the reachable set, proofs verify, and
// getRepo (full, and since every rev) rebuilds the same tree.
func TestWritesHistoryAndReads(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	acct, err := e.host.CreateAccount(ctx, CreateAccountInput{Handle: "alice.test"})
	if err != nil {
		t.Fatal(err)
	}
	key := e.dids.keys[acct.DID]
	rng := rand.New(rand.NewSource(1))
	live := map[string]bool{}
	var paths []string
	var revs []string
	lastSeq := e.db.LastSeq()
	var state *repo.RepoState
	for _, f := range e.events(0) {
		if f.t == "#commit" {
			st := repo.RepoState{Rev: syntax.TID(f.body["rev"].(string)), Data: mustData(t, e, f.body)}
			state = &st
		}
	}
	for i := 0; i < 120; i++ {
		var ws []Write
		used := map[string]bool{}
		for j := 0; j < 1+rng.Intn(5); j++ {
			switch x := rng.Intn(10); {
			case x < 2 && len(paths) > 0:
				p := paths[rng.Intn(len(paths))]
				if live[p] && !used[p] {
					used[p] = true
					ws = append(ws, Write{Write: repo.Write{Action: repo.ActionDelete, Path: p}})
				}
			case x < 4 && len(paths) > 0:
				p := paths[rng.Intn(len(paths))]
				if live[p] && !used[p] {
					used[p] = true
					ws = append(ws, Write{Write: repo.Write{Action: repo.ActionUpdate, Path: p, Record: record(fmt.Sprint(rng.Int()))}})
				}
			default:
				p := fmt.Sprintf("app.bsky.feed.post/%s", syntax.NewTIDFromInteger(uint64(rng.Int63())))
				if x == 9 && len(paths) > 0 {
					// the same record content as another path
					ws = append(ws, Write{Write: repo.Write{Action: repo.ActionCreate, Path: "app.bsky.feed.like/" + string(syntax.NewTIDFromInteger(uint64(rng.Int63()))), Record: record("dup")}})
					continue
				}
				if !used[p] {
					used[p] = true
					ws = append(ws, Write{Write: repo.Write{Action: repo.ActionCreate, Path: p, Record: record(fmt.Sprint(rng.Int()))}})
				}
			}
		}
		if len(ws) == 0 {
			continue
		}
		res, err := e.host.ApplyWrites(ctx, acct.DID, ws, cid.Undef)
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		for _, op := range res.Ops {
			if op.Action == repo.ActionDelete {
				delete(live, op.Path)
			} else {
				if !live[op.Path] {
					paths = append(paths, op.Path)
				}
				live[op.Path] = true
			}
		}
		revs = append(revs, res.Rev)
		evs := e.events(lastSeq)
		if len(evs) != 1 || evs[0].t != "#commit" {
			t.Fatalf("write %d emitted %d events", i, len(evs))
		}
		lastSeq = e.db.LastSeq()
		v, err := repo.VerifyCommitMessage(commitMessage(t, evs[0].body), repo.VerifyOptions{Key: key, Prev: state})
		if err != nil {
			t.Fatalf("write %d: #commit does not verify: %v", i, err)
		}
		st := v.State()
		state = &st
		if i%20 == 0 {
			e.checkLiveSet(acct.DID)
		}
	}
	e.checkLiveSet(acct.DID)
	a, _ := e.db.Account(acct.DID)

	// Record index and proofs agree with the tree.
	tree, _ := e.repos.Tree(a)
	n := 0
	if err := tree.Walk(nil, func(k []byte, v cid.Cid) error {
		n++
		if ok, err := e.db.HasRecord(a.UID, string(k)); err != nil || !ok {
			return fmt.Errorf("record index lacks %s (%v)", k, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != len(live) {
		t.Fatalf("tree has %d records, model %d", n, len(live))
	}
	counts, _, _ := e.db.Collections(a.UID)
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total != uint64(len(live)) {
		t.Fatalf("collection counts sum to %d, want %d", total, len(live))
	}
	for p := range live {
		proof, found, err := e.repos.RecordProof(a, p)
		if err != nil || !found {
			t.Fatalf("proof %s: %v %v", p, found, err)
		}
		if _, err := repo.VerifyRecordProof(proof, syntax.DID(a.DID), key, p); err != nil {
			t.Fatalf("proof %s: %v", p, err)
		}
		break
	}

	// getRepo: the full export loads as the same tree; each since export,
	// applied over the export at that rev, gives the full set.
	var full bytes.Buffer
	if err := e.repos.WriteRepo(&full, a, ""); err != nil {
		t.Fatal(err)
	}
	roots, blocks, err := car.ReadAll(&full, nil)
	if err != nil || roots[0] != a.Head.Commit {
		t.Fatalf("export: %v", err)
	}
	exported, err := mst.Load(mst.MemBlocks(blocks), a.Head.Data)
	if err != nil {
		t.Fatal(err)
	}
	if err := exported.Verify(); err != nil {
		t.Fatalf("exported tree: %v", err)
	}
	for i := 0; i < len(revs)-1; i += 17 {
		var since bytes.Buffer
		if err := e.repos.WriteRepo(&since, a, revs[i]); err != nil {
			t.Fatal(err)
		}
		_, newer, err := car.ReadAll(&since, nil)
		if err != nil {
			t.Fatal(err)
		}
		for c := range newer {
			if _, ok := blocks[c]; !ok {
				t.Fatalf("since %s returned %s, which the repo does not hold", revs[i], c)
			}
		}
		if _, ok := newer[a.Head.Commit]; !ok {
			t.Fatalf("since %s lacks the head commit", revs[i])
		}
	}
	var none bytes.Buffer
	if err := e.repos.WriteRepo(&none, a, a.Head.Rev); err != nil {
		t.Fatal(err)
	}
	if _, newer, _ := car.ReadAll(&none, nil); len(newer) != 0 {
		t.Fatalf("since the head rev returned %d blocks", len(newer))
	}
}

func mustData(t *testing.T, e *env, body map[string]any) cid.Cid {
	t.Helper()
	_, blocks, err := car.ParseBytes(body["blocks"].([]byte), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.DecodeCommit(blocks[body["commit"].(cid.Cid)])
	if err != nil {
		t.Fatal(err)
	}
	return c.Data
}

func TestSwapsAndRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	acct, _ := e.host.CreateAccount(ctx, CreateAccountInput{Handle: "alice.test"})
	p := "app.bsky.feed.post/3lbmqhtxvhs2c"
	res, err := e.host.ApplyWrites(ctx, acct.DID, []Write{{Write: repo.Write{Action: repo.ActionCreate, Path: p, Record: record("a")}}}, cid.Undef)
	if err != nil {
		t.Fatal(err)
	}
	stale := dagcbor.SumCBOR(record("nope"))
	if _, err := e.host.ApplyWrites(ctx, acct.DID, []Write{{Write: repo.Write{Action: repo.ActionUpdate, Path: p, Record: record("b")}}}, stale); !errors.Is(err, ErrInvalidSwap) {
		t.Fatalf("stale swapCommit: %v", err)
	}
	if _, err := e.host.ApplyWrites(ctx, acct.DID, []Write{{Write: repo.Write{Action: repo.ActionUpdate, Path: p, Record: record("b")}, SwapRecord: stale, SwapSet: true}}, cid.Undef); !errors.Is(err, ErrInvalidSwap) {
		t.Fatalf("stale swapRecord: %v", err)
	}
	if _, err := e.host.ApplyWrites(ctx, acct.DID, []Write{{Write: repo.Write{Action: repo.ActionUpdate, Path: p, Record: record("b")}, SwapRecord: dagcbor.SumCBOR(record("a")), SwapSet: true}}, res.Commit); err != nil {
		t.Fatalf("matching swaps refused: %v", err)
	}
	if _, err := e.host.ApplyWrites(ctx, "did:plc:nobody", nil, cid.Undef); !errors.Is(err, ErrRepoNotFound) {
		t.Fatalf("unknown repo: %v", err)
	}
	if err := e.host.SetStatus(ctx, acct.DID, store.StatusTakendown); err != nil {
		t.Fatal(err)
	}
	if _, err := e.host.ApplyWrites(ctx, acct.DID, []Write{{Write: repo.Write{Action: repo.ActionDelete, Path: p}}}, cid.Undef); !errors.Is(err, ErrNotActive) {
		t.Fatalf("write to a taken-down repo: %v", err)
	}
}

func TestStatusAndDeletion(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	acct, _ := e.host.CreateAccount(ctx, CreateAccountInput{Handle: "alice.test"})
	if _, err := e.host.ApplyWrites(ctx, acct.DID, []Write{{Write: repo.Write{Action: repo.ActionCreate, Path: "app.bsky.feed.post/a", Record: record("a")}}}, cid.Undef); err != nil {
		t.Fatal(err)
	}
	seq := e.db.LastSeq()
	if err := e.host.SetStatus(ctx, acct.DID, store.StatusDeactivated); err != nil {
		t.Fatal(err)
	}
	if err := e.host.SetStatus(ctx, acct.DID, store.StatusActive); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, f := range e.events(seq) {
		types = append(types, f.t)
	}
	if fmt.Sprint(types) != "[#account #account #identity #sync]" {
		t.Fatalf("status events %v", types)
	}
	if err := e.host.DeleteAccount(ctx, acct.DID); err != nil {
		t.Fatal(err)
	}
	evs := e.events(0)
	if len(evs) != 1 || evs[0].t != "#account" || evs[0].body["status"] != "deleted" {
		t.Fatalf("after deletion the log holds %d events: %v", len(evs), evs)
	}
	a, _ := e.db.Account(acct.DID)
	if a.Status != store.StatusDeleted || a.Head.Defined() {
		t.Fatalf("deleted account: %+v", a)
	}
	if uids, _ := e.db.ReposByCollection("app.bsky.feed.post", 0, 10); len(uids) != 0 {
		t.Fatal("deleted repo still in the collection index")
	}
	if _, err := e.host.CreateAccount(ctx, CreateAccountInput{Handle: "alice.test"}); err != nil {
		t.Fatalf("the handle of a deleted account is not free: %v", err)
	}
}

// Writers on many repositories at once, and several on the same one: every
// write lands, per-repo commits chain, seqs are unique.
func TestConcurrentWriters(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const repos, writers, each = 6, 3, 15
	var dids []string
	for i := 0; i < repos; i++ {
		a, err := e.host.CreateAccount(ctx, CreateAccountInput{Handle: fmt.Sprintf("u%d.test", i)})
		if err != nil {
			t.Fatal(err)
		}
		dids = append(dids, a.DID)
	}
	var wg sync.WaitGroup
	errs := make(chan error, repos*writers)
	for _, did := range dids {
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(did string, w int) {
				defer wg.Done()
				for i := 0; i < each; i++ {
					p := fmt.Sprintf("app.bsky.feed.post/w%di%d", w, i)
					if _, err := e.host.ApplyWrites(ctx, did, []Write{{Write: repo.Write{Action: repo.ActionCreate, Path: p, Record: record(p)}}}, cid.Undef); err != nil {
						errs <- err
						return
					}
				}
			}(did, w)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, did := range dids {
		a, _ := e.db.Account(did)
		if n, _ := e.db.CollectionCount(a.UID, "app.bsky.feed.post"); n != writers*each {
			t.Fatalf("%s holds %d records, want %d", did, n, writers*each)
		}
		e.checkLiveSet(did)
	}
	// Each repository's commits chain: since = previous rev, in seq order.
	last := map[string]string{}
	for _, f := range e.events(0) {
		if f.t != "#commit" {
			continue
		}
		r := f.body["repo"].(string)
		since, _ := f.body["since"].(string)
		if since != last[r] {
			t.Fatalf("%s: commit since %q, previous rev %q", r, since, last[r])
		}
		last[r] = f.body["rev"].(string)
	}
}

// A record written again at a second path is not new: getRepo?since= the
// first commit must not send its block again (the reference PDS keeps the
// rev that first stored a block).
func TestSinceDoesNotResendAStoredRecord(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	acct, _ := e.host.CreateAccount(ctx, CreateAccountInput{Handle: "alice.test"})
	same := record("same bytes")
	r1, err := e.host.ApplyWrites(ctx, acct.DID, []Write{{Write: repo.Write{Action: repo.ActionCreate, Path: "app.bsky.feed.post/a", Record: same}}}, cid.Undef)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.host.ApplyWrites(ctx, acct.DID, []Write{{Write: repo.Write{Action: repo.ActionCreate, Path: "app.bsky.feed.post/b", Record: same}}}, cid.Undef); err != nil {
		t.Fatal(err)
	}
	a, _ := e.db.Account(acct.DID)
	var buf bytes.Buffer
	if err := e.repos.WriteRepo(&buf, a, r1.Rev); err != nil {
		t.Fatal(err)
	}
	_, blocks, err := car.ReadAll(&buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := blocks[dagcbor.SumCBOR(same)]; ok {
		t.Fatal("since the first commit, getRepo sends the record block again")
	}
	if n, _ := e.db.RefCount(a.UID, dagcbor.SumCBOR(same)); n != 2 {
		t.Fatalf("the record is referenced %d times, want 2", n)
	}
	// Deleting one path keeps the block; deleting both lets it go.
	if _, err := e.host.ApplyWrites(ctx, acct.DID, []Write{{Write: repo.Write{Action: repo.ActionDelete, Path: "app.bsky.feed.post/a"}}}, cid.Undef); err != nil {
		t.Fatal(err)
	}
	if _, live, err := e.db.Block(a.UID, dagcbor.SumCBOR(same)); err != nil || !live {
		t.Fatal("a record still referenced by one path is no longer live")
	}
	if _, err := e.host.ApplyWrites(ctx, acct.DID, []Write{{Write: repo.Write{Action: repo.ActionDelete, Path: "app.bsky.feed.post/b"}}}, cid.Undef); err != nil {
		t.Fatal(err)
	}
	if _, live, _ := e.db.Block(a.UID, dagcbor.SumCBOR(same)); live {
		t.Fatal("a record no path references is still live")
	}
	e.checkLiveSet(acct.DID)
}

// getRepo writes the commit block first, as the spec's streamable order
// starts.
func TestExportStartsWithTheCommit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	acct, _ := e.host.CreateAccount(ctx, CreateAccountInput{Handle: "alice.test"})
	for i := 0; i < 20; i++ {
		if _, err := e.host.ApplyWrites(ctx, acct.DID, []Write{{Write: repo.Write{Action: repo.ActionCreate, Path: fmt.Sprintf("app.bsky.feed.post/r%d", i), Record: record(fmt.Sprint(i))}}}, cid.Undef); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := e.db.Account(acct.DID)
	var buf bytes.Buffer
	if err := e.repos.WriteRepo(&buf, a, ""); err != nil {
		t.Fatal(err)
	}
	rd, err := car.NewReader(&buf, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, _, err := rd.Next()
	if err != nil || first != a.Head.Commit {
		t.Fatalf("first block %s, want the commit %s (%v)", first, a.Head.Commit, err)
	}
	n := 1
	for {
		c, _, err := rd.Next()
		if err != nil {
			break
		}
		if c == a.Head.Commit {
			t.Fatal("the commit block is written twice")
		}
		n++
	}
	if n < 21 {
		t.Fatalf("export has %d blocks", n)
	}
}
