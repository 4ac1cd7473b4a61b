package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"time"
)

func runRSS(ctx context.Context, e *benchEnv, args []string) error {
	fs := flag.NewFlagSet("rss", flag.ContinueOnError)
	var sf streamFlags
	var rf relayFlags
	sf.register(fs, 1_000_000, 3, 0)
	rf.register(fs)
	rate := fs.Float64("rate", 2_000, "upstream commits per second in the steady state")
	warmup := fs.Duration("warmup", 30*time.Second, "paced ingest before the measured window")
	duration := fs.Duration("duration", time.Minute, "the measured window")
	stall := fs.Duration("stall", 2*time.Minute, "give up when the relay re-broadcasts nothing for this long")
	fs.Usage = func() {
		fmt.Fprintln(e.log, "usage: reservoir-bench rss [flags]\n\nMemory with many archived accounts (P6, issue 6): a relay (`reservoir serve`) archives\n--accounts accounts (a genesis commit of --records records each, ingested as fast as it goes),\nthen ingests continuing commits at --rate; its RSS (from /proc) over the window: median and peak.\n--commits 0 sizes the stream to the run. The 1M-account stream is generated once (all cores)\nand cached.")
		fs.PrintDefaults()
	}
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if rf.compareIndigo {
		return fmt.Errorf("%w: rss measures reservoir only", errUsage)
	}
	if sf.commits == 0 {
		sf.commits = int(*rate*(*warmup+*duration).Seconds()) + int(*rate*10)
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
	starter, err := e.reservoirRelay(ctx, &rf)
	if err != nil {
		return err
	}
	net, err := newNetwork(s, accounts)
	if err != nil {
		return err
	}
	defer net.close()
	r, err := starter(ctx, filepath.Join(work, "reservoir"), net.host, net.dir.URL())
	if err != nil {
		return err
	}
	defer r.stop()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, err := subscribeCount(cctx, r.wsRoot(), 64<<10)
	if err != nil {
		return err
	}
	if err := net.waitSubscribed(ctx, r, time.Minute); err != nil {
		return err
	}
	t0 := time.Now()
	net.host.Release(s.Manifest.First)
	if err := c.waitCommits(ctx, s.Manifest.First, *stall, func(n int64) {
		st, _ := r.stats()
		e.logf("archiving: %d of %d accounts (%.0f/s), RSS %s", n, s.Manifest.First, float64(n)/time.Since(t0).Seconds(), mib(st.RSS))
	}); err != nil {
		return fmt.Errorf("genesis commits: %w (log: %s)", err, r.logf.Name())
	}
	archived := time.Since(t0)
	e.logf("%d accounts archived in %v; pacing at %.0f commits/s", s.Manifest.First, archived.Round(time.Second), *rate)
	paced := make(chan error, 1)
	go func() { paced <- net.host.Pace(cctx, s.Len(), *rate) }()
	select {
	case <-time.After(*warmup):
	case <-ctx.Done():
		return ctx.Err()
	}
	var xs []int64
	n0, t1, st0 := c.commits.Load(), time.Now(), orZero(r.stats())
	for time.Since(t1) < *duration {
		if st, err := r.stats(); err == nil {
			xs = append(xs, st.RSS)
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	n1, t2, st1 := c.commits.Load(), time.Now(), orZero(r.stats())
	if err := e.writeHeapProfile(); err != nil {
		return err
	}
	select {
	case err := <-paced:
		if err == nil {
			return fmt.Errorf("the stream ran out during the window: generate more --commits")
		}
	default:
	}
	slices.Sort(xs)
	e.result("reservoir", fmt.Sprintf("RSS %s median, %s max over %.0f s (peak since start %s) with %s archived accounts at %.0f events/s (%.0f/s re-broadcast, %.0f%% CPU); archiving took %v (%.0f accounts/s)",
		mib(xs[len(xs)/2]), mib(xs[len(xs)-1]), t2.Sub(t1).Seconds(), mib(st1.HWM), thousands(float64(s.Manifest.First)), *rate,
		float64(n1-n0)/t2.Sub(t1).Seconds(), 100*(st1.CPU-st0.CPU).Seconds()/t2.Sub(t1).Seconds(),
		archived.Round(time.Second), float64(s.Manifest.First)/archived.Seconds()))
	return nil
}
