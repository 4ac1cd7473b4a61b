package relay

import (
	"math/rand/v2"
	"testing"

	"github.com/reservoir-atproto/reservoir/store"
)

// TestCursorTrackerModel submits increasing seqs (with gaps) and finishes
// them in random order, checking the durable cursor against the model: the
// highest submitted seq with every submitted seq up to it done.
func TestCursorTrackerModel(t *testing.T) {
	for round := range 200 {
		rng := rand.New(rand.NewPCG(uint64(round), 7))
		start := int64(store.NoCursor)
		if round%2 == 1 {
			start = int64(rng.IntN(1000))
		}
		c := newCursorTracker(start)
		var submitted []int64
		done := map[int64]bool{}
		next := max(start, 0)
		model := func() int64 {
			cur := start
			for _, s := range submitted {
				if !done[s] {
					break
				}
				cur = s
			}
			return cur
		}
		for step := range 400 {
			switch {
			case rng.IntN(3) > 0 || len(submitted) == len(done):
				next += 1 + int64(rng.IntN(3)) // upstream seqs may have gaps
				c.add(next)
				if rng.IntN(20) == 0 { // Submit failed: never done
					c.drop(next)
					next--
					break
				}
				submitted = append(submitted, next)
			default:
				var open []int64
				for _, s := range submitted {
					if !done[s] {
						open = append(open, s)
					}
				}
				s := open[rng.IntN(len(open))]
				done[s] = true
				before := c.durable
				moved := c.finish(s)
				if moved != (c.durable != before) {
					t.Fatalf("round %d step %d: finish reported moved=%v, cursor %d → %d", round, step, moved, before, c.durable)
				}
			}
			if got, want := c.durable, model(); got != want {
				t.Fatalf("round %d step %d: durable %d, want %d", round, step, got, want)
			}
			if got, want := c.inFlight(), len(submitted)-len(done); got != want {
				t.Fatalf("round %d step %d: in flight %d, want %d", round, step, got, want)
			}
		}
	}
}

func TestCursorTrackerIgnoresUnknown(t *testing.T) {
	c := newCursorTracker(10)
	c.add(11)
	c.add(12)
	if c.finish(5) || c.finish(99) || c.durable != 10 {
		t.Fatalf("seqs never submitted moved the cursor to %d", c.durable)
	}
	c.finish(12)
	c.finish(11)
	if c.durable != 12 || c.inFlight() != 0 {
		t.Fatalf("durable %d, in flight %d", c.durable, c.inFlight())
	}
	c.reset(store.NoCursor)
	if c.durable != store.NoCursor || c.finish(12) {
		t.Fatal("reset kept state")
	}
}

// TestCursorTrackerMemory: the queue does not grow with the events that
// went through it, only with those in flight.
func TestCursorTrackerMemory(t *testing.T) {
	c := newCursorTracker(store.NoCursor)
	seq := int64(0)
	for range 100_000 {
		seq++
		c.add(seq)
		if seq > 100 {
			c.finish(seq - 100)
		}
	}
	if cap(c.pending) > 4096 {
		t.Fatalf("queue capacity %d with 100 in flight", cap(c.pending))
	}
}
