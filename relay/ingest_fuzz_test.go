package relay_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/mst"
	"github.com/reservoir-atproto/reservoir/relay"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
)

// The fuzz target's world: one account whose PDS is fuzzHost (nothing
// listens there, so resyncs fail at once), its genesis commit applied, and
// the frames of its next commit to mutate.
const fuzzHost = "127.0.0.1:1"

type fuzzWorld struct {
	did      string
	key      atcrypto.PublicKey
	genesis  []byte // #commit frame, since null
	next     []byte // #commit frame continuing it
	nextSync []byte // #sync of next
	state    repo.RepoState
	ident    *fakeIdentity
}

var (
	fuzzOnce sync.Once
	theWorld *fuzzWorld
)

func theFuzzWorld(t testing.TB) *fuzzWorld {
	fuzzOnce.Do(func() {
		priv, err := atcrypto.GeneratePrivateKeyK256()
		if err != nil {
			t.Fatal(err)
		}
		pub, _ := priv.PublicKey()
		w := &fuzzWorld{did: newDID(), key: pub, ident: newFakeIdentity()}
		w.ident.set(w.did, pub, "http://"+fuzzHost, "fuzz.test")
		clock := repo.NewRevClock(1)
		tree := mst.NewEmpty(mst.MemBlocks{})
		opts := repo.CommitOptions{DID: syntax.DID(w.did), Key: priv, Clock: clock}
		first, err := repo.BuildCommit(tree, nil, []repo.Write{create("app.bsky.feed.post/a", "a"), create("app.bsky.feed.post/b", "b")}, opts)
		if err != nil {
			t.Fatal(err)
		}
		w.state = repo.RepoState{Rev: first.Commit.Rev, Data: first.Commit.Data}
		second, err := repo.BuildCommit(tree, first.Commit, []repo.Write{create("app.bsky.feed.post/c", "c"), update("app.bsky.feed.post/a", "a2"), del("app.bsky.feed.post/b")}, opts)
		if err != nil {
			t.Fatal(err)
		}
		enc := func(r *repo.CommitResult, seq int64) []byte {
			return (&wire.Commit{Repo: w.did, Rev: string(r.Commit.Rev), Since: string(r.Since), Commit: r.CID, PrevData: r.PrevData, Blocks: r.Slice, Ops: r.Ops, Time: testTime}).AppendFrame(nil, seq)
		}
		w.genesis, w.next = enc(first, 1), enc(second, 2)
		w.nextSync = repostore.SyncEvent(w.did, second.CID, second.Commit.Bytes(), string(second.Commit.Rev), testTime)(nil, 3)
		theWorld = w
	})
	return theWorld
}

// fuzzMirror is a mirror whose account is at the genesis commit.
type fuzzMirror struct {
	db     *store.DB
	ingest *relay.Ingest
	done   chan int64
}

func (w *fuzzWorld) newMirror(t testing.TB) *fuzzMirror {
	db, err := store.Open(store.Options{InMemory: true, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	fm := &fuzzMirror{db: db, done: make(chan int64, 16)}
	fm.ingest, err = relay.NewIngest(relay.IngestOptions{
		DB: db, Repos: &repostore.Repos{DB: db}, Identity: w.ident, Workers: 2, AllowInsecure: true,
		OnDone:        func(_ string, seq int64) { fm.done <- seq },
		ResyncBackoff: time.Hour, ResyncTimeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	fm.submit(t, w.genesis)
	if a, err := db.Account(w.did); err != nil || string(a.Head.Rev) != string(w.state.Rev) {
		t.Fatalf("genesis not applied: %v", err)
	}
	return fm
}

func (fm *fuzzMirror) close() {
	fm.ingest.Close()
	fm.db.Close()
}

// submit hands one frame over and waits for its OnDone and for every queue
// (a resync included) to be gone.
func (fm *fuzzMirror) submit(t testing.TB, data []byte) {
	if err := fm.ingest.Submit(context.Background(), fuzzHost, 7, data); err != nil {
		t.Fatal(err)
	}
	select {
	case <-fm.done:
	case <-time.After(10 * time.Second):
		t.Fatal("no OnDone")
	}
	deadline := time.Now().Add(10 * time.Second)
	for fm.ingest.Stats() != (relay.QueueStats{}) {
		if time.Now().After(deadline) {
			t.Fatalf("ingest busy: %+v", fm.ingest.Stats())
		}
		time.Sleep(100 * time.Microsecond)
	}
}

var fuzzState struct {
	sync.Mutex
	m *fuzzMirror
}

// Any frame, however mangled: no panic, exactly one OnDone, and nothing
// forwarded that a consumer would refuse: every #commit we emit verifies
// against the account's key and the state before it.
func FuzzIngestSubmit(f *testing.F) {
	w := theFuzzWorld(f)
	f.Add(w.next)
	f.Add(w.nextSync)
	f.Add(w.genesis)
	f.Add((&wire.Identity{DID: w.did, Handle: "fuzz.test", Time: testTime}).AppendFrame(nil, 4))
	f.Add((&wire.Account{DID: w.did, Active: false, Status: "deactivated", Time: testTime}).AppendFrame(nil, 5))
	f.Add(wire.InfoFrame("OutdatedCursor", ""))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzState.Lock()
		defer fuzzState.Unlock()
		fm := fuzzState.m
		if fm != nil { // back to the genesis state, or a fresh mirror
			a, err := fm.db.Account(w.did)
			if err != nil || a.Head.Rev != string(w.state.Rev) {
				fm.close()
				fm = nil
			} else if a.Status != store.StatusActive || a.Upstream != store.StatusActive {
				a.Status, a.Upstream = store.StatusActive, store.StatusActive
				if _, err := fm.db.Apply(context.Background(), &store.Change{UID: a.UID, Account: a, OldHandle: a.Handle}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if fm == nil {
			fm = w.newMirror(t)
			fuzzState.m = fm
		}
		mark := fm.db.LastSeq()
		fm.submit(t, data)
		for _, d := range decodeLog(t, fm.db, mark) {
			switch ev := d.ev.(type) {
			case *wire.CommitEvent:
				prev := w.state
				if _, err := repo.VerifyCommitMessage(ev.Message(), repo.VerifyOptions{Key: w.key, Prev: &prev}); err != nil {
					t.Fatalf("forwarded a commit that does not verify: %v", err)
				}
			case *wire.SyncEvent:
				t.Fatal("a #sync without a resync")
			}
		}
	})
}
