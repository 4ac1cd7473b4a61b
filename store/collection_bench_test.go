//go:build unix

package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

// populateCollection writes n accounts (table 01 record, table 02 DID, 1 %
// of them taken down in table 12) and their entries in coll's index
// straight into the store, then compacts it so that reads go to sstables,
// as on a server that has run for a while.
func populateCollection(b *testing.B, db *DB, coll string, n int) {
	b.Helper()
	batch := db.db.NewBatch()
	flush := func(force bool) {
		if batch.Len() < 16<<20 && !force {
			return
		}
		if err := batch.Commit(pebble.NoSync); err != nil {
			b.Fatal(err)
		}
		batch.Close()
		batch = db.db.NewBatch()
	}
	for i := 1; i <= n; i++ {
		uid := uint64(i)
		a := &Account{UID: uid, DID: fmt.Sprintf("did:plc:%024d", i), CreatedAt: time.Unix(1e9, 0)}
		if i%100 == 0 {
			a.Status = StatusTakendown
		}
		batch.Set(accountKey(a.DID), encodeAccount(a), nil)
		batch.Set(uidKey(tUID, uid), []byte(a.DID), nil)
		writeAccountStatus(batch, a)
		batch.Set(collIndexKey(coll, uid), nil, nil)
		flush(false)
	}
	batch.Set(collReposKey(coll), binary.AppendUvarint(nil, uint64(n)), nil)
	batch.Set(metaUID, binary.BigEndian.AppendUint64(nil, uint64(n)), nil)
	flush(true)
	batch.Close()
	if err := db.db.Compact(context.Background(), []byte{0}, []byte{0xff}, true); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCollectionPage pages through a collection of 1M repositories,
// 2,000 per page (the lexicon's maximum), each page after the last:
//
//   - uids: the index scan alone;
//   - repos: CollectionRepos, what listReposByCollection reads (scan, DID
//     and status of every entry);
//   - per-account: the scan, then DIDForUID and Account for every entry, as
//     the endpoint first did (the comparison for CollectionRepos).
func BenchmarkCollectionPage(b *testing.B) {
	const coll, repos, limit = "app.bsky.feed.post", 1_000_000, 2000
	db, err := Open(Options{Dir: filepath.Join(b.TempDir(), "store"), GCInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	populateCollection(b, db, coll, repos)
	pages := map[string]func(after uint64) (uint64, int, error){
		"uids": func(after uint64) (uint64, int, error) {
			uids, err := db.ReposByCollection(coll, after, limit)
			if err != nil || len(uids) == 0 {
				return 0, 0, err
			}
			return uids[len(uids)-1], len(uids), nil
		},
		"repos": func(after uint64) (uint64, int, error) {
			page, err := db.CollectionRepos(coll, after, limit)
			if err != nil || len(page) == 0 {
				return 0, 0, err
			}
			shown := 0
			for _, r := range page {
				if r.Status.Active() {
					shown++
				}
			}
			return page[len(page)-1].UID, shown, nil
		},
		"per-account": func(after uint64) (uint64, int, error) {
			uids, err := db.ReposByCollection(coll, after, limit)
			if err != nil || len(uids) == 0 {
				return 0, 0, err
			}
			shown := 0
			for _, uid := range uids {
				did, err := db.DIDForUID(uid)
				if err != nil {
					return 0, 0, err
				}
				a, err := db.Account(did)
				if err != nil {
					return 0, 0, err
				}
				if a.Status.Active() {
					shown++
				}
			}
			return uids[len(uids)-1], shown, nil
		},
	}
	for _, name := range []string{"uids", "repos", "per-account"} {
		page := pages[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var after uint64
			for b.Loop() {
				last, n, err := page(after)
				if err != nil {
					b.Fatal(err)
				}
				if n == 0 {
					b.Fatal("empty page")
				}
				after = last
				if after >= repos {
					after = 0 // walk again from the start
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/page")
		})
	}
}

// BenchmarkCollectionIndexCommit measures what the collection index adds to
// a commit: changes shaped like a one-record create (head, four new blocks,
// three superseded ones, a record, a reference count, a 1 KB event) applied
// durably by 100 repositories in parallel (group commit, as the host does),
// without and with a collection record count. Modes:
//
//   - none: no collection count (no index at all);
//   - existing: the common case, a record added to a collection the
//     repository already uses (the writer gives the old count, the
//     committer reads nothing);
//   - existing-lookup: the same without the old count, so the committer
//     looks the entry up (as for an import);
//   - first: every commit is a repository's first record of a collection
//     (an entry and a repository count are written too; worst case).
func BenchmarkCollectionIndexCommit(b *testing.B) {
	for _, disk := range []bool{true, false} {
		for _, mode := range []string{"none", "existing", "existing-lookup", "first"} {
			name := "memory/" + mode
			if disk {
				name = "disk/" + mode
			}
			b.Run(name, func(b *testing.B) { benchCommit(b, disk, mode) })
		}
	}
}

func benchCommit(b *testing.B, disk bool, mode string) {
	opts := Options{GCInterval: -1, InMemory: !disk}
	if disk {
		opts.Dir = filepath.Join(b.TempDir(), "store")
	}
	db, err := Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	const writers = 100
	uids := make([]uint64, writers)
	for w := range uids {
		res, err := db.Apply(ctx, &Change{Account: &Account{DID: fmt.Sprintf("did:plc:w%d", w)}})
		if err != nil {
			b.Fatal(err)
		}
		uids[w] = res.UID
	}
	frame := make([]byte, 1024)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), rusageCPU()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			uid := uids[w]
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				c := createLikeChange(uid, i, frame)
				switch mode {
				case "existing":
					c.Collections = []CollectionCount{{Collection: "app.bsky.feed.post", Count: uint64(i), Old: uint64(i - 1)}}
				case "existing-lookup":
					c.Collections = []CollectionCount{{Collection: "app.bsky.feed.post", Count: uint64(i)}}
				case "first":
					c.Collections = []CollectionCount{{Collection: fmt.Sprintf("app.bsky.feed.p%d", i), Count: 1}}
				}
				if _, err := db.Apply(ctx, c); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commits/s")
	b.ReportMetric(float64((rusageCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/commit")
}

// rusageCPU is the CPU time (user and system) the process has used, all
// threads (Pebble's flushes and compactions included).
func rusageCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// createLikeChange is a change the size and shape of a one-record create.
func createLikeChange(uid uint64, i int64, frame []byte) *Change {
	blk := func(kind string, size int) Block {
		return Block{CID: dagcbor.SumCBOR(fmt.Appendf(nil, "%s %d %d", kind, uid, i)), Data: make([]byte, size)}
	}
	rec := blk("record", 250)
	c := &Change{
		UID:       uid,
		Head:      &Head{Commit: blk("commit", 1).CID, Rev: rev2, Data: blk("root", 1).CID},
		NewBlocks: []Block{blk("commit", 200), blk("root", 400), blk("node", 400), rec},
		Records:   []RecordWrite{{Path: fmt.Sprintf("app.bsky.feed.post/%013d", i), CID: rec.CID}},
		RefCounts: []RefCount{{CID: rec.CID, Count: 1}},
		Events:    []FrameEncoder{func(b []byte, seq int64) []byte { return append(b, frame...) }},
	}
	for _, k := range []string{"old-commit", "old-root", "old-node"} {
		d := blk(k, 300)
		c.Dead = append(c.Dead, DeadBlock{CID: d.CID, Data: d.Data})
	}
	return c
}

// BenchmarkCollectionIndexRebuild is the one-time cost at Open of a store
// that predates the index: 100k repositories with 30 records each in three
// collections (3M record-index keys, 300k index entries) written straight
// into table 08, then the rebuild. records/s is the figure to scale by.
func BenchmarkCollectionIndexRebuild(b *testing.B) {
	const repos, perColl = 100_000, 10
	colls := []string{"app.bsky.feed.like", "app.bsky.feed.post", "app.bsky.graph.follow"}
	db, err := Open(Options{Dir: filepath.Join(b.TempDir(), "store"), GCInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	batch := db.db.NewBatch()
	rec := []byte(block("r").CID.KeyString())
	for uid := uint64(1); uid <= repos; uid++ {
		for _, coll := range colls {
			for k := range perColl {
				batch.Set(keyUIDString(tRecord, uid, fmt.Sprintf("%s/3l%011d", coll, k)), rec, nil)
			}
		}
		if batch.Len() > 16<<20 {
			if err := batch.Commit(pebble.NoSync); err != nil {
				b.Fatal(err)
			}
			batch.Close()
			batch = db.db.NewBatch()
		}
	}
	if err := batch.Commit(pebble.NoSync); err != nil {
		b.Fatal(err)
	}
	batch.Close()
	if err := db.db.Compact(context.Background(), []byte{0}, []byte{0xff}, true); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := db.rebuildCollectionIndex(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(repos*len(colls)*perColl)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	if n, _ := db.CollectionRepoTotal(colls[0]); n != repos {
		b.Fatalf("rebuilt count %d, want %d", n, repos)
	}
}

// BenchmarkCollectionCommitterWork isolates the committer's serial work per
// change, which bounds write throughput once fsyncs are shared: checking the
// change, planning the index moves, writing everything into the batch, in
// groups of 256 with the repository counts at the end of each group. The
// batches are dropped instead of committed, so neither the fsync nor
// Pebble's compactions blur the figure. Modes as in
// BenchmarkCollectionIndexCommit; the repositories' entries are on disk
// (flushed), as they are for a repository written before.
func BenchmarkCollectionCommitterWork(b *testing.B) {
	db, err := Open(Options{Dir: filepath.Join(b.TempDir(), "store"), GCInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	const writers, group = 100, 256
	const coll = "app.bsky.feed.post"
	uids := make([]uint64, writers)
	for w := range uids {
		res, err := db.Apply(ctx, &Change{Account: &Account{DID: fmt.Sprintf("did:plc:w%d", w)},
			Collections: []CollectionCount{{Collection: coll, Count: 1}}})
		if err != nil {
			b.Fatal(err)
		}
		uids[w] = res.UID
	}
	if err := db.db.Flush(); err != nil {
		b.Fatal(err)
	}
	frame := make([]byte, 1024)
	for _, mode := range []string{"none", "existing", "existing-lookup", "first"} {
		b.Run(mode, func(b *testing.B) {
			changes := make([]*Change, group)
			for i := range changes {
				c := createLikeChange(uids[i%writers], int64(i), frame)
				switch mode {
				case "existing":
					c.Collections = []CollectionCount{{Collection: coll, Count: 2, Old: 1}}
				case "existing-lookup":
					c.Collections = []CollectionCount{{Collection: coll, Count: 2}}
				case "first":
					c.Collections = []CollectionCount{{Collection: fmt.Sprintf("app.bsky.feed.p%d", i), Count: 1}}
				}
				changes[i] = c
			}
			batch := db.db.NewBatch()
			defer batch.Close()
			colls := newCollTracker(db)
			now := time.Now()
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				c := changes[i%group]
				if err := checkChange(c); err != nil {
					b.Fatal(err)
				}
				moves, err := colls.plan(c)
				if err != nil {
					b.Fatal(err)
				}
				writeChange(batch, c, int64(i), now)
				colls.apply(batch, moves)
				if i++; i%group == 0 {
					if err := colls.flush(batch); err != nil {
						b.Fatal(err)
					}
					batch.Reset()
					colls = newCollTracker(db)
				}
			}
		})
	}
}
