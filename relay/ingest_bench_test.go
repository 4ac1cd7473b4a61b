package relay_test

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/mst"
	"github.com/reservoir-atproto/reservoir/relay"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
)

var (
	benchAccounts = flag.Int("ingest.accounts", 10_000, "accounts in the ingest benchmark's stream")
	benchCommits  = flag.Int("ingest.commits", 3, "commits per account after the first, in the ingest benchmark")
	benchRecords  = flag.Int("ingest.records", 20, "records of each account's first commit, in the ingest benchmark")
	benchWorkers  = flag.Int("ingest.workers", 0, "IngestOptions.Workers in the ingest benchmark (0: the default)")
)

const benchHost = "pds.bench.example"

// benchStream is a pre-generated stream of signed commits: every account's
// first commit (a repository of benchRecords records), then benchCommits
// commits per account (one new record each), interleaved across accounts.
type benchStream struct {
	ident   *fakeIdentity
	first   []frame
	next    []frame
	records int
}

var (
	benchOnce sync.Once
	theStream *benchStream
)

func loadBenchStream(b *testing.B) *benchStream {
	benchOnce.Do(func() {
		start := time.Now()
		s := &benchStream{ident: newFakeIdentity()}
		n := *benchAccounts
		firsts := make([]frame, n)
		nexts := make([][]frame, n)
		var wg sync.WaitGroup
		workers := runtime.GOMAXPROCS(0)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += workers {
					firsts[i], nexts[i] = benchAccount(b, s.ident)
				}
			}()
		}
		wg.Wait()
		seq := int64(0)
		for _, f := range firsts {
			seq++
			s.first = append(s.first, frame{seq, f.bytes})
		}
		for c := range *benchCommits {
			for i := range n {
				seq++
				s.next = append(s.next, frame{seq, nexts[i][c].bytes})
			}
		}
		s.records = n * (*benchRecords + *benchCommits)
		theStream = s
		b.Logf("generated %d accounts, %d commits in %v", n, len(s.first)+len(s.next), time.Since(start))
	})
	return theStream
}

// benchAccount signs one account's commits.
func benchAccount(b *testing.B, ident *fakeIdentity) (frame, []frame) {
	priv, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		b.Fatal(err)
	}
	pub, _ := priv.PublicKey()
	did := newDID()
	ident.set(did, pub, "https://"+benchHost, "")
	opts := repo.CommitOptions{DID: syntax.DID(did), Key: priv, Clock: repo.NewRevClock(0)}
	tree := mst.NewEmpty(mst.MemBlocks{})
	enc := func(r *repo.CommitResult) frame {
		return frame{0, (&wire.Commit{Repo: did, Rev: string(r.Commit.Rev), Since: string(r.Since), Commit: r.CID, PrevData: r.PrevData, Blocks: r.Slice, Ops: r.Ops, Time: testTime}).AppendFrame(nil, 1)} // seq 0 is refused by the decoder; the stream's seqs are Submit's
	}
	var ws []repo.Write
	for j := range *benchRecords {
		ws = append(ws, create(fmt.Sprintf("app.bsky.feed.post/3l%011d", j), "hello world, this is a post"))
	}
	res, err := repo.BuildCommit(tree, nil, ws, opts)
	if err != nil {
		b.Fatal(err)
	}
	first := enc(res)
	var next []frame
	for c := range *benchCommits {
		prev := res.Commit
		if res, err = repo.BuildCommit(tree, prev, []repo.Write{create(fmt.Sprintf("app.bsky.feed.like/3m%011d", c), "a like")}, opts); err != nil {
			b.Fatal(err)
		}
		next = append(next, enc(res))
	}
	return first, next
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
// first-commits/s), then the commits that continue them (commits/s, the
// goal) and the CPU they cost (cpu-µs/commit).
func BenchmarkIngestCommits(b *testing.B) {
	s := loadBenchStream(b)
	var firstRate, rate, cpuPer, walPer, flushPer, compactPer float64
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
			start, cpu, ws := time.Now(), cpuTime(), db.WriteStats()
			defer func() {
				we := db.WriteStats()
				n := float64(len(fs))
				walPer = float64(we.WAL-ws.WAL) / n
				flushPer = float64(we.Flushed-ws.Flushed) / n
				compactPer = float64(we.Compacted-ws.Compacted) / n
			}()
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
		d2, cpu2 := run(s.next)
		in.Close()
		if got := db.LastSeq(); got != int64(len(s.first)+len(s.next)) {
			b.Fatalf("%d events re-broadcast, want %d: some commits were refused", got, len(s.first)+len(s.next))
		}
		db.Close()
		firstRate = float64(len(s.first)) / d1.Seconds()
		rate = float64(len(s.next)) / d2.Seconds()
		cpuPer = float64(cpu2.Microseconds()) / float64(len(s.next))
	}
	b.ReportMetric(firstRate, "first-commits/s")
	b.ReportMetric(rate, "commits/s")
	b.ReportMetric(cpuPer, "cpu-µs/commit")
	b.ReportMetric(walPer, "wal-B/commit")
	b.ReportMetric(flushPer, "flush-B/commit")
	b.ReportMetric(compactPer, "compact-B/commit")
}
