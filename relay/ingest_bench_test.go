package relay_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"

	"github.com/reservoir-atproto/reservoir/internal/loadgen"
	"github.com/reservoir-atproto/reservoir/relay"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
)

var (
	benchAccounts = flag.Int("ingest.accounts", 10_000, "accounts in the ingest benchmark's stream")
	benchCommits  = flag.Int("ingest.commits", 4, "continuing commits per account (on average: random accounts), in the ingest benchmark")
	benchRecords  = flag.Int("ingest.records", 10, "records of each account's first commit, in the ingest benchmark")
	benchWorkers  = flag.Int("ingest.workers", 0, "IngestOptions.Workers in the ingest benchmark (0: the default)")
	benchProfile  = flag.String("ingest.cpuprofile", "", "write a CPU profile of the continuing commits (the goal's phase) of BenchmarkIngestCommits to this file")
)

const benchHost = "pds.bench.example"

// benchStream is a pre-generated stream of signed commits, the load
// generator's (internal/loadgen, the stream reservoir-bench serves): every
// account's first commit (a profile and benchRecords-1 records of the
// app.bsky mix, unique contents), then benchCommits×accounts commits of one
// operation each on random accounts, with the mix's likes, posts, follows,
// reposts, deletes and profile updates.
type benchStream struct {
	ident   *fakeIdentity
	first   []frame
	next    []frame
	records int
}

var (
	benchOnce sync.Once
	theStream *benchStream
	streamErr error
)

func loadBenchStream(b *testing.B) *benchStream {
	benchOnce.Do(func() {
		start := time.Now()
		dir, err := os.MkdirTemp("", "reservoir-ingest-bench-")
		if err != nil {
			streamErr = err
			return
		}
		defer os.RemoveAll(dir)
		p := loadgen.Params{Accounts: *benchAccounts, FirstRecords: *benchRecords, Commits: *benchAccounts * *benchCommits, Seed: 1}
		ls, err := loadgen.Generate(context.Background(), dir, p, loadgen.GenerateOptions{})
		if err != nil {
			streamErr = err
			return
		}
		defer ls.Close()
		accounts, err := ls.Accounts()
		if err != nil {
			streamErr = err
			return
		}
		s := &benchStream{ident: newFakeIdentity(), records: int(ls.Manifest.Records)}
		for _, a := range accounts {
			key, err := atcrypto.ParsePublicMultibase(a.Key)
			if err != nil {
				streamErr = fmt.Errorf("account %s: %w", a.DID, err)
				return
			}
			s.ident.set(a.DID, key, "https://"+benchHost, "")
		}
		r := ls.Reader(0)
		for {
			buf, seq, err := r.Next(nil)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				streamErr = err
				return
			}
			if seq <= ls.Manifest.First {
				s.first = append(s.first, frame{seq, buf})
			} else {
				s.next = append(s.next, frame{seq, buf})
			}
		}
		theStream = s
		b.Logf("generated %d accounts, %d commits (%d records) in %v", len(accounts), len(s.first)+len(s.next), s.records, time.Since(start))
	})
	if streamErr != nil {
		b.Fatal(streamErr)
	}
	return theStream
}

// startProfile starts a CPU profile into file, when it is set, and returns
// the function that stops it.
func startProfile(b *testing.B, file string) func() {
	if file == "" {
		return func() {}
	}
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIngestCommits is performance goal P1: verified ingest, from
// upstream #commit frames to durable, re-broadcast commits (signature,
// sync-1.1 inversion, forward apply on the stored tree, one store change
// each, group commits on disk). Each iteration replays the whole stream
// into a fresh store: first the accounts' first commits (reported as
// first-commits/s), then, once Pebble's flushes and compactions of those
// have settled, the commits that continue them (commits/s, the goal) and
// the CPU they cost while they ran (cpu-µs/commit) and until the
// compactions they caused have settled too (settled-cpu-µs/commit; the
// bytes per commit are counted until then as well). Settling first keeps
// the first commits' compactions out of the measured phase, whose numbers
// otherwise varied with how much of that debt fell inside it.
func BenchmarkIngestCommits(b *testing.B) {
	s := loadBenchStream(b)
	var firstRate, rate, cpuPer, settledPer float64
	var ws, we store.WriteStats
	for b.Loop() {
		db, err := store.Open(store.Options{Dir: b.TempDir(), GCInterval: -1})
		if err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		in, err := relay.NewIngest(relay.IngestOptions{
			DB: db, Repos: &repostore.Repos{DB: db}, Identity: s.ident, Workers: *benchWorkers,
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
		d1, _ := run(s.first)
		settle(b, db)
		stop := startProfile(b, *benchProfile)
		ws = db.WriteStats()
		cpu := cpuTime()
		d2, cpu2 := run(s.next)
		settle(b, db)
		settled := cpuTime() - cpu
		we = db.WriteStats()
		stop()
		in.Close()
		if got := db.LastSeq(); got != int64(len(s.first)+len(s.next)) {
			b.Fatalf("%d events re-broadcast, want %d: some commits were refused", got, len(s.first)+len(s.next))
		}
		db.Close()
		firstRate = float64(len(s.first)) / d1.Seconds()
		rate = float64(len(s.next)) / d2.Seconds()
		cpuPer = float64(cpu2.Microseconds()) / float64(len(s.next))
		settledPer = float64(settled.Microseconds()) / float64(len(s.next))
	}
	n := float64(len(s.next))
	b.ReportMetric(firstRate, "first-commits/s")
	b.ReportMetric(rate, "commits/s")
	b.ReportMetric(cpuPer, "cpu-µs/commit")
	b.ReportMetric(settledPer, "settled-cpu-µs/commit")
	b.ReportMetric(float64(we.WAL-ws.WAL)/n, "wal-B/commit")
	b.ReportMetric(float64(we.Flushed-ws.Flushed)/n, "flush-B/commit")
	b.ReportMetric(float64(we.Compacted-ws.Compacted)/n, "compact-B/commit")
}

// settle waits until the store has run no flush or compaction for a
// quarter of a second (at most two minutes).
func settle(b *testing.B, db *store.DB) {
	deadline := time.Now().Add(2 * time.Minute)
	for idle := 0; idle < 5; {
		if time.Now().After(deadline) {
			b.Fatal("the store's compactions did not settle in two minutes")
		}
		time.Sleep(50 * time.Millisecond)
		if db.WriteStats().Busy {
			idle = 0
		} else {
			idle++
		}
	}
}
