package store

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// accountFromPebble reads an account past the cache.
func accountFromPebble(t *testing.T, d *DB, did string) Account {
	t.Helper()
	v, err := d.get(accountKey(did))
	if err != nil {
		t.Fatal(err)
	}
	a, err := decodeAccount(v)
	if err != nil {
		t.Fatal(err)
	}
	if a.Head, err = d.head(a.UID); err != nil {
		t.Fatal(err)
	}
	return *a
}

// The cached account follows every kind of change: a new head, a new
// record (status, handle, host), both, a deletion; and the head's commit
// block is served from it with the bytes Pebble holds.
func TestAccountCacheFollowsChanges(t *testing.T) {
	d := openMem(t, Options{})
	ctx := context.Background()
	did := "did:plc:cache"
	a := &Account{DID: did, Host: "pds.one.test", CreatedAt: time.Unix(100, 0).UTC()}
	c1, n1 := block("c1"), block("n1")
	if _, err := d.Apply(ctx, &Change{Account: a, Head: &Head{Commit: c1.CID, Rev: rev1, Data: n1.CID}, NewBlocks: []Block{c1, n1}}); err != nil {
		t.Fatal(err)
	}
	check := func(step string) {
		t.Helper()
		got, err := d.Account(did)
		if err != nil {
			t.Fatal(err)
		}
		if want := accountFromPebble(t, d, did); *got != want {
			t.Fatalf("%s: cached %+v, stored %+v", step, *got, want)
		}
		if _, _, hit := d.accounts.get(did); !hit {
			t.Fatalf("%s: the account is not cached", step)
		}
		if got.Head.Defined() {
			data, rev, err := d.LiveBlock(got.UID, got.Head.Commit)
			if err != nil {
				t.Fatalf("%s: head commit block: %v", step, err)
			}
			v, err := d.get(keyUIDCID(tBlock, got.UID, got.Head.Commit))
			if err != nil || !bytes.Equal(data, v[revLen:]) || rev != string(v[:revLen]) {
				t.Fatalf("%s: head commit block %x rev %s, stored %x (%v)", step, data, rev, v, err)
			}
		}
	}
	check("created")

	c2, n2 := block("c2"), block("n2")
	if _, err := d.Apply(ctx, &Change{UID: a.UID, Head: &Head{Commit: c2.CID, Rev: rev2, Data: n2.CID}, NewBlocks: []Block{c2, n2}, Dead: []DeadBlock{{CID: c1.CID, Data: c1.Data}}}); err != nil {
		t.Fatal(err)
	}
	check("new head")
	if _, _, hit := d.accounts.commitBlock(a.UID, c2.CID); !hit {
		t.Fatal("the new head's commit block is not cached")
	}

	b := *a
	b.Status, b.Handle, b.Host = StatusTakendown, "cache.test", "pds.two.test"
	if _, err := d.Apply(ctx, &Change{UID: a.UID, Account: &b}); err != nil {
		t.Fatal(err)
	}
	check("new record")

	c3, n3 := block("c3"), block("n3")
	b.Status = StatusActive
	if _, err := d.Apply(ctx, &Change{UID: a.UID, Account: &b, OldHandle: "cache.test", Head: &Head{Commit: c3.CID, Rev: rev3, Data: n3.CID}, NewBlocks: []Block{c3, n3}}); err != nil {
		t.Fatal(err)
	}
	check("record and head")

	b.Status = StatusDeleted
	if _, err := d.Apply(ctx, &Change{UID: a.UID, Account: &b, OldHandle: "cache.test", Delete: true}); err != nil {
		t.Fatal(err)
	}
	check("deleted")
	if got, _ := d.Account(did); got.Head.Defined() {
		t.Fatalf("a deleted repository keeps head %+v", got.Head)
	}

	// A change refused on its own (the DID exists) leaves the entry alone.
	if _, err := d.Apply(ctx, &Change{Account: &Account{DID: did, Host: "pds.evil.test"}}); err == nil {
		t.Fatal("created an existing DID")
	}
	check("refused change")
}

// The cache never holds more than its bound, and what it drops is read
// again from Pebble.
func TestAccountCacheBounded(t *testing.T) {
	d := openMem(t, Options{AccountCache: 32})
	ctx := context.Background()
	for i := range 200 {
		c := block(fmt.Sprint("c", i))
		if _, err := d.Apply(ctx, &Change{Account: &Account{DID: fmt.Sprintf("did:plc:n%d", i)}, Head: &Head{Commit: c.CID, Rev: rev1, Data: c.CID}, NewBlocks: []Block{c}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 200 {
		did := fmt.Sprintf("did:plc:n%d", i)
		got, err := d.Account(did)
		if err != nil || *got != accountFromPebble(t, d, did) {
			t.Fatalf("%s: %+v %v", did, got, err)
		}
		if n := len(d.accounts.byDID); n > 32 || len(d.accounts.byUID) != n {
			t.Fatalf("%d entries by DID, %d by UID, bound 32", n, len(d.accounts.byUID))
		}
	}
}

// Readers racing the committer never leave a stale entry: after writers of
// heads and records and readers running at once, every cached account is
// what Pebble holds.
func TestAccountCacheRacingReaders(t *testing.T) {
	d := openMem(t, Options{AccountCache: 64})
	ctx := context.Background()
	const accounts = 40
	uids := make([]uint64, accounts)
	for i := range accounts {
		res, err := d.Apply(ctx, &Change{Account: &Account{DID: fmt.Sprintf("did:plc:r%d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		uids[i] = res.UID
	}
	var readers, writers sync.WaitGroup
	stop := make(chan struct{})
	for r := range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := d.Account(fmt.Sprintf("did:plc:r%d", rng.IntN(accounts))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for w := range 4 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			// Each writer owns the accounts i ≡ w (mod 4), as the relay's
			// per-account queues own theirs.
			for step := range 60 {
				for i := w; i < accounts; i += 4 {
					c := block(fmt.Sprint("w", i, "s", step))
					rev := fmt.Sprintf("3lbmqhtxv%04d", step)
					ch := &Change{UID: uids[i], Head: &Head{Commit: c.CID, Rev: rev, Data: c.CID}, NewBlocks: []Block{c}}
					if step%7 == 3 {
						ch.Account = &Account{UID: uids[i], DID: fmt.Sprintf("did:plc:r%d", i), Host: fmt.Sprint("pds", step, ".test")}
					}
					if _, err := d.Apply(ctx, ch); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	writers.Wait()
	close(stop)
	readers.Wait()
	for i := range accounts {
		did := fmt.Sprintf("did:plc:r%d", i)
		if e, _, hit := d.accounts.get(did); hit && e != accountFromPebble(t, d, did) {
			t.Fatalf("%s: cached %+v, stored %+v", did, e, accountFromPebble(t, d, did))
		}
	}
}

// A reader that read Pebble before a group committed cannot put what it
// read: the entry would be older than the store.
func TestAccountCacheRefusesReadsOlderThanACommit(t *testing.T) {
	d := openMem(t, Options{})
	ctx := context.Background()
	res, err := d.Apply(ctx, &Change{Account: &Account{DID: "did:plc:slow"}})
	if err != nil {
		t.Fatal(err)
	}
	d.accounts = newAccountCache(8) // empty: the next read misses
	_, gen, hit := d.accounts.get("did:plc:slow")
	if hit {
		t.Fatal("hit in an empty cache")
	}
	stale := accountFromPebble(t, d, "did:plc:slow") // read before the commit below
	c := block("c")
	if _, err := d.Apply(ctx, &Change{UID: res.UID, Head: &Head{Commit: c.CID, Rev: rev1, Data: c.CID}, NewBlocks: []Block{c}}); err != nil {
		t.Fatal(err)
	}
	d.accounts.put(gen, &stale)
	got, err := d.Account("did:plc:slow")
	if err != nil {
		t.Fatal(err)
	}
	if got.Head.Rev != rev1 {
		t.Fatalf("a read older than a commit was cached: head %+v", got.Head)
	}
}

// collectionFromPebble reads a collection count past the cache.
func collectionFromPebble(t *testing.T, d *DB, uid uint64, coll string) uint64 {
	t.Helper()
	n, err := d.getUvarint(keyUIDString(tCollCount, uid, coll))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Collection counts answered from the cache follow the changes that write
// them, a replacement of the records (ResetRecords) and a deletion, and a
// count read before a group committed is not cached.
func TestAccountCacheCollectionCounts(t *testing.T) {
	d := openMem(t, Options{})
	ctx := context.Background()
	did := "did:plc:colls"
	c1 := block("c1")
	res, err := d.Apply(ctx, &Change{Account: &Account{DID: did}, Head: &Head{Commit: c1.CID, Rev: rev1, Data: c1.CID}, NewBlocks: []Block{c1},
		Collections: []CollectionCount{{Collection: "app.bsky.feed.post", Count: 2}, {Collection: "app.bsky.feed.like", Count: 5}}})
	if err != nil {
		t.Fatal(err)
	}
	uid := res.UID
	colls := []string{"app.bsky.feed.post", "app.bsky.feed.like", "app.bsky.graph.follow"}
	check := func(step string, want map[string]uint64) {
		t.Helper()
		for _, coll := range colls {
			got, err := d.CollectionCount(uid, coll)
			if err != nil {
				t.Fatal(err)
			}
			if stored := collectionFromPebble(t, d, uid, coll); got != want[coll] || stored != want[coll] {
				t.Fatalf("%s: %s counts %d (stored %d), want %d", step, coll, got, stored, want[coll])
			}
		}
	}
	check("created", map[string]uint64{"app.bsky.feed.post": 2, "app.bsky.feed.like": 5})
	if n, _, hit := d.accounts.collection(uid, "app.bsky.feed.like"); !hit || n != 5 {
		t.Fatalf("written count not cached: %d %v", n, hit)
	}
	if n, _, hit := d.accounts.collection(uid, "app.bsky.graph.follow"); !hit || n != 0 {
		t.Fatalf("count read from Pebble (absent) not cached: %d %v", n, hit)
	}

	if _, err := d.Apply(ctx, &Change{UID: uid, Collections: []CollectionCount{{Collection: "app.bsky.feed.like", Count: 4, Old: 5}, {Collection: "app.bsky.graph.follow", Count: 1}}}); err != nil {
		t.Fatal(err)
	}
	check("counts moved", map[string]uint64{"app.bsky.feed.post": 2, "app.bsky.feed.like": 4, "app.bsky.graph.follow": 1})

	// A replacement lists the collections it writes; the cache forgets the
	// rest and reads them again.
	if _, err := d.Apply(ctx, &Change{UID: uid, ResetRecords: true, Collections: []CollectionCount{{Collection: "app.bsky.feed.post", Count: 7}}}); err != nil {
		t.Fatal(err)
	}
	if _, _, hit := d.accounts.collection(uid, "app.bsky.feed.like"); hit {
		t.Fatal("a count not written by the replacement is still cached")
	}
	check("replaced", map[string]uint64{"app.bsky.feed.post": 7, "app.bsky.feed.like": 4, "app.bsky.graph.follow": 1})

	// A count read before a commit is not cached.
	_, gen, _ := d.accounts.collection(uid, "app.bsky.feed.post")
	if _, err := d.Apply(ctx, &Change{UID: uid, Collections: []CollectionCount{{Collection: "app.bsky.feed.post", Count: 8, Old: 7}}}); err != nil {
		t.Fatal(err)
	}
	d.accounts.putCollection(gen, uid, "app.bsky.feed.post", 7)
	check("stale read", map[string]uint64{"app.bsky.feed.post": 8, "app.bsky.feed.like": 4, "app.bsky.graph.follow": 1})

	if _, err := d.Apply(ctx, &Change{UID: uid, Account: &Account{UID: uid, DID: did, Status: StatusDeleted}, Delete: true}); err != nil {
		t.Fatal(err)
	}
	check("deleted", map[string]uint64{})
}
