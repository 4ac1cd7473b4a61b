package main

import (
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
)

// selfCPU is this process's CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// selfRSS is this process's resident set now.
func selfRSS() int64 {
	st, err := readProc(os.Getpid())
	if err != nil {
		return 0
	}
	return st.RSS
}

// peakSampler records the peak RSS of this process every 20 ms until
// stopped.
type peakSampler struct {
	peak atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func samplePeak() *peakSampler {
	p := &peakSampler{stop: make(chan struct{}), done: make(chan struct{})}
	p.peak.Store(selfRSS())
	go func() {
		defer close(p.done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if r := selfRSS(); r > p.peak.Load() {
				p.peak.Store(r)
			}
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *peakSampler) end() int64 { close(p.stop); <-p.done; return p.peak.Load() }

// settle collects garbage and returns memory to the system, so that a
// before/after RSS compares like with like.
func settle() {
	runtime.GC()
	runtime.GC()
}
