package host

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
)

// benchHost is a host over an on-disk store (fsync included, as in
// production) with n adopted accounts.
func benchHost(b *testing.B, n int, history time.Duration) (*Host, *store.DB, []string) {
	b.Helper()
	db, err := store.Open(store.Options{Dir: filepath.Join(b.TempDir(), "store"), GCInterval: -1, HistoryWindow: history, EventWindow: history})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	h := New(Options{DB: db, Repos: &repostore.Repos{DB: db}})
	var dids []string
	for i := 0; i < n; i++ {
		key, _ := atcrypto.GeneratePrivateKeyK256()
		did := fmt.Sprintf("did:web:bench%d.test", i)
		if _, err := h.CreateAccount(context.Background(), CreateAccountInput{Handle: fmt.Sprintf("bench%d.test", i), DID: did, SigningKey: key.Multibase()}); err != nil {
			b.Fatal(err)
		}
		dids = append(dids, did)
	}
	return h, db, dids
}

// postRecord is a realistic post of ~250 bytes.
func postRecord(i int) []byte {
	return record(fmt.Sprintf("post number %d: a few words about the weather, the news and what I had for lunch today, as people do", i))
}

// BenchmarkHostedWrites measures single-record commits (create one post,
// sign, apply durably): on one repository (serialized by its lock), and on
// 100 repositories written in parallel (group commit shares the fsyncs).
func BenchmarkHostedWrites(b *testing.B) {
	for _, tc := range []struct {
		name    string
		repos   int
		writers int
		rate    int // commits/s across all writers; 0: as fast as possible
	}{{"one-repo", 1, 1, 0}, {"100-repos-parallel", 100, 100, 0}, {"100-repos-at-2000/s", 100, 100, 2000}} {
		b.Run(tc.name, func(b *testing.B) {
			h, _, dids := benchHost(b, tc.repos, 0)
			ctx := context.Background()
			var next atomic.Int64
			var mu sync.Mutex
			var lat []time.Duration
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for w := 0; w < tc.writers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					did := dids[w%len(dids)]
					var mine []time.Duration
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							break
						}
						if tc.rate > 0 {
							// Paced: write i is due at start + i/rate, so the
							// latency is measured at the target load, not at
							// saturation (where it only shows queueing).
							if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(tc.rate))); d > 0 {
								time.Sleep(d)
							}
						}
						t0 := time.Now()
						path := fmt.Sprintf("app.bsky.feed.post/p%012d", i)
						if _, err := h.ApplyWrites(ctx, did, []Write{{Write: repo.Write{Action: repo.ActionCreate, Path: path, Record: postRecord(int(i))}}}, cid.Undef); err != nil {
							b.Error(err)
							return
						}
						mine = append(mine, time.Since(t0))
					}
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				}(w)
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			slices.Sort(lat)
			if len(lat) > 0 {
				b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "commits/s")
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			}
		})
	}
}

// BenchmarkDiskPerCARByte writes a 100k-record repository through the host
// (200 records per commit), compacts the store and reports the bytes on disk
// per byte of the repository's CAR export (goal ≤ 0.6 with zstd).
func BenchmarkDiskPerCARByte(b *testing.B) {
	for b.Loop() {
		// History and events expire at once here: the figure is the cost of
		// the repository itself, not of the superseded blocks kept for reads
		// at past commits, nor of the firehose window (each #commit frame
		// carries its blocks).
		h, db, dids := benchHost(b, 1, time.Nanosecond)
		ctx := context.Background()
		const records, perCommit = 100_000, 200
		for i := 0; i < records; i += perCommit {
			ws := make([]Write, 0, perCommit)
			for j := i; j < i+perCommit; j++ {
				ws = append(ws, Write{Write: repo.Write{Action: repo.ActionCreate, Path: fmt.Sprintf("app.bsky.feed.post/3l%011d", j), Record: postRecord(j)}})
			}
			if _, err := h.ApplyWrites(ctx, dids[0], ws, cid.Undef); err != nil {
				b.Fatal(err)
			}
		}
		if err := db.CollectGarbage(ctx); err != nil {
			b.Fatal(err)
		}
		if err := db.Compact(ctx); err != nil {
			b.Fatal(err)
		}
		a, _ := db.Account(dids[0])
		var carBytes countWriter
		if err := (&repostore.Repos{DB: db}).WriteRepo(&carBytes, a, ""); err != nil {
			b.Fatal(err)
		}
		disk, tables := db.DiskUsage(), db.TableBytes()
		b.ReportMetric(float64(carBytes), "car-bytes")
		b.ReportMetric(float64(disk), "disk-bytes")
		b.ReportMetric(float64(tables)/float64(carBytes), "tables/car")
	}
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) { *c += countWriter(len(p)); return len(p), nil }
