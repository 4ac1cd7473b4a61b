package relay_test

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/reservoir-atproto/reservoir/relay"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
)

var (
	backfillRepos   = flag.Int("backfill.repos", 1000, "repositories of the upstream in the backfill benchmark")
	backfillRecords = flag.Int("backfill.records", 100, "records per repository in the backfill benchmark")
	backfillWorkers = flag.Int("backfill.workers", 4, "concurrent Backfill calls in the backfill benchmark")
)

// BenchmarkIngestBackfill measures the backfill of a newly crawled host
// (issue 6): Backfill of every repository it lists, each fetched with
// getRepo over HTTP from a reservoir host on loopback, verified fully
// (signature, every node, every record, canonical rebuild) and stored with
// its indexes and a #sync, on disk. It reports repos/s and records/s.
func BenchmarkIngestBackfill(b *testing.B) {
	ident := newFakeIdentity()
	up := newUpstream(b)
	start := time.Now()
	dids := make([]string, *backfillRepos)
	for i := range dids {
		dids[i] = up.createAccount(ident, fmt.Sprintf("bf%d.test", i))
		for done := 0; done < *backfillRecords; {
			var ws []repo.Write
			for ; done < *backfillRecords && len(ws) < repo.MaxCommitOps; done++ {
				ws = append(ws, create(fmt.Sprintf("app.bsky.feed.post/3l%011d", done), "a post of some length, like most posts are"))
			}
			up.write(dids[i], ws...)
		}
	}
	b.Logf("upstream: %d repositories of %d records in %v", len(dids), *backfillRecords, time.Since(start))
	var reposPerSec float64
	for b.Loop() {
		db, err := store.Open(store.Options{Dir: b.TempDir(), GCInterval: -1})
		if err != nil {
			b.Fatal(err)
		}
		in, err := relay.NewIngest(relay.IngestOptions{DB: db, Repos: &repostore.Repos{DB: db}, Identity: ident, AllowInsecure: true})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		work := make(chan string)
		var wg sync.WaitGroup
		for range *backfillWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for did := range work {
					if err := in.Backfill(context.Background(), up.hostname, did); err != nil {
						b.Error(err)
					}
				}
			}()
		}
		for _, did := range dids {
			work <- did
		}
		close(work)
		wg.Wait()
		reposPerSec = float64(len(dids)) / time.Since(start).Seconds()
		in.Close()
		if got := db.LastSeq(); got != int64(len(dids)) {
			b.Fatalf("%d #sync events, want %d", got, len(dids))
		}
		db.Close()
	}
	b.ReportMetric(reposPerSec, "repos/s")
	b.ReportMetric(reposPerSec*float64(*backfillRecords), "records/s")
}
