package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// countKeys counts the keys of one table.
func countKeys(t *testing.T, db *DB, table byte) int {
	t.Helper()
	it, err := db.db.NewIter(&pebble.IterOptions{LowerBound: []byte{table}, UpperBound: []byte{table + 1}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	if err := closeIter(it); err != nil {
		t.Fatal(err)
	}
	return n
}

// A block that dies, is stored again and dies again has two copies; the
// collector expires them one at a time, and leaves no key behind.
func TestHistoryBlockDiesTwice(t *testing.T) {
	now := time.Unix(10_000, 0)
	db := openMem(t, Options{HistoryWindow: time.Hour, Now: func() time.Time { return now }})
	ctx := context.Background()
	c1, c2, c3, n := block("c1"), block("c2"), block("c3"), block("node")
	res, err := db.Apply(ctx, &Change{Account: &Account{DID: "did:plc:a"}, Head: &Head{Commit: c1.CID, Rev: rev1, Data: n.CID}, NewBlocks: []Block{c1, n}})
	if err != nil {
		t.Fatal(err)
	}
	uid := res.UID
	// n dies with the second commit and comes back with the third, which
	// the fourth supersedes half an hour later.
	steps := []*Change{
		{UID: uid, Head: &Head{Commit: c2.CID, Rev: rev2, Data: c2.CID}, NewBlocks: []Block{c2}, Dead: []DeadBlock{{CID: c1.CID, Data: c1.Data}, {CID: n.CID, Data: n.Data}}},
		{UID: uid, Head: &Head{Commit: c3.CID, Rev: rev3, Data: n.CID}, NewBlocks: []Block{c3, n}, Dead: []DeadBlock{{CID: c2.CID, Data: c2.Data}}},
	}
	for _, c := range steps {
		if _, err := db.Apply(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(30 * time.Minute)
	c4 := block("c4")
	if _, err := db.Apply(ctx, &Change{UID: uid, Head: &Head{Commit: c4.CID, Rev: "3lbmqhtxvhs2d", Data: c4.CID}, NewBlocks: []Block{c4},
		Dead: []DeadBlock{{CID: c3.CID, Data: c3.Data}, {CID: n.CID, Data: n.Data}}}); err != nil {
		t.Fatal(err)
	}
	if got, want := countKeys(t, db, tHistory), 5; got != want { // c1, n, c2; c3, n again
		t.Fatalf("%d copies, want %d", got, want)
	}
	for _, b := range []Block{c1, c2, c3, n} {
		data, live, err := db.Block(uid, b.CID)
		if err != nil || live || string(data) != string(b.Data) {
			t.Fatalf("history block %s: %q live=%v err=%v", b.CID, data, live, err)
		}
	}
	// The first deaths expire; n is still readable from its second copy.
	now = now.Add(45 * time.Minute)
	if err := db.CollectGarbage(ctx); err != nil {
		t.Fatal(err)
	}
	for _, b := range []Block{c1, c2} {
		if _, _, err := db.Block(uid, b.CID); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expired block %s: %v", b.CID, err)
		}
	}
	for _, b := range []Block{c3, n} {
		if data, _, err := db.Block(uid, b.CID); err != nil || string(data) != string(b.Data) {
			t.Fatalf("block %s, died again later: %q %v", b.CID, data, err)
		}
	}
	now = now.Add(time.Hour)
	if err := db.CollectGarbage(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Block(uid, n.CID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired block: %v", err)
	}
	if i, h := countKeys(t, db, tHistIndex), countKeys(t, db, tHistory); i != 0 || h != 0 {
		t.Fatalf("after the window: %d index entries, %d copies left", i, h)
	}
}

// The collector works in bounded jobs: more expired blocks than one job
// takes are all collected, and younger ones kept.
func TestHistoryCollectedInBatches(t *testing.T) {
	now := time.Unix(10_000, 0)
	db := openMem(t, Options{HistoryWindow: time.Hour, Now: func() time.Time { return now }})
	ctx := context.Background()
	head := block("head 0")
	res, err := db.Apply(ctx, &Change{Account: &Account{DID: "did:plc:a"}, Head: &Head{Commit: head.CID, Rev: rev1, Data: head.CID}, NewBlocks: []Block{head}})
	if err != nil {
		t.Fatal(err)
	}
	var dead []DeadBlock
	for i := range gcBatchSize + 10 {
		b := block(fmt.Sprintf("dead %d", i))
		dead = append(dead, DeadBlock{CID: b.CID, Data: b.Data})
	}
	next := block("head 1")
	if _, err := db.Apply(ctx, &Change{UID: res.UID, Head: &Head{Commit: next.CID, Rev: rev2, Data: next.CID}, NewBlocks: []Block{next}, Dead: dead}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(30 * time.Minute)
	young := block("young")
	if _, err := db.Apply(ctx, &Change{UID: res.UID, Head: &Head{Commit: young.CID, Rev: rev3, Data: young.CID}, NewBlocks: []Block{young}, Dead: []DeadBlock{{CID: next.CID, Data: next.Data}}}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(40 * time.Minute)
	if err := db.CollectGarbage(ctx); err != nil {
		t.Fatal(err)
	}
	if i, h := countKeys(t, db, tHistIndex), countKeys(t, db, tHistory); i != 1 || h != 1 {
		t.Fatalf("%d index entries and %d copies left, want the young one", i, h)
	}
	if data, _, err := db.Block(res.UID, next.CID); err != nil || string(data) != string(next.Data) {
		t.Fatalf("young history block: %v", err)
	}
}

// A store written with version 1's history (bytes in table 06, keys only
// in 07) is converted when it is opened: every block stays readable, the
// keys of blocks that died again later are dropped, and the collector then
// works on the converted layout.
func TestHistoryMigration(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(10_000, 0)
	opts := Options{Dir: dir, GCInterval: -1, HistoryWindow: time.Hour, Now: func() time.Time { return now }}
	db, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	head := block("head")
	res, err := db.Apply(ctx, &Change{Account: &Account{DID: "did:plc:a"}, Head: &Head{Commit: head.CID, Rev: rev1, Data: head.CID}, NewBlocks: []Block{head}})
	if err != nil {
		t.Fatal(err)
	}
	uid := res.UID
	// Version 1 entries, written by hand: a died at t1; b died at t1, came
	// back and died again at t2 (one 06 entry with t2, two 07 keys).
	a, b := block("a"), block("b")
	t1, t2 := now.Add(-90*time.Minute).UnixNano(), now.Add(-10*time.Minute).UnixNano()
	raw := db.db.NewBatch()
	v1 := func(blk Block, died int64) {
		raw.Set(keyUIDCID(tHistIndex, uid, blk.CID), append(binary.BigEndian.AppendUint64(nil, uint64(died)), blk.Data...), nil)
	}
	v1(a, t1)
	v1(b, t2)
	raw.Set(appendHistoryKey(nil, t1, uid, a.CID), nil, nil)
	raw.Set(appendHistoryKey(nil, t1, uid, b.CID), nil, nil)
	raw.Set(appendHistoryKey(nil, t2, uid, b.CID), nil, nil)
	raw.Delete(metaHistory, nil)
	if err := raw.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	db.Close()

	old := rebuildBatchBytes
	rebuildBatchBytes = 1 // one entry per batch: the resumption is exercised too
	defer func() { rebuildBatchBytes = old }()
	if db, err = Open(opts); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := db.getUint(metaHistory); err != nil || v != historyVersion {
		t.Fatalf("history version %d (%v), want %d", v, err, historyVersion)
	}
	for _, blk := range []Block{a, b} {
		if data, live, err := db.Block(uid, blk.CID); err != nil || live || string(data) != string(blk.Data) {
			t.Fatalf("converted block %s: %q live=%v err=%v", blk.CID, data, live, err)
		}
	}
	if i, h := countKeys(t, db, tHistIndex), countKeys(t, db, tHistory); i != 2 || h != 2 {
		t.Fatalf("converted: %d index entries, %d copies; want 2 and 2", i, h)
	}
	if err := db.CollectGarbage(ctx); err != nil { // a (t1) has expired, b (t2) not
		t.Fatal(err)
	}
	if _, _, err := db.Block(uid, a.CID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired converted block: %v", err)
	}
	if data, _, err := db.Block(uid, b.CID); err != nil || string(data) != string(b.Data) {
		t.Fatalf("young converted block: %v", err)
	}
}

// RepoAtHead reads a head and its blocks from one view: the head's commit
// block first, then the other live blocks, or only those stored after
// since; a repository without a head is not found.
func TestRepoAtHead(t *testing.T) {
	db := openMem(t, Options{})
	ctx := context.Background()
	c1, n1, r1 := block("c1"), block("n1"), block("r1")
	res, err := db.Apply(ctx, &Change{Account: &Account{DID: "did:plc:a"}, Head: &Head{Commit: c1.CID, Rev: rev1, Data: n1.CID}, NewBlocks: []Block{c1, n1, r1}})
	if err != nil {
		t.Fatal(err)
	}
	c2, n2 := block("c2"), block("n2")
	if _, err := db.Apply(ctx, &Change{UID: res.UID, Head: &Head{Commit: c2.CID, Rev: rev2, Data: n2.CID}, NewBlocks: []Block{c2, n2},
		Dead: []DeadBlock{{CID: c1.CID, Data: c1.Data}, {CID: n1.CID, Data: n1.Data}}}); err != nil {
		t.Fatal(err)
	}
	read := func(since string) (Head, []string) {
		var h Head
		var got []string
		err := db.RepoAtHead(res.UID, since, func(head Head, commit []byte) error {
			h = head
			got = append(got, string(commit))
			return nil
		}, func(_, data []byte) error {
			got = append(got, string(data))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return h, got
	}
	h, got := read("")
	if h.Commit != c2.CID || h.Rev != rev2 || len(got) != 3 || got[0] != string(c2.Data) {
		t.Fatalf("head %+v, blocks %q: want c2 first, then n2 and r1", h, got)
	}
	if _, got := read(rev1); len(got) != 2 || got[1] != string(n2.Data) { // c2, n2: r1 is rev1's
		t.Fatalf("since rev1: %q", got)
	}
	other, err := db.Apply(ctx, &Change{Account: &Account{DID: "did:plc:b"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.RepoAtHead(other.UID, "", func(Head, []byte) error { return nil }, func(_, _ []byte) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("repository without a head: %v", err)
	}
}

// A deleted repository's history copies leave with it, and so do those of
// a repository whose content is dropped; another repository's stay.
func TestHistoryPurgedWithTheRepository(t *testing.T) {
	now := time.Unix(10_000, 0)
	db := openMem(t, Options{HistoryWindow: time.Hour, Now: func() time.Time { return now }})
	ctx := context.Background()
	var uids []uint64
	for i, did := range []string{"did:plc:deleted", "did:plc:dropped", "did:plc:kept"} {
		c1, c2, n1, n2 := block(fmt.Sprint("c1 ", i)), block(fmt.Sprint("c2 ", i)), block(fmt.Sprint("n1 ", i)), block(fmt.Sprint("n2 ", i))
		res, err := db.Apply(ctx, &Change{Account: &Account{DID: did}, Head: &Head{Commit: c1.CID, Rev: rev1, Data: n1.CID}, NewBlocks: []Block{c1, n1}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Apply(ctx, &Change{UID: res.UID, Head: &Head{Commit: c2.CID, Rev: rev2, Data: n2.CID}, NewBlocks: []Block{c2, n2},
			Dead: []DeadBlock{{CID: c1.CID, Data: c1.Data}, {CID: n1.CID, Data: n1.Data}}}); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Minute) // each repository's copies die at another time
		uids = append(uids, res.UID)
	}
	if got := countKeys(t, db, tHistory); got != 6 {
		t.Fatalf("%d copies, want 6", got)
	}
	a, _ := db.Account("did:plc:deleted")
	a.Status = StatusDeleted
	if _, err := db.Apply(ctx, &Change{UID: uids[0], Account: a, Delete: true}); err != nil {
		t.Fatal(err)
	}
	if i, h := countKeys(t, db, tHistIndex), countKeys(t, db, tHistory); i != 4 || h != 4 {
		t.Fatalf("after a deletion: %d index entries and %d copies, want 4 and 4", i, h)
	}
	if _, err := db.Apply(ctx, &Change{UID: uids[1], DropContent: true}); err != nil {
		t.Fatal(err)
	}
	if i, h := countKeys(t, db, tHistIndex), countKeys(t, db, tHistory); i != 2 || h != 2 {
		t.Fatalf("after dropping the content: %d index entries and %d copies, want 2 and 2", i, h)
	}
	if data, live, err := db.Block(uids[2], block("c1 2").CID); err != nil || live || string(data) != string(block("c1 2").Data) {
		t.Fatalf("the kept repository's history block: %q live=%v %v", data, live, err)
	}
}

// A deletion submitted after Close is refused, not a read of a closed
// Pebble.
func TestDeleteAfterClose(t *testing.T) {
	db, err := Open(Options{InMemory: true, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	c1 := block("c1")
	res, err := db.Apply(context.Background(), &Change{Account: &Account{DID: "did:plc:a"}, Head: &Head{Commit: c1.CID, Rev: rev1, Data: c1.CID}, NewBlocks: []Block{c1}})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := db.Apply(context.Background(), &Change{UID: res.UID, Delete: true}); !errors.Is(err, ErrClosed) {
		t.Fatalf("delete after close: %v", err)
	}
}
