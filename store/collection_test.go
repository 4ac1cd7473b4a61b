package store

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// collModel is the collection index as the issue defines it: a repository
// is in a collection while it has records of it (deletion empties it), and
// a listing shows it while its account is active.
type collModel struct {
	colls  []string
	uids   []uint64
	dids   map[uint64]string
	counts map[uint64]map[string]uint64
	status map[uint64]Status
}

func newCollModel(colls []string) *collModel {
	return &collModel{colls: colls, dids: map[uint64]string{}, counts: map[uint64]map[string]uint64{}, status: map[uint64]Status{}}
}

// members returns the UIDs with records in coll, in UID order.
func (m *collModel) members(coll string) []uint64 {
	var out []uint64
	for _, uid := range m.uids {
		if m.counts[uid][coll] > 0 {
			out = append(out, uid)
		}
	}
	return out
}

// check compares every read of the index with the model.
func (m *collModel) check(t testing.TB, db *DB, step string) {
	t.Helper()
	for _, coll := range m.colls {
		want := m.members(coll)
		got, err := db.ReposByCollection(coll, 0, len(m.uids)+1)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: %s holds %v, want %v", step, coll, got, want)
		}
		// Walk it in small pages: same entries, each with DID and status.
		var walked []CollectionRepo
		for after := uint64(0); ; {
			page, err := db.CollectionRepos(coll, after, 3)
			if err != nil {
				t.Fatalf("%s: %v", step, err)
			}
			walked = append(walked, page...)
			if len(page) < 3 {
				break
			}
			after = page[len(page)-1].UID
		}
		if len(walked) != len(want) {
			t.Fatalf("%s: walking %s gave %d entries, want %d", step, coll, len(walked), len(want))
		}
		for i, r := range walked {
			if r.UID != want[i] || r.DID != m.dids[r.UID] || r.Status != m.status[r.UID] {
				t.Fatalf("%s: %s entry %d is %+v, want uid %d did %s status %q", step, coll, i, r, want[i], m.dids[want[i]], m.status[want[i]])
			}
		}
		total, err := db.CollectionRepoTotal(coll)
		if err != nil || total != uint64(len(want)) {
			t.Fatalf("%s: %s counts %d repositories (%v), want %d", step, coll, total, err, len(want))
		}
	}
	for _, uid := range m.uids {
		for _, coll := range m.colls {
			if n, err := db.CollectionCount(uid, coll); err != nil || n != m.counts[uid][coll] {
				t.Fatalf("%s: uid %d has %d records of %s (%v), want %d", step, uid, n, coll, err, m.counts[uid][coll])
			}
		}
	}
}

var modelStatuses = []Status{StatusActive, StatusTakendown, StatusSuspended, StatusDeactivated, StatusDesynchronized}

// runCollectionOps creates repos accounts and interprets ops, three bytes
// per operation, as writes to them (what a writer of each repository would
// send: absolute counts it read and adjusted), checking the store against
// the model after each one.
func runCollectionOps(t testing.TB, db *DB, m *collModel, repos int, ops []byte) {
	t.Helper()
	ctx := context.Background()
	apply := func(c *Change) {
		t.Helper()
		if _, err := db.Apply(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	base := len(m.uids)
	for i := range repos {
		did := fmt.Sprintf("did:plc:%s%d", m.colls[0], base+i)
		res, err := db.Apply(ctx, &Change{Account: &Account{DID: did}})
		if err != nil {
			t.Fatal(err)
		}
		m.uids = append(m.uids, res.UID)
		m.dids[res.UID] = did
		m.counts[res.UID] = map[string]uint64{}
	}
	mine := m.uids[base:]
	for i := 0; i+2 < len(ops); i += 3 {
		op, a, b := ops[i], ops[i+1], ops[i+2]
		uid := mine[int(a)%len(mine)]
		if m.status[uid] == StatusDeleted {
			continue // a deleted repository takes no writes
		}
		counts := m.counts[uid]
		c := &Change{UID: uid}
		// setCount is the writer's side: the new absolute count, sent only
		// when it changes, with the old one (as repostore.CommitChange does)
		// or, for some ops, without (as an import does).
		setCount := func(coll string, n uint64) {
			if n != counts[coll] {
				cc := CollectionCount{Collection: coll, Count: n}
				if a&1 == 0 {
					cc.Old = counts[coll]
				}
				c.Collections = append(c.Collections, cc)
				counts[coll] = n
			}
		}
		switch op % 8 {
		case 0, 1, 2, 3, 4: // records created or deleted in one collection
			coll := m.colls[int(b)%len(m.colls)]
			n := int64(counts[coll]) + []int64{1, 2, -1, -3, -1 << 20}[int(b>>4)%5]
			setCount(coll, uint64(max(n, 0)))
		case 5: // status change
			acct := &Account{UID: uid, DID: m.dids[uid], Status: modelStatuses[int(b)%len(modelStatuses)]}
			c.Account = acct
			m.status[uid] = acct.Status
		case 6: // account deletion, with its collections listed (as the host does) or not
			c.Account = &Account{UID: uid, DID: m.dids[uid], Status: StatusDeleted}
			c.Delete = true
			if b&1 == 1 {
				for _, coll := range slices.Sorted(maps.Keys(counts)) {
					c.Collections = append(c.Collections, CollectionCount{Collection: coll})
				}
			}
			clear(counts)
			m.status[uid] = StatusDeleted
		case 7: // one commit touching two collections
			setCount(m.colls[int(b)%len(m.colls)], uint64(b>>4)%3)
			setCount(m.colls[int(b+1)%len(m.colls)], uint64(b>>6)%3)
		}
		apply(c)
		m.check(t, db, fmt.Sprintf("op %d (%d %d %d)", i/3, op, a, b))
	}
}

func TestCollectionIndexFollowsRecordCounts(t *testing.T) {
	for seed := int64(1); seed <= 4; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			db := openMem(t, Options{})
			m := newCollModel([]string{"app.bsky.feed.like", "app.bsky.feed.post", "com.example.a", "com.example.a.b"})
			ops := make([]byte, 3*400)
			rand.New(rand.NewSource(seed)).Read(ops)
			runCollectionOps(t, db, m, 24, ops)
		})
	}
}

// Create, update, delete of records by hand: first record adds, an update
// changes nothing, the last delete removes.
func TestCollectionIndexFirstAndLastRecord(t *testing.T) {
	db := openMem(t, Options{})
	m := newCollModel([]string{"x.y.post", "x.y.like"})
	runCollectionOps(t, db, m, 2, []byte{
		0, 0, 0x00, // repo 0: +1 post → appears
		0, 1, 0x01, // repo 1: +1 like
		0, 0, 0x00, // repo 0: +1 post (2)
		0, 0, 0x20, // repo 0: -1 post (1), still there
		0, 0, 0x20, // repo 0: -1 post (0), gone
		7, 1, 0x51, // repo 1: like=1 (no change), post=1
		6, 1, 0x00, // repo 1 deleted, collections not listed
	})
	for _, coll := range m.colls {
		if uids, _ := db.ReposByCollection(coll, 0, 10); len(uids) != 0 {
			t.Fatalf("%s still lists %v", coll, uids)
		}
		if n, _ := db.CollectionCounts("", "", 10); len(n) != 0 {
			t.Fatalf("repository counts left: %+v", n)
		}
	}
}

func FuzzCollectionIndex(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 1, 1, 6, 0, 0, 5, 1, 1})
	f.Add([]byte{7, 0, 0x51, 6, 0, 1, 0, 1, 0x20})
	seed := make([]byte, 60)
	rand.New(rand.NewSource(1)).Read(seed)
	f.Add(seed)
	db, err := Open(Options{InMemory: true, GCInterval: -1})
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	var run atomic.Int64
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 300 {
			ops = ops[:300]
		}
		// Each run has its own collections and accounts in the shared store.
		n := run.Add(1)
		m := newCollModel([]string{fmt.Sprintf("r%d.a.b", n), fmt.Sprintf("r%d.a.b.c", n), fmt.Sprintf("r%d.b.a", n)})
		runCollectionOps(t, db, m, 4, ops)
	})
}

// Changes of one commit group see each other: the committer decides what
// enters or leaves the index from the group's earlier changes, not only from
// the store.
func TestCollectionIndexWithinOneGroup(t *testing.T) {
	blocked, release := make(chan struct{}), make(chan struct{})
	db := openMem(t, Options{})
	ctx := context.Background()
	var uids []uint64
	for _, did := range []string{"did:plc:one", "did:plc:two"} {
		res, err := db.Apply(ctx, &Change{Account: &Account{DID: did}})
		if err != nil {
			t.Fatal(err)
		}
		uids = append(uids, res.UID)
	}
	u1, u2 := uids[0], uids[1]
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	submit := func(c *Change) {
		want := len(db.reqs) + 1
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := db.Apply(ctx, c); err != nil {
				errs <- err
			}
		}()
		for len(db.reqs) < want {
			time.Sleep(time.Millisecond)
		}
	}
	// Hold the committer in a job, so the changes below queue in this
	// order and then commit as one group.
	wg.Add(1)
	go func() {
		defer wg.Done()
		db.submit(ctx, &request{job: func(*pebble.Batch) error { close(blocked); <-release; return nil }, done: make(chan result, 1)})
	}()
	<-blocked
	cc := func(coll string, n uint64) []CollectionCount { return []CollectionCount{{Collection: coll, Count: n}} }
	// The writer's old counts, when given, cannot hide what the group did:
	// here they are stale (2, read before the group) and must be overruled.
	stale := func(coll string, n uint64) []CollectionCount {
		return []CollectionCount{{Collection: coll, Count: n, Old: 2}}
	}
	submit(&Change{UID: u1, Collections: cc("x.y.a", 1)})
	submit(&Change{UID: u1, Collections: stale("x.y.a", 0)})
	submit(&Change{UID: u1, Collections: stale("x.y.a", 2)})
	submit(&Change{UID: u1, Collections: cc("x.y.b", 1)})
	submit(&Change{UID: u2, Collections: cc("x.y.a", 1)})
	submit(&Change{UID: u2, Collections: cc("x.y.b", 1)})
	// Refused (bad rev): its collection must not count.
	submit(&Change{UID: u2, Head: &Head{Rev: "bad"}, Collections: cc("x.y.c", 1)})
	submit(&Change{UID: u2, Account: &Account{UID: u2, DID: "did:plc:two", Status: StatusDeleted}, Delete: true})
	// Deleted and given x.y.a again in the same change (a replacement).
	submit(&Change{UID: u1, Delete: true, Collections: stale("x.y.a", 5)})
	close(release)
	wg.Wait()
	close(errs)
	var refused int
	for range errs {
		refused++
	}
	if refused != 1 {
		t.Fatalf("%d changes refused, want 1 (the bad rev)", refused)
	}
	want := map[string][]uint64{"x.y.a": {u1}, "x.y.b": nil, "x.y.c": nil}
	for coll, w := range want {
		got, _ := db.ReposByCollection(coll, 0, 10)
		if !slices.Equal(got, w) {
			t.Errorf("%s lists %v, want %v", coll, got, w)
		}
	}
	counts, err := db.CollectionCounts("", "", 10)
	if err != nil || !slices.Equal(counts, []CollectionRepoCount{{"x.y.a", 1}}) {
		t.Fatalf("repository counts %+v (%v), want x.y.a: 1", counts, err)
	}
	if n, _ := db.CollectionCount(u1, "x.y.a"); n != 5 {
		t.Fatalf("record count after the replacement %d, want 5", n)
	}
	if n, _ := db.CollectionCount(u1, "x.y.b"); n != 0 {
		t.Fatalf("record count of x.y.b after deletion %d, want 0", n)
	}
}

// A pager walking a collection while writers add and remove repositories:
// every repository present during the whole walk is returned exactly once,
// and none twice.
func TestCollectionPagingUnderConcurrentWrites(t *testing.T) {
	db := openMem(t, Options{})
	ctx := context.Background()
	const coll, repos = "app.example.thing", 600
	var stable, churn []uint64
	dids := map[uint64]string{}
	for i := range repos {
		c := &Change{Account: &Account{DID: fmt.Sprintf("did:plc:p%d", i)}}
		if i%3 == 0 {
			c.Collections = []CollectionCount{{Collection: coll, Count: 1}}
		}
		res, err := db.Apply(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		dids[res.UID] = c.Account.DID
		if i%3 == 0 {
			stable = append(stable, res.UID)
		} else {
			churn = append(churn, res.UID)
		}
	}
	stop := make(chan struct{})
	var writes atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			mine := churn[w*len(churn)/4 : (w+1)*len(churn)/4]
			counts := map[uint64]uint64{}
			for {
				select {
				case <-stop:
					return
				default:
				}
				uid := mine[rng.Intn(len(mine))]
				counts[uid] = uint64(rng.Intn(2))
				c := &Change{UID: uid, Collections: []CollectionCount{{Collection: coll, Count: counts[uid]}}}
				if rng.Intn(4) == 0 { // statuses change too: hidden, not removed
					c.Account = &Account{UID: uid, DID: dids[uid], Status: modelStatuses[rng.Intn(len(modelStatuses))]}
				}
				if _, err := db.Apply(ctx, c); err != nil {
					t.Error(err)
					return
				}
				writes.Add(1)
			}
		}()
	}
	// Walk until plenty of writes have landed during the walks.
	deadline := time.Now().Add(20 * time.Second)
	w0 := writes.Load()
	for walk := 0; walk < 10 || writes.Load()-w0 < 300; walk++ {
		if time.Now().After(deadline) {
			t.Fatalf("only %d writes in %d walks", writes.Load(), walk)
		}
		seen := map[uint64]int{}
		var last uint64
		for after := uint64(0); ; {
			page, err := db.CollectionRepos(coll, after, 7)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page {
				if r.UID <= last {
					t.Fatalf("walk %d: uid %d after %d", walk, r.UID, last)
				}
				last = r.UID
				seen[r.UID]++
			}
			if len(page) < 7 {
				break
			}
			after = page[len(page)-1].UID
		}
		for _, uid := range stable {
			if seen[uid] != 1 {
				t.Fatalf("walk %d: stable repository %d seen %d times", walk, uid, seen[uid])
			}
		}
	}
	close(stop)
	wg.Wait()
}

// dumpTables returns every key and value of the given tables.
func dumpTables(t *testing.T, db *DB, tables ...byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, tb := range tables {
		it, err := db.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tb}, UpperBound: []byte{tb + 1}})
		if err != nil {
			t.Fatal(err)
		}
		for ok := it.First(); ok; ok = it.Next() {
			out[string(it.Key())] = string(it.Value())
		}
		if err := closeIter(it); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// dropCollectionIndex makes the store look like one written before the
// collection index: the tables and the marker are gone.
func dropCollectionIndex(t *testing.T, db *DB) {
	t.Helper()
	b := db.db.NewBatch()
	for _, tb := range []byte{tCollCount, tCollIndex, tCollRepos, tStatus} {
		b.DeleteRange([]byte{tb}, []byte{tb + 1}, nil)
	}
	b.Delete(metaCollIndex, nil)
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

func TestCollectionIndexRebuiltAtOpen(t *testing.T) {
	defer func(n int) { rebuildBatchBytes = n }(rebuildBatchBytes)
	rebuildBatchBytes = 512 // many batches
	dir := t.TempDir()
	opts := Options{Dir: dir, GCInterval: -1}
	db, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := db.getUint(metaCollIndex); v != collectionIndexVersion {
		t.Fatalf("a new store has index version %d, want %d", v, collectionIndexVersion)
	}
	ctx := context.Background()
	m := newCollModel([]string{"app.bsky.feed.like", "app.bsky.feed.post", "app.bsky.graph.follow"})
	// Records written as a writer does: record index and counts together.
	rng := rand.New(rand.NewSource(7))
	for i := range 40 {
		did := fmt.Sprintf("did:plc:r%d", i)
		c := &Change{Account: &Account{DID: did, Status: modelStatuses[i%len(modelStatuses)]}}
		counts := map[string]uint64{}
		for _, coll := range m.colls {
			n := uint64(rng.Intn(4))
			for k := range n {
				c.Records = append(c.Records, RecordWrite{Path: fmt.Sprintf("%s/%03d", coll, k), CID: block(coll).CID})
			}
			if n > 0 {
				counts[coll] = n
				c.Collections = append(c.Collections, CollectionCount{Collection: coll, Count: n})
			}
		}
		res, err := db.Apply(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		m.uids = append(m.uids, res.UID)
		m.dids[res.UID] = did
		m.counts[res.UID] = counts
		m.status[res.UID] = c.Account.Status
	}
	// One account deleted: its records and entries are gone.
	gone := m.uids[3]
	if _, err := db.Apply(ctx, &Change{UID: gone, Delete: true, Account: &Account{UID: gone, DID: m.dids[gone], Status: StatusDeleted}}); err != nil {
		t.Fatal(err)
	}
	clear(m.counts[gone])
	m.status[gone] = StatusDeleted
	m.check(t, db, "before the rebuild")
	tables := []byte{tCollCount, tCollIndex, tCollRepos, tStatus}
	before := dumpTables(t, db, tables...)
	dropCollectionIndex(t, db)
	if got := dumpTables(t, db, tables...); len(got) != 0 {
		t.Fatalf("%d index keys left after dropping", len(got))
	}
	db.Close()

	db, err = Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	m.check(t, db, "after the rebuild")
	if after := dumpTables(t, db, tables...); !maps.Equal(after, before) {
		t.Fatalf("rebuilt tables differ: %d keys, want %d", len(after), len(before))
	}
	if v, _ := db.getUint(metaCollIndex); v != collectionIndexVersion {
		t.Fatalf("index version after the rebuild %d", v)
	}
	// The rebuilt index is maintained as usual.
	uid := m.uids[0]
	if _, err := db.Apply(ctx, &Change{UID: uid, Collections: []CollectionCount{{Collection: "app.bsky.feed.like", Count: 9}}}); err != nil {
		t.Fatal(err)
	}
	m.counts[uid]["app.bsky.feed.like"] = 9
	m.check(t, db, "after a write")
	db.Close()

	// A store from a newer program is refused, not rebuilt backwards.
	pdb, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := pdb.Set(metaCollIndex, []byte{0, 0, 0, 0, 0, 0, 0, collectionIndexVersion + 1}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	pdb.Close()
	if db, err := Open(opts); err == nil {
		db.Close()
		t.Fatal("opened a store with a newer collection index")
	}
}

// Data that predates the index may have records but no counts at all: the
// rebuild derives everything from the record index.
func TestCollectionIndexRebuiltFromRecordsAlone(t *testing.T) {
	db := openMem(t, Options{})
	ctx := context.Background()
	var uids []uint64
	for i := range 3 {
		res, err := db.Apply(ctx, &Change{Account: &Account{DID: fmt.Sprintf("did:plc:old%d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		uids = append(uids, res.UID)
	}
	// Written straight into table 08, as an older program would have.
	b := db.db.NewBatch()
	rec := block("r").CID
	for _, p := range []struct {
		uid  uint64
		path string
	}{
		{uids[0], "a.b.c/1"}, {uids[0], "a.b.c/2"}, {uids[0], "a.b.cd/1"},
		{uids[1], "a.b/1"}, {uids[1], "a.b.c/9"},
		{uids[2], "a.b.c/1"}, {uids[2], "a.b.c/2"}, {uids[2], "a.b.c/3"},
	} {
		b.Set(keyUIDString(tRecord, p.uid, p.path), []byte(rec.KeyString()), nil)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	dropCollectionIndex(t, db)
	if err := db.rebuildCollectionIndex(); err != nil {
		t.Fatal(err)
	}
	want := map[string][]uint64{"a.b": {uids[1]}, "a.b.c": {uids[0], uids[1], uids[2]}, "a.b.cd": {uids[0]}}
	for coll, w := range want {
		if got, _ := db.ReposByCollection(coll, 0, 10); !slices.Equal(got, w) {
			t.Errorf("%s lists %v, want %v", coll, got, w)
		}
	}
	counts, _ := db.CollectionCounts("", "", 10)
	if !slices.Equal(counts, []CollectionRepoCount{{"a.b", 1}, {"a.b.c", 3}, {"a.b.cd", 1}}) {
		t.Fatalf("repository counts %+v", counts)
	}
	for _, c := range []struct {
		uid  uint64
		coll string
		n    uint64
	}{{uids[0], "a.b.c", 2}, {uids[0], "a.b.cd", 1}, {uids[1], "a.b", 1}, {uids[2], "a.b.c", 3}} {
		if n, _ := db.CollectionCount(c.uid, c.coll); n != c.n {
			t.Errorf("uid %d has %d records of %s, want %d", c.uid, n, c.coll, c.n)
		}
	}
}

func TestCollectionCountsPaging(t *testing.T) {
	db := openMem(t, Options{})
	ctx := context.Background()
	colls := []string{"a.a.a", "a.a.aa", "a.b.a", "b.a.a", "z.z.z"}
	for i := range 4 {
		c := &Change{Account: &Account{DID: fmt.Sprintf("did:plc:c%d", i)}}
		for j, coll := range colls {
			if j <= i {
				c.Collections = append(c.Collections, CollectionCount{Collection: coll, Count: 1})
			}
		}
		if _, err := db.Apply(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	want := []CollectionRepoCount{{"a.a.a", 4}, {"a.a.aa", 3}, {"a.b.a", 2}, {"b.a.a", 1}}
	var got []CollectionRepoCount
	for after := ""; ; {
		page, err := db.CollectionCounts("", after, 3)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page...)
		if len(page) < 3 {
			break
		}
		after = page[len(page)-1].Collection
	}
	if !slices.Equal(got, want) {
		t.Fatalf("counts %+v, want %+v", got, want)
	}
	for _, c := range []struct {
		prefix, after string
		want          []CollectionRepoCount
	}{
		{"a.a.", "", want[:2]},
		{"a.a.a", "", want[:2]},
		{"a.a.", "a.a.a", want[1:2]},
		{"a.", "a.a.aa", want[2:3]},
		{"a.", "b", nil},
		{"b.", "a.z", want[3:]},
		{"c.", "", nil},
	} {
		got, err := db.CollectionCounts(c.prefix, c.after, 10)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("prefix %q after %q: %+v (%v), want %+v", c.prefix, c.after, got, err, c.want)
		}
	}
	if n, _ := db.CollectionRepoTotal("z.z.z"); n != 0 {
		t.Fatalf("unused collection counts %d", n)
	}
	for _, limit := range []int{0, -1} {
		if page, err := db.CollectionRepos("a.a.a", 0, limit); err != nil || len(page) != 0 {
			t.Fatalf("limit %d: %v %v", limit, page, err)
		}
	}
}
