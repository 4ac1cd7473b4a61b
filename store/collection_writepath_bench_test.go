//go:build unix

package store_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
)

// BenchmarkCollectionIndexWritePath is the cost of the collection index on
// hosted writes: one-record creates on 100 repositories written in parallel,
// each commit going the way host.ApplyWrites takes it (load the tree, build
// and sign the commit, repostore.CommitChange, store.Apply durably on disk),
// with the change's collection counts kept (index) or dropped before Apply
// (no-index: no record counts, no index entries, no committer reads). The
// writer's read of the old count stays in both: it is one Get, measured
// apart by the store benchmarks. Besides throughput it reports the process
// CPU time per commit, which a shared machine disturbs less.
func BenchmarkCollectionIndexWritePath(b *testing.B) {
	for _, index := range []bool{false, true} {
		name := "no-index"
		if index {
			name = "index"
		}
		b.Run(name, func(b *testing.B) { benchWritePath(b, index) })
	}
}

type benchWriter struct {
	did string
	key atcrypto.PrivateKey
}

func benchWritePath(b *testing.B, index bool) {
	db, err := store.Open(store.Options{Dir: filepath.Join(b.TempDir(), "store"), GCInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	repos := &repostore.Repos{DB: db}
	ctx := context.Background()
	const writers = 100
	ws := make([]benchWriter, writers)
	for i := range ws {
		key, err := atcrypto.GeneratePrivateKeyK256()
		if err != nil {
			b.Fatal(err)
		}
		ws[i] = benchWriter{did: fmt.Sprintf("did:web:writer%d.test", i), key: key}
		if _, err := db.Apply(ctx, &store.Change{Account: &store.Account{DID: ws[i].did, Hosted: true}}); err != nil {
			b.Fatal(err)
		}
	}
	clock := repo.NewRevClock(0)
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), processCPU()
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			defer func() { mu.Lock(); lat = append(lat, mine...); mu.Unlock() }()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				t0 := time.Now()
				if err := benchCreate(ctx, db, repos, clock, w, i, index); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed, cpu := time.Since(start), processCPU()-cpu0
	b.StopTimer()
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/commit")
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "commits/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	}
}

// processCPU is the CPU time (user and system) the process has used, all
// threads (Pebble's flushes and compactions included): on a shared machine a
// steadier measure of a commit's cost than its wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchCreate commits one new post, as host.ApplyWrites does.
func benchCreate(ctx context.Context, db *store.DB, repos *repostore.Repos, clock *repo.RevClock, w benchWriter, i int64, index bool) error {
	a, err := db.Account(w.did)
	if err != nil {
		return err
	}
	tree, err := repos.Tree(a)
	if err != nil {
		return err
	}
	var prev *repo.Commit
	if a.Head.Defined() {
		prev = &repo.Commit{Rev: syntax.TID(a.Head.Rev), Data: a.Head.Data}
	}
	rec, err := dagcbor.Marshal(map[string]any{"$type": "app.bsky.feed.post", "createdAt": "2026-11-26T00:00:00Z",
		"text": fmt.Sprintf("post number %d: a few words about the weather, the news and what I had for lunch today, as people do", i)})
	if err != nil {
		return err
	}
	write := repo.Write{Action: repo.ActionCreate, Path: fmt.Sprintf("app.bsky.feed.post/p%012d", i), Record: rec}
	res, err := repo.BuildCommit(tree, prev, []repo.Write{write}, repo.CommitOptions{DID: syntax.DID(w.did), Key: w.key, Clock: clock})
	if err != nil {
		return err
	}
	c, err := repos.CommitChange(a, res, tree, time.Now())
	if err != nil {
		return err
	}
	if !index {
		c.Collections = nil
	}
	_, err = db.Apply(ctx, c)
	return err
}
