package relay_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/reservoir-atproto/reservoir/relay"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
)

// BenchmarkIngestLean compares the verified ingest of an archive with a
// lean relay's (IngestOptions.Lean) on the stream of
// BenchmarkIngestCommits (the -ingest.* flags size it): commits/s of the
// continuing commits, their CPU, and the store's size on disk after the
// whole stream (bytes per account).
func BenchmarkIngestLean(b *testing.B) {
	s := loadBenchStream(b)
	for _, mode := range []struct {
		name string
		lean bool
	}{{"archive", false}, {"lean", true}} {
		b.Run(mode.name, func(b *testing.B) {
			var rate, cpuPer, diskPer float64
			for b.Loop() {
				db, err := store.Open(store.Options{Dir: b.TempDir(), GCInterval: -1})
				if err != nil {
					b.Fatal(err)
				}
				var wg sync.WaitGroup
				in, err := relay.NewIngest(relay.IngestOptions{
					DB: db, Repos: &repostore.Repos{DB: db}, Identity: s.ident, Workers: *benchWorkers, Lean: mode.lean,
					OnDone: func(string, int64) { wg.Done() },
				})
				if err != nil {
					b.Fatal(err)
				}
				run := func(fs []frame) (time.Duration, time.Duration) {
					start, cpu := time.Now(), cpuTime()
					wg.Add(len(fs))
					for _, f := range fs {
						if err := in.Submit(context.Background(), benchHost, f.seq, f.bytes); err != nil {
							b.Fatal(err)
						}
					}
					wg.Wait()
					return time.Since(start), cpuTime() - cpu
				}
				run(s.first)
				d, cpu := run(s.next)
				in.Close()
				if got := db.LastSeq(); got != int64(len(s.first)+len(s.next)) {
					b.Fatalf("%d events re-broadcast, want %d: some commits were refused", got, len(s.first)+len(s.next))
				}
				size := db.DiskUsage() // Pebble's, WAL included, before compactions settle
				db.Close()
				rate = float64(len(s.next)) / d.Seconds()
				cpuPer = float64(cpu.Microseconds()) / float64(len(s.next))
				diskPer = float64(size) / float64(len(s.first))
			}
			b.ReportMetric(rate, "commits/s")
			b.ReportMetric(cpuPer, "cpu-µs/commit")
			b.ReportMetric(diskPer, "disk-B/account")
		})
	}
}
