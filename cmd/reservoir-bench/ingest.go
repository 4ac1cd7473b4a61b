package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"time"

	"github.com/reservoir-atproto/reservoir/internal/loadgen"
)

// streamFlags are the parameters of the generated stream.
type streamFlags struct {
	accounts, records, commits int
	seed                       int64
}

func (s *streamFlags) register(fs *flag.FlagSet, accounts, records, commits int) {
	fs.IntVar(&s.accounts, "accounts", accounts, "accounts of the synthetic network (each starts with a genesis commit)")
	fs.IntVar(&s.records, "records", records, "records of each account's genesis commit")
	fs.IntVar(&s.commits, "commits", commits, "continuing commits of one operation each (the op mix), after the genesis commits")
	fs.Int64Var(&s.seed, "seed", 1, "seed of the generated contents")
}

func (s *streamFlags) params() loadgen.Params {
	return loadgen.Params{Accounts: s.accounts, FirstRecords: s.records, Commits: s.commits, Seed: s.seed}
}

// stream generates (or opens the cached) stream and its accounts.
func (e *benchEnv) stream(ctx context.Context, p loadgen.Params) (*loadgen.Stream, []loadgen.Account, error) {
	start := time.Now()
	s, err := loadgen.Generate(ctx, e.cacheDir, p, loadgen.GenerateOptions{Progress: func(done, total int) {
		e.logf("generating %s: %d of %d accounts", p.Name(), done, total)
	}})
	if err != nil {
		return nil, nil, err
	}
	accounts, err := s.Accounts()
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	e.logf("stream %s: %d frames, %.1f MB (generated in %s; opened in %v)", s.Dir, s.Len(), float64(s.Manifest.Bytes)/1e6, s.Manifest.Took, time.Since(start).Round(time.Millisecond))
	return s, accounts, nil
}

// relayStarter starts the relay under test against a host and directory.
type relayStarter func(ctx context.Context, dir string, host *loadgen.Host, plcURL string) (*relayProc, error)

// reservoirStarter runs `reservoir serve` and asks it to crawl the host.
func reservoirStarter(bin string, lean bool) relayStarter {
	return func(ctx context.Context, dir string, host *loadgen.Host, plcURL string) (*relayProc, error) {
		p, err := startReservoir(ctx, bin, dir, plcURL, lean)
		if err != nil {
			return nil, err
		}
		if err := p.crawl(ctx, host.URL()); err != nil {
			p.stop()
			return nil, err
		}
		return p, nil
	}
}

// indigoStarter runs indigo's relay with the host's row in its database.
func indigoStarter(e *benchEnv, bin, pgURL string) relayStarter {
	return func(ctx context.Context, dir string, host *loadgen.Host, plcURL string) (*relayProc, error) {
		return startIndigo(ctx, e, bin, dir, plcURL, pgURL, host.Hostname())
	}
}

// network is a fake host and its directory for one relay's run.
type network struct {
	host *loadgen.Host
	dir  *loadgen.Directory
}

func newNetwork(s *loadgen.Stream, accounts []loadgen.Account) (*network, error) {
	h, err := loadgen.NewHost(s, nil)
	if err != nil {
		return nil, err
	}
	d, err := loadgen.NewDirectory(accounts, h.URL())
	if err != nil {
		h.Close()
		return nil, err
	}
	return &network{host: h, dir: d}, nil
}

func (n *network) close() { n.host.Close(); n.dir.Close() }

// waitSubscribed waits until the relay subscribed to the host.
func (n *network) waitSubscribed(ctx context.Context, r *relayProc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if open, _ := n.host.Subscribers(); open > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not subscribe to the host within %v (log: %s)", r.name, timeout, r.logf.Name())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.exited:
			return fmt.Errorf("%s exited (log: %s)", r.name, r.logf.Name())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ingestResult is one relay's ingest figures.
type ingestResult struct {
	genesis, commits   int64
	genesisD, commitsD time.Duration
	cpu                time.Duration // of the continuing commits
	rss, hwm           int64
}

func (r ingestResult) rate() float64 { return float64(r.commits) / r.commitsD.Seconds() }

func (r ingestResult) cpuPer() float64 {
	return float64(r.cpu.Microseconds()) / float64(r.commits)
}

func (r ingestResult) String() string {
	return fmt.Sprintf("%s commits/s verified (%d commits in %.2f s), %s cpu-µs/commit; genesis %s accounts/s (%d in %.2f s); RSS %s, peak %s",
		thousands(r.rate()), r.commits, r.commitsD.Seconds(), thousands(r.cpuPer()),
		thousands(float64(r.genesis)/r.genesisD.Seconds()), r.genesis, r.genesisD.Seconds(), mib(r.rss), mib(r.hwm))
}

// ingestOne runs one relay over the whole stream: the genesis commits
// first (accounts created), then the continuing commits, measured.
func ingestOne(ctx context.Context, e *benchEnv, name, work string, s *loadgen.Stream, accounts []loadgen.Account, start relayStarter, stall time.Duration) (ingestResult, error) {
	var res ingestResult
	net, err := newNetwork(s, accounts)
	if err != nil {
		return res, err
	}
	defer net.close()
	r, err := start(ctx, filepath.Join(work, name), net.host, net.dir.URL())
	if err != nil {
		return res, err
	}
	defer r.stop()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, err := subscribeCount(cctx, r.wsRoot(), 64<<10)
	if err != nil {
		return res, err
	}
	if err := net.waitSubscribed(ctx, r, 60*time.Second); err != nil {
		return res, err
	}
	progress := func(n int64) { e.logf("%s: %d commits re-broadcast", name, n) }
	first, total := s.Manifest.First, s.Len()
	t0, st0 := time.Now(), orZero(r.stats())
	net.host.Release(first)
	if err := c.waitCommits(ctx, first, stall, progress); err != nil {
		return res, fmt.Errorf("%s: genesis commits: %w (log: %s)", name, err, r.logf.Name())
	}
	t1, st1 := time.Now(), orZero(r.stats())
	e.logf("%s: %d genesis commits in %v (CPU %v)", name, first, t1.Sub(t0).Round(time.Millisecond), (st1.CPU - st0.CPU).Round(time.Millisecond))
	var stopProfile = func() {}
	if r.statsFn != nil { // in process: the profile shows the relay
		if stopProfile, err = e.startProfile(); err != nil {
			return res, err
		}
	}
	net.host.Release(total)
	err = c.waitCommits(ctx, total, stall, progress)
	stopProfile()
	if err != nil {
		return res, fmt.Errorf("%s: continuing commits: %w (log: %s)", name, err, r.logf.Name())
	}
	t2, st2 := time.Now(), orZero(r.stats())
	res = ingestResult{genesis: first, commits: total - first, genesisD: t1.Sub(t0), commitsD: t2.Sub(t1), cpu: st2.CPU - st1.CPU, rss: st2.RSS, hwm: st2.HWM}
	return res, nil
}

// orZero drops the error of a /proc read: a figure from a process that
// just exited is zero, and the run fails elsewhere.
func orZero(st procStats, _ error) procStats { return st }

func runIngest(ctx context.Context, e *benchEnv, args []string) error {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	var sf streamFlags
	var rf relayFlags
	sf.register(fs, 10_000, 10, 40_000)
	rf.register(fs)
	stall := fs.Duration("stall", time.Minute, "give up when the relay re-broadcasts nothing for this long")
	fs.Usage = func() {
		fmt.Fprintln(e.log, "usage: reservoir-bench ingest [flags]\n\nVerified ingest (P1): a relay (`reservoir serve`, a child process) crawls a fake host serving the\npre-generated stream as fast as it takes it; commits/s and CPU per commit (from /proc) of the\ncontinuing commits, counted on the relay's own firehose.")
		fs.PrintDefaults()
	}
	if err := e.parse(fs, args); err != nil {
		return err
	}
	s, accounts, err := e.stream(ctx, sf.params())
	if err != nil {
		return err
	}
	defer s.Close()
	work, cleanup, err := e.work()
	if err != nil {
		return err
	}
	defer cleanup()
	var indigoBin string
	if rf.compareIndigo {
		if indigoBin, err = indigoBinary(&rf); err != nil {
			return err
		}
	}
	starter, err := e.reservoirRelay(ctx, &rf)
	if err != nil {
		return err
	}
	ours, err := ingestOne(ctx, e, "reservoir", work, s, accounts, starter, *stall)
	if err != nil {
		return err
	}
	e.result("reservoir", ours.String())
	if !rf.compareIndigo {
		return nil
	}
	theirs, err := ingestOne(ctx, e, "indigo", work, s, accounts, indigoStarter(e, indigoBin, rf.pgURL), *stall)
	if err != nil {
		return err
	}
	e.result("indigo", theirs.String())
	e.result("reservoir/indigo", fmt.Sprintf("%.2f× commits/s, %.2f× CPU per commit", ours.rate()/theirs.rate(), ours.cpuPer()/theirs.cpuPer()))
	return nil
}
