package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/reservoir-atproto/reservoir/internal/loadgen"
)

// fanoutParams are the fan-out scenario's knobs.
type fanoutParams struct {
	consumers        int
	rate             float64
	warmup, duration time.Duration
}

// fanoutResult is one relay's fan-out figures.
type fanoutResult struct {
	consumers  int
	delivered  int64   // frames to all consumers in the measured window
	seconds    float64 // of the window
	minPer     float64 // frames/s of the slowest consumer
	dropped    int     // consumers whose connection ended
	base, load int64   // median RSS before and with the consumers
	cpu        time.Duration
}

func (r fanoutResult) rate() float64 { return float64(r.delivered) / r.seconds }

func (r fanoutResult) perConsumer() float64 {
	return float64(r.load-r.base) / float64(r.consumers)
}

func (r fanoutResult) String() string {
	return fmt.Sprintf("%s frames/s delivered to %d consumers (slowest %s/s, %d dropped), RSS %s per consumer (%s → %s), %.0f%% CPU",
		thousands(r.rate()), r.consumers, thousands(r.minPer), r.dropped, fmt.Sprintf("%.1f KiB", r.perConsumer()/1024),
		mib(r.base), mib(r.load), 100*r.cpu.Seconds()/r.seconds)
}

// sampleRSS samples a process's RSS every 250 ms until stop is closed,
// and returns the median.
func sampleRSS(r *relayProc, stop <-chan struct{}) int64 {
	var xs []int64
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		if st, err := r.stats(); err == nil {
			xs = append(xs, st.RSS)
		}
		select {
		case <-stop:
			if len(xs) == 0 {
				return 0
			}
			slices.Sort(xs)
			return xs[len(xs)/2]
		case <-t.C:
		}
	}
}

// fanoutOne: the genesis commits as fast as possible, then the continuing
// commits at the rate: a warm-up without consumers (the base RSS), then
// the consumers connect and the window is measured.
func fanoutOne(ctx context.Context, e *benchEnv, name, work string, s *loadgen.Stream, accounts []loadgen.Account, start relayStarter, p fanoutParams) (fanoutResult, error) {
	res := fanoutResult{consumers: p.consumers}
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
	net.host.Release(s.Manifest.First)
	if err := c.waitCommits(ctx, s.Manifest.First, time.Minute, nil); err != nil {
		return res, fmt.Errorf("%s: genesis commits: %w (log: %s)", name, err, r.logf.Name())
	}
	e.logf("%s: %d accounts created; pacing at %.0f commits/s", name, s.Manifest.First, p.rate)
	paced := make(chan error, 1)
	go func() { paced <- net.host.Pace(cctx, s.Len(), p.rate) }()
	stop := make(chan struct{})
	go func() { time.Sleep(p.warmup); close(stop) }()
	res.base = sampleRSS(r, stop)
	e.logf("%s: RSS %s without consumers; connecting %d consumers", name, mib(res.base), p.consumers)
	consumers := make([]*counter, p.consumers)
	var wg sync.WaitGroup
	var dialErr error
	var mu sync.Mutex
	sem := make(chan struct{}, 16)
	for i := range consumers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			cn, err := subscribeCount(cctx, r.wsRoot(), 16<<10)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && dialErr == nil {
				dialErr = err
			}
			consumers[i] = cn
		}()
	}
	wg.Wait()
	if dialErr != nil {
		return res, fmt.Errorf("%s: connecting consumers: %w", name, dialErr)
	}
	time.Sleep(time.Second) // settle
	before := make([]int64, len(consumers))
	for i, cn := range consumers {
		before[i] = cn.frames.Load()
	}
	t0, st0 := time.Now(), orZero(r.stats())
	stop = make(chan struct{})
	go func() { time.Sleep(p.duration); close(stop) }()
	res.load = sampleRSS(r, stop)
	t1, st1 := time.Now(), orZero(r.stats())
	if err := e.writeHeapProfile(); err != nil {
		return res, err
	}
	res.seconds, res.cpu = t1.Sub(t0).Seconds(), st1.CPU-st0.CPU
	res.minPer = -1
	for i, cn := range consumers {
		d := cn.frames.Load() - before[i]
		res.delivered += d
		if per := float64(d) / res.seconds; res.minPer < 0 || per < res.minPer {
			res.minPer = per
		}
		select {
		case <-cn.done:
			res.dropped++
		default:
		}
	}
	select {
	case err := <-paced:
		if err == nil {
			return res, fmt.Errorf("%s: the stream ran out during the window: generate more --commits", name)
		}
	default:
	}
	return res, nil
}

func runFanout(ctx context.Context, e *benchEnv, args []string) error {
	fs := flag.NewFlagSet("fanout", flag.ContinueOnError)
	var sf streamFlags
	var rf relayFlags
	var p fanoutParams
	sf.register(fs, 1_000, 5, 0)
	rf.register(fs)
	fs.IntVar(&p.consumers, "consumers", 500, "firehose consumers")
	fs.Float64Var(&p.rate, "rate", 2_000, "upstream commits per second")
	fs.DurationVar(&p.warmup, "warmup", 5*time.Second, "paced ingest without consumers, for the base RSS")
	fs.DurationVar(&p.duration, "duration", 20*time.Second, "the measured window, consumers connected")
	fs.Usage = func() {
		fmt.Fprintln(e.log, "usage: reservoir-bench fanout [flags]\n\nFan-out (P2): a relay ingests the stream at --rate commits/s while --consumers follow its\nfirehose; frames/s delivered and the relay's RSS per consumer (median RSS with the consumers\nminus median RSS before them). --commits 0 sizes the stream to the run.")
		fs.PrintDefaults()
	}
	if err := e.parse(fs, args); err != nil {
		return err
	}
	if p.consumers < 1 || p.rate <= 0 || p.duration <= 0 {
		return fmt.Errorf("%w: want ≥ 1 consumer, a positive rate and duration", errUsage)
	}
	if sf.commits == 0 {
		sf.commits = int(p.rate*(p.warmup+p.duration).Seconds()) + int(p.rate*30) // 30 s of slack for connecting
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
	ours, err := fanoutOne(ctx, e, "reservoir", work, s, accounts, starter, p)
	if err != nil {
		return err
	}
	e.result("reservoir", ours.String())
	if !rf.compareIndigo {
		return nil
	}
	theirs, err := fanoutOne(ctx, e, "indigo", work, s, accounts, indigoStarter(e, indigoBin, rf.pgURL), p)
	if err != nil {
		return err
	}
	e.result("indigo", theirs.String())
	e.result("reservoir/indigo", fmt.Sprintf("%.2f× frames/s delivered, %.2f× RSS per consumer", ours.rate()/theirs.rate(), ours.perConsumer()/theirs.perConsumer()))
	return nil
}
