package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

func openMem(t *testing.T, opts Options) *DB {
	t.Helper()
	opts.InMemory = true
	if opts.GCInterval == 0 {
		opts.GCInterval = -1
	}
	db, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func block(s string) Block {
	b, _ := dagcbor.Marshal(map[string]any{"v": s})
	return Block{CID: dagcbor.SumCBOR(b), Data: b}
}

// seqFrame is a FrameEncoder writing the seq and a label, so tests can check
// that each frame was encoded with its own seq.
func seqFrame(label string) FrameEncoder {
	return func(b []byte, seq int64) []byte {
		return fmt.Appendf(b, "%s@%d", label, seq)
	}
}

const (
	rev1 = "3lbmqhtxvhs2a"
	rev2 = "3lbmqhtxvhs2b"
	rev3 = "3lbmqhtxvhs2c"
)

func TestCreateAndRead(t *testing.T) {
	db := openMem(t, Options{})
	ctx := context.Background()
	commit, node, rec := block("commit"), block("node"), block("record")
	acct := &Account{DID: "did:plc:alice", Handle: "alice.test", Hosted: true, CreatedAt: time.Unix(100, 0).UTC()}
	res, err := db.Apply(ctx, &Change{
		Account:     acct,
		Secret:      []byte("secret"),
		Head:        &Head{Commit: commit.CID, Rev: rev1, Data: node.CID},
		NewBlocks:   []Block{commit, node, rec},
		Records:     []RecordWrite{{Path: "app.bsky.feed.post/a", CID: rec.CID}},
		RefCounts:   []RefCount{{CID: rec.CID, Count: 1}},
		Collections: []CollectionCount{{Collection: "app.bsky.feed.post", Count: 1}},
		Events:      []FrameEncoder{seqFrame("identity"), seqFrame("commit")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.UID != 1 || !slices.Equal(res.Seqs, []int64{1, 2}) {
		t.Fatalf("result %+v, want uid 1 seqs [1 2]", res)
	}
	got, err := db.Account("did:plc:alice")
	if err != nil {
		t.Fatal(err)
	}
	if got.UID != 1 || got.Handle != "alice.test" || !got.Hosted || got.Head.Rev != rev1 || got.Head.Commit != commit.CID || got.Head.Data != node.CID || !got.CreatedAt.Equal(acct.CreatedAt) {
		t.Fatalf("account read back as %+v", got)
	}
	if s, _ := db.Secret(1); string(s) != "secret" {
		t.Fatal("secret not stored")
	}
	if ok, err := db.HasRecord(1, "app.bsky.feed.post/a"); err != nil || !ok {
		t.Fatalf("record index: %v %v", ok, err)
	}
	if n, _ := db.RefCount(1, rec.CID); n != 1 {
		t.Fatalf("a live record block counts %d references, want 1", n)
	}
	if n, _ := db.CollectionCount(1, "app.bsky.feed.post"); n != 1 {
		t.Fatalf("collection count %d", n)
	}
	if uids, _ := db.ReposByCollection("app.bsky.feed.post", 0, 10); !slices.Equal(uids, []uint64{1}) {
		t.Fatalf("collection index %v", uids)
	}
	var frames []string
	if err := db.Events(0, func(e CommittedEvent) error {
		frames = append(frames, string(e.Frame))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(frames, []string{"identity@1", "commit@2"}) {
		t.Fatalf("frames %q", frames)
	}
	if db.LastSeq() != 2 {
		t.Fatalf("last seq %d", db.LastSeq())
	}
	if _, err := db.Apply(ctx, &Change{Account: &Account{DID: "did:plc:alice"}}); !errors.Is(err, ErrExists) {
		t.Fatalf("creating an existing DID: %v", err)
	}
	if _, err := db.Account("did:plc:nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown account: %v", err)
	}
}

// Blocks that die move to history, stay readable, and leave the live set;
// a since read (RepoAtHead) returns exactly the blocks of later commits.
func TestLiveBlocksHistoryAndSince(t *testing.T) {
	now := time.Unix(1000, 0)
	db := openMem(t, Options{HistoryWindow: time.Hour, Now: func() time.Time { return now }})
	ctx := context.Background()
	c1, n1, r1 := block("c1"), block("n1"), block("r1")
	res, err := db.Apply(ctx, &Change{Account: &Account{DID: "did:plc:a"}, Head: &Head{Commit: c1.CID, Rev: rev1, Data: n1.CID}, NewBlocks: []Block{c1, n1, r1}})
	if err != nil {
		t.Fatal(err)
	}
	uid := res.UID
	c2, n2, r2 := block("c2"), block("n2"), block("r2")
	if _, err := db.Apply(ctx, &Change{UID: uid, Head: &Head{Commit: c2.CID, Rev: rev2, Data: n2.CID}, NewBlocks: []Block{c2, n2, r2},
		Dead: []DeadBlock{{CID: c1.CID, Data: c1.Data}, {CID: n1.CID, Data: n1.Data}}}); err != nil {
		t.Fatal(err)
	}
	c3 := block("c3")
	// The third commit stores r1 again (the same record re-created).
	if _, err := db.Apply(ctx, &Change{UID: uid, Head: &Head{Commit: c3.CID, Rev: rev3, Data: n2.CID}, NewBlocks: []Block{c3, r1},
		Dead: []DeadBlock{{CID: c2.CID, Data: c2.Data}}}); err != nil {
		t.Fatal(err)
	}
	live := map[cid.Cid]bool{}
	if err := db.LiveBlocks(uid, func(c cid.Cid, _ []byte) error { live[c] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	want := map[cid.Cid]bool{c3.CID: true, n2.CID: true, r2.CID: true, r1.CID: true}
	if len(live) != len(want) {
		t.Fatalf("live set has %d blocks, want %d", len(live), len(want))
	}
	for c := range want {
		if !live[c] {
			t.Fatalf("live set lacks %s", c)
		}
	}
	since := func(rev string) []cid.Cid {
		var out []cid.Cid
		err := db.RepoAtHead(uid, rev, func(h Head, _ []byte) error {
			if h.Rev > rev {
				out = append(out, h.Commit)
			}
			return nil
		}, func(c, _ []byte) error {
			cc, err := cid.Cast(c)
			out = append(out, cc)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := since(rev2); len(got) != 2 || !slices.Contains(got, c3.CID) || !slices.Contains(got, r1.CID) {
		t.Fatalf("since rev2: %v", got)
	}
	if got := since(rev1); len(got) != 4 { // n2, r2 (rev2), c3, r1 (rev3: stored again)
		t.Fatalf("since rev1: %d blocks %v", len(got), got)
	}
	if got := since(rev3); len(got) != 0 {
		t.Fatalf("since the head: %v", got)
	}
	// Superseded blocks are still readable, not live.
	if data, isLive, err := db.Block(uid, c1.CID); err != nil || isLive || string(data) != string(c1.Data) {
		t.Fatalf("history block: live=%v err=%v", isLive, err)
	}
	now = now.Add(2 * time.Hour)
	if err := db.CollectGarbage(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Block(uid, c1.CID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired history block still there: %v", err)
	}
	if _, isLive, err := db.Block(uid, r1.CID); err != nil || !isLive {
		t.Fatalf("re-stored block lost: %v", err)
	}
}

func TestEventsSurviveReopenAndExpire(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(5000, 0)
	opts := Options{Dir: dir, GCInterval: -1, EventWindow: time.Hour, Now: func() time.Time { return now }}
	db, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := db.Apply(ctx, &Change{Account: &Account{DID: "did:plc:a"}, Events: []FrameEncoder{seqFrame("a"), seqFrame("b")}})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	now = now.Add(30 * time.Minute)
	db, err = Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.LastSeq() != 2 {
		t.Fatalf("last seq after reopen: %d", db.LastSeq())
	}
	r2, err := db.Apply(ctx, &Change{UID: res.UID, Events: []FrameEncoder{seqFrame("c")}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r2.Seqs, []int64{3}) {
		t.Fatalf("seq after reopen %v, want [3]", r2.Seqs)
	}
	if _, err := db.Apply(ctx, &Change{Account: &Account{DID: "did:plc:b"}}); err != nil {
		t.Fatal(err)
	}
	if a, _ := db.Account("did:plc:b"); a.UID != 2 {
		t.Fatalf("uid after reopen %d, want 2", a.UID)
	}
	now = now.Add(45 * time.Minute) // the first two events are now 75 min old
	if err := db.CollectGarbage(ctx); err != nil {
		t.Fatal(err)
	}
	first, _ := db.FirstSeq()
	if first != 3 {
		t.Fatalf("first seq after collection %d, want 3", first)
	}
	seqs, _ := db.EventSeqs(res.UID)
	if !slices.Equal(seqs, []int64{3}) {
		t.Fatalf("per-account event index %v, want [3]", seqs)
	}
}

// Many writers at once: every change lands, seqs are unique and dense, each
// frame carries its own seq, and OnCommit sees events in seq order.
func TestConcurrentAppliesGroupCommit(t *testing.T) {
	var mu sync.Mutex
	var heard []int64
	db := openMem(t, Options{OnCommit: func(evs []CommittedEvent) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range evs {
			heard = append(heard, e.Seq)
		}
	}})
	ctx := context.Background()
	const writers, each = 16, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			res, err := db.Apply(ctx, &Change{Account: &Account{DID: fmt.Sprintf("did:plc:w%d", w)}})
			if err != nil {
				errs <- err
				return
			}
			for i := 0; i < each; i++ {
				if _, err := db.Apply(ctx, &Change{UID: res.UID, Events: []FrameEncoder{seqFrame(fmt.Sprint(w))}}); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if db.LastSeq() != writers*each {
		t.Fatalf("last seq %d, want %d", db.LastSeq(), writers*each)
	}
	want := int64(1)
	if err := db.Events(0, func(e CommittedEvent) error {
		if e.Seq != want {
			return fmt.Errorf("seq %d, want %d", e.Seq, want)
		}
		if _, s, _ := cutAt(string(e.Frame)); s != fmt.Sprint(e.Seq) {
			return fmt.Errorf("frame %q stored at seq %d", e.Frame, e.Seq)
		}
		want++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.IsSorted(heard) || len(heard) != writers*each {
		t.Fatalf("OnCommit heard %d events, sorted=%v", len(heard), slices.IsSorted(heard))
	}
}

func cutAt(s string) (string, string, bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '@' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func TestDeleteRepositoryAndPurge(t *testing.T) {
	db := openMem(t, Options{})
	ctx := context.Background()
	c1, rec := block("c1"), block("rec")
	res, err := db.Apply(ctx, &Change{Account: &Account{DID: "did:plc:a"}, Secret: []byte("k"),
		Head: &Head{Commit: c1.CID, Rev: rev1, Data: c1.CID}, NewBlocks: []Block{c1, rec},
		Records:     []RecordWrite{{Path: "x.y.z/1", CID: rec.CID}},
		RefCounts:   []RefCount{{CID: rec.CID, Count: 1}},
		Collections: []CollectionCount{{Collection: "x.y.z", Count: 1}},
		Events:      []FrameEncoder{seqFrame("commit")}})
	if err != nil {
		t.Fatal(err)
	}
	seqs, _ := db.EventSeqs(res.UID)
	acct, _ := db.Account("did:plc:a")
	acct.Status = StatusDeleted
	if _, err := db.Apply(ctx, &Change{UID: res.UID, Account: acct, Delete: true, PurgeEvents: seqs,
		Collections: []CollectionCount{{Collection: "x.y.z", Count: 0}},
		Events:      []FrameEncoder{seqFrame("account-deleted")}}); err != nil {
		t.Fatal(err)
	}
	a, err := db.Account("did:plc:a")
	if err != nil || a.Status != StatusDeleted || a.Head.Defined() {
		t.Fatalf("deleted account: %+v %v", a, err)
	}
	if _, _, err := db.Block(res.UID, rec.CID); !errors.Is(err, ErrNotFound) {
		t.Fatal("block survived deletion")
	}
	if ok, _ := db.HasRecord(res.UID, "x.y.z/1"); ok {
		t.Fatal("record survived deletion")
	}
	if uids, _ := db.ReposByCollection("x.y.z", 0, 10); len(uids) != 0 {
		t.Fatal("collection index survived deletion")
	}
	if _, err := db.Secret(res.UID); !errors.Is(err, ErrNotFound) {
		t.Fatal("secret survived deletion")
	}
	var frames []string
	db.Events(0, func(e CommittedEvent) error { frames = append(frames, string(e.Frame)); return nil })
	if !slices.Equal(frames, []string{"account-deleted@2"}) {
		t.Fatalf("log after purge: %q", frames)
	}
}

func TestMalformedChangesRefused(t *testing.T) {
	db := openMem(t, Options{})
	ctx := context.Background()
	res, err := db.Apply(ctx, &Change{Account: &Account{DID: "did:plc:a"}})
	if err != nil {
		t.Fatal(err)
	}
	b := block("x")
	cases := map[string]*Change{
		"no account":           {Events: []FrameEncoder{seqFrame("x")}},
		"blocks without head":  {UID: res.UID, NewBlocks: []Block{b}},
		"bad rev":              {UID: res.UID, Head: &Head{Commit: b.CID, Rev: "short", Data: b.CID}},
		"account of other uid": {UID: res.UID, Account: &Account{UID: 99, DID: "did:plc:z"}},
	}
	for name, c := range cases {
		if _, err := db.Apply(ctx, c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if db.LastSeq() != 0 {
		t.Fatal("a refused change wrote an event")
	}
	if _, _, err := db.Block(res.UID, b.CID); !errors.Is(err, ErrNotFound) {
		t.Fatal("a refused change wrote a block")
	}
}

func TestClosedDB(t *testing.T) {
	db, err := Open(Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := db.Apply(context.Background(), &Change{Account: &Account{DID: "did:plc:a"}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("apply after close: %v", err)
	}
}

func TestHandleIndex(t *testing.T) {
	db := openMem(t, Options{})
	ctx := context.Background()
	res, err := db.Apply(ctx, &Change{Account: &Account{DID: "did:plc:a", Handle: "a.test"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Apply(ctx, &Change{Account: &Account{DID: "did:plc:b", Handle: "a.test"}}); !errors.Is(err, ErrHandleTaken) {
		t.Fatalf("second account with the same handle: %v", err)
	}
	if did, _ := db.DIDForHandle("a.test"); did != "did:plc:a" {
		t.Fatalf("handle index: %q", did)
	}
	a, _ := db.Account("did:plc:a")
	a.Handle = "a2.test"
	if _, err := db.Apply(ctx, &Change{UID: res.UID, Account: a, OldHandle: "a.test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DIDForHandle("a.test"); !errors.Is(err, ErrNotFound) {
		t.Fatal("old handle still indexed")
	}
	if _, err := db.Apply(ctx, &Change{Account: &Account{DID: "did:plc:b", Handle: "a.test"}}); err != nil {
		t.Fatalf("freed handle not available: %v", err)
	}
}

// Reference counts: one is implied by a live block, more are stored, and
// ResetRecords clears the record index and the stored counts.
func TestRefCountsAndReset(t *testing.T) {
	db := openMem(t, Options{})
	ctx := context.Background()
	c1, rec := block("c1"), block("rec")
	res, err := db.Apply(ctx, &Change{Account: &Account{DID: "did:plc:a"}, Head: &Head{Commit: c1.CID, Rev: rev1, Data: c1.CID},
		NewBlocks: []Block{c1, rec}, Records: []RecordWrite{{Path: "x.y.z/1", CID: rec.CID}, {Path: "x.y.z/2", CID: rec.CID}},
		RefCounts: []RefCount{{CID: rec.CID, Count: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := db.RefCount(res.UID, rec.CID); n != 2 {
		t.Fatalf("count %d, want 2", n)
	}
	if n, _ := db.ReferencedCount(res.UID, rec.CID); n != 2 {
		t.Fatalf("referenced count %d, want 2", n)
	}
	if n, _ := db.ReferencedCount(res.UID, c1.CID); n != 1 {
		t.Fatalf("referenced count of a record with no stored count: %d, want 1", n)
	}
	if _, err := db.Apply(ctx, &Change{UID: res.UID, Records: []RecordWrite{{Path: "x.y.z/2"}}, RefCounts: []RefCount{{CID: rec.CID, Count: 1}}}); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.RefCount(res.UID, rec.CID); n != 1 {
		t.Fatalf("count %d, want 1 (implied by the live block)", n)
	}
	if n, _ := db.RefCount(res.UID, block("other").CID); n != 0 {
		t.Fatalf("a block that is not stored counts %d", n)
	}
	if _, err := db.Apply(ctx, &Change{UID: res.UID, ResetRecords: true, Records: []RecordWrite{{Path: "x.y.z/3", CID: rec.CID}}}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := db.HasRecord(res.UID, "x.y.z/1"); ok {
		t.Fatal("ResetRecords left an old record")
	}
	if ok, _ := db.HasRecord(res.UID, "x.y.z/3"); !ok {
		t.Fatal("ResetRecords dropped the change's own record")
	}
}
