package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// DropContent removes a repository's content and keeps its state;
// NextUIDWithBlocks then skips it. The mirror mode reads back as set.
func TestDropContent(t *testing.T) {
	db := openMem(t, Options{})
	ctx := context.Background()
	var uids []uint64
	for i := range 3 {
		commit, node, rec := block(fmt.Sprint("commit", i)), block(fmt.Sprint("node", i)), block(fmt.Sprint("record", i))
		res, err := db.Apply(ctx, &Change{
			Account:     &Account{DID: fmt.Sprintf("did:plc:acct%d", i), CreatedAt: time.Unix(100, 0).UTC()},
			Head:        &Head{Commit: commit.CID, Rev: rev1, Data: node.CID},
			NewBlocks:   []Block{commit, node, rec},
			Records:     []RecordWrite{{Path: "app.bsky.feed.post/a", CID: rec.CID}},
			RefCounts:   []RefCount{{CID: rec.CID, Count: 2}},
			Collections: []CollectionCount{{Collection: "app.bsky.feed.post", Count: 1}},
		})
		if err != nil {
			t.Fatal(err)
		}
		uids = append(uids, res.UID)
	}
	walk := func() []uint64 {
		var got []uint64
		for after := uint64(0); ; {
			uid, ok, err := db.NextUIDWithBlocks(after)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				return got
			}
			got, after = append(got, uid), uid
		}
	}
	if got := walk(); fmt.Sprint(got) != fmt.Sprint(uids) {
		t.Fatalf("uids with blocks %v, want %v", got, uids)
	}

	mid := uids[1]
	if _, err := db.Apply(ctx, &Change{UID: mid, DropContent: true, NewBlocks: []Block{block("x")}}); err == nil {
		t.Fatal("a change dropping the content and carrying blocks was applied")
	}
	before, _ := db.Account("did:plc:acct1")
	if _, err := db.Apply(ctx, &Change{UID: mid, DropContent: true}); err != nil {
		t.Fatal(err)
	}
	if got := walk(); fmt.Sprint(got) != fmt.Sprint([]uint64{uids[0], uids[2]}) {
		t.Fatalf("uids with blocks after the drop %v", got)
	}
	after, _ := db.Account("did:plc:acct1")
	if after.Head != before.Head {
		t.Fatalf("head %+v, was %+v", after.Head, before.Head)
	}
	if _, _, err := db.LiveBlock(mid, before.Head.Commit); err == nil {
		t.Fatal("the head commit block is still there")
	}
	if ok, _ := db.HasRecord(mid, "app.bsky.feed.post/a"); ok {
		t.Fatal("the record index is still there")
	}
	if n, _ := db.ReferencedCount(mid, block("record1").CID); n > 1 {
		t.Fatalf("reference count %d left", n)
	}
	if n, _ := db.CollectionCount(mid, "app.bsky.feed.post"); n != 1 {
		t.Fatalf("collection count %d, want it kept", n)
	}
	for _, uid := range []uint64{uids[0], uids[2]} {
		if ok, _ := db.HasRecord(uid, "app.bsky.feed.post/a"); !ok {
			t.Fatalf("uid %d lost its record index", uid)
		}
	}

	if mode, err := db.MirrorMode(); err != nil || mode != "" {
		t.Fatalf("mode of a new store %q %v", mode, err)
	}
	if err := db.SetMirrorMode(MirrorLean); err != nil {
		t.Fatal(err)
	}
	if mode, _ := db.MirrorMode(); mode != MirrorLean {
		t.Fatalf("mode %q", mode)
	}
}
