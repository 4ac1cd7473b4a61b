package events

import (
	"bytes"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/reservoir-atproto/reservoir/store"

	"github.com/reservoir-atproto/reservoir/events/wire"
)

// identityFrame is a small real frame; n varies its size.
func identityFrame(seq int64, n int) []byte {
	return (&wire.Identity{DID: "did:plc:ring", Handle: fmt.Sprintf("%0*d.test", n+4, seq), Time: time.Unix(0, 0)}).AppendFrame(nil, seq)
}

func deletedFrame(seq int64) []byte {
	return (&wire.Account{DID: "did:plc:ring", Status: "deleted", Time: time.Unix(0, 0)}).AppendFrame(nil, seq)
}

func TestRingBoundsAndBase(t *testing.T) {
	r := NewRing(RingOptions{MaxEvents: 3, MaxBytes: 1 << 20})
	if _, _, covered, _ := r.read(0, nil, 10, 1<<20); covered {
		t.Fatal("an empty ring claims to hold everything after 0")
	}
	pub := func(seqs ...int64) {
		var evs []store.CommittedEvent
		for _, s := range seqs {
			evs = append(evs, store.CommittedEvent{Seq: s, UID: 1, Frame: identityFrame(s, 0)})
		}
		r.Publish(evs)
	}
	pub(11, 12)
	check := func(after int64, wantCovered bool, want ...int64) {
		t.Helper()
		got, upTo, covered, _ := r.read(after, nil, 10, 1<<20)
		if covered != wantCovered {
			t.Fatalf("read after %d: covered %v, want %v", after, covered, wantCovered)
		}
		var seqs []int64
		for _, f := range got {
			seqs = append(seqs, f.Seq)
			if !bytes.Equal(f.Data, identityFrame(f.Seq, 0)) {
				t.Fatalf("seq %d: wrong bytes", f.Seq)
			}
		}
		if fmt.Sprint(seqs) != fmt.Sprint(want) {
			t.Fatalf("read after %d: %v, want %v", after, seqs, want)
		}
		if covered && len(want) > 0 && upTo != want[len(want)-1] {
			t.Fatalf("read after %d: upTo %d", after, upTo)
		}
	}
	check(9, false)             // before the first event the ring was given
	check(10, true, 11, 12)     // base is 10
	check(12, true)             // at the head
	check(50, true)             // past the head: nothing yet
	pub(13, 14)                 // 11 is evicted
	check(10, false)            // base moved to 11
	check(11, true, 12, 13, 14) //
	if r.Head() != 14 {
		t.Fatalf("head %d", r.Head())
	}
	if n, _ := r.Len(); n != 3 {
		t.Fatalf("len %d", n)
	}

	// Bytes bound.
	f := identityFrame(1, 0)
	rb := NewRing(RingOptions{MaxEvents: 100, MaxBytes: 3*len(f) + 1})
	for s := int64(1); s <= 10; s++ {
		rb.Publish([]store.CommittedEvent{{Seq: s, Frame: identityFrame(s, 0)}})
	}
	if n, b := rb.Len(); n != 3 || b != 3*len(f) || rb.baseSeq() != 7 {
		t.Fatalf("byte-bounded ring: %d events, %d bytes, base %d", n, b, rb.baseSeq())
	}
	// A frame larger than the whole bound is not kept: readers go to the
	// store for it.
	rb.Publish([]store.CommittedEvent{{Seq: 11, Frame: bytes.Repeat([]byte{1}, 4*len(f))}})
	if n, _ := rb.Len(); n != 0 || rb.baseSeq() != 11 {
		t.Fatalf("after an oversize frame: %d events, base %d", n, rb.baseSeq())
	}
}

func TestRingReadLimits(t *testing.T) {
	r := NewRing(RingOptions{})
	var evs []store.CommittedEvent
	for s := int64(1); s <= 20; s++ {
		evs = append(evs, store.CommittedEvent{Seq: s, Frame: identityFrame(s, 0)})
	}
	r.Publish(evs)
	size := len(identityFrame(1, 0))
	if got, upTo, _, _ := r.read(0, nil, 5, 1<<20); len(got) != 5 || upTo != 5 {
		t.Fatalf("5 frames max: %d, up to %d", len(got), upTo)
	}
	if got, _, _, _ := r.read(0, nil, 100, 2*size); len(got) != 2 {
		t.Fatalf("2 frames of bytes: %d", len(got))
	}
	if got, _, _, _ := r.read(0, nil, 100, 1); len(got) != 1 {
		t.Fatalf("the first frame always goes: %d", len(got))
	}
}

func TestRingMarksEventsBeforeAnAccountEvent(t *testing.T) {
	r := NewRing(RingOptions{})
	r.Publish([]store.CommittedEvent{
		{Seq: 1, UID: 7, Frame: identityFrame(1, 0)},
		{Seq: 2, UID: 8, Frame: identityFrame(2, 0)},
		{Seq: 3, UID: 7, Frame: identityFrame(3, 0)},
	})
	r.Publish([]store.CommittedEvent{
		{Seq: 4, UID: 7, Frame: identityFrame(4, 0)},
		{Seq: 5, UID: 7, Frame: deletedFrame(5)},
		{Seq: 6, UID: 7, Frame: identityFrame(6, 0)}, // after it: not marked
	})
	show := func() string {
		got, upTo, _, _ := r.read(0, nil, 100, 1<<20)
		var out []string
		for _, f := range got {
			s := fmt.Sprint(f.Seq)
			if f.check {
				s += "?"
			}
			out = append(out, s)
		}
		return fmt.Sprint(out, " up to ", upTo)
	}
	if got := show(); got != "[1? 2 3? 4? 5 6] up to 6" {
		t.Fatalf("after the #account event: %s", got)
	}
	_, before := r.Len()
	r.resolve(1, false) // purged
	r.resolve(3, true)  // still in the log
	r.resolve(4, false)
	r.resolve(99, false) // not in the ring: ignored
	if got := show(); got != "[2 3 5 6] up to 6" {
		t.Fatalf("after the checks: %s", got)
	}
	if _, b := r.Len(); b != before-2*len(identityFrame(1, 0)) {
		t.Fatalf("purged bytes still counted: %d of %d", b, before)
	}
	// Reading past purged entries only still moves the position.
	r.resolve(6, false)
	if got, upTo, _, _ := r.read(5, nil, 100, 1<<20); len(got) != 0 || upTo != 6 {
		t.Fatalf("after 5: %d frames up to %d", len(got), upTo)
	}
}

func TestRingWakesWaiters(t *testing.T) {
	r := NewRing(RingOptions{})
	w := r.Wait()
	select {
	case <-w:
		t.Fatal("woken before any Publish")
	default:
	}
	r.Publish(nil) // nothing committed: nobody is woken
	select {
	case <-w:
		t.Fatal("woken by an empty Publish")
	default:
	}
	r.Publish([]store.CommittedEvent{{Seq: 1, Frame: identityFrame(1, 0)}})
	select {
	case <-w:
	case <-time.After(time.Second):
		t.Fatal("not woken by Publish")
	}
}

// TestRingAgainstModel publishes random groups (with gaps, deletions and
// sizes) into rings of random bounds and checks every read against a plain
// list of what the ring should still hold.
func TestRingAgainstModel(t *testing.T) {
	for seed := int64(1); seed <= 40; seed++ {
		rng := rand.New(rand.NewSource(seed))
		maxEvents, maxBytes := 1+rng.Intn(40), 200+rng.Intn(4000)
		r := NewRing(RingOptions{MaxEvents: maxEvents, MaxBytes: maxBytes})
		type ev struct {
			seq    int64
			uid    uint64
			frame  []byte
			purged bool
			check  bool
		}
		var model []ev // what was published, oldest first
		base := int64(-1)
		seq := int64(rng.Intn(1000))
		for step := 0; step < 200; step++ {
			var group []store.CommittedEvent
			for range 1 + rng.Intn(6) {
				seq += 1 + int64(rng.Intn(3)/2) // mostly consecutive, sometimes a gap
				uid := uint64(1 + rng.Intn(4))
				f := identityFrame(seq, rng.Intn(120))
				if rng.Intn(25) == 0 {
					f = deletedFrame(seq)
				}
				group = append(group, store.CommittedEvent{Seq: seq, UID: uid, Frame: f})
			}
			r.Publish(group)
			if base < 0 {
				base = group[0].Seq - 1
			}
			for _, g := range group {
				// Make room like the ring, oldest first, then add.
				for {
					n, b := len(model), len(g.Frame)
					for _, m := range model {
						if !m.purged {
							b += len(m.frame)
						}
					}
					if n == 0 || (n < maxEvents && b <= maxBytes) {
						break
					}
					base = model[0].seq
					model = model[1:]
				}
				model = append(model, ev{seq: g.Seq, uid: g.UID, frame: g.Frame})
				if wire.FrameType(g.Frame) == wire.TypeAccount {
					for i := range model {
						if model[i].uid == g.UID && model[i].seq < g.Seq && !model[i].purged {
							model[i].check = true
						}
					}
				}
			}
			// Streams answer some of the checks: purged or kept.
			for i := range model {
				if model[i].check && rng.Intn(3) == 0 {
					inLog := rng.Intn(2) == 0
					r.resolve(model[i].seq, inLog)
					model[i].check, model[i].purged = false, !inLog
				}
			}
			// Every read position against the model.
			for after := base - 2; after <= seq+1; after++ {
				got, upTo, covered, _ := r.read(after, nil, 1000, 1<<30)
				if covered != (after >= base) {
					t.Fatalf("seed %d: read after %d: covered %v, base %d", seed, after, covered, base)
				}
				if !covered {
					continue
				}
				var want, seqs []string
				for _, m := range model {
					if m.seq > after && !m.purged {
						want = append(want, fmt.Sprint(m.seq, m.check))
					}
				}
				for _, f := range got {
					seqs = append(seqs, fmt.Sprint(f.Seq, f.check))
				}
				if fmt.Sprint(seqs) != fmt.Sprint(want) {
					t.Fatalf("seed %d step %d: read after %d: %v, want %v", seed, step, after, seqs, want)
				}
				if upTo < after || (len(model) > 0 && after < model[len(model)-1].seq && upTo != model[len(model)-1].seq) {
					t.Fatalf("seed %d: read after %d: upTo %d", seed, after, upTo)
				}
			}
		}
	}
}

// TestRingGrowsAndWraps: the entry array starts small and doubles up to
// MaxEvents while it wraps around; reads stay exact.
func TestRingGrowsAndWraps(t *testing.T) {
	r := NewRing(RingOptions{MaxEvents: 3000})
	seq := int64(0)
	for range 800 {
		var g []store.CommittedEvent
		for range 7 {
			seq++
			g = append(g, store.CommittedEvent{Seq: seq, Frame: identityFrame(seq, 0)})
		}
		r.Publish(g)
		if n, _ := r.Len(); n != int(min(seq, 3000)) {
			t.Fatalf("after %d events the ring holds %d", seq, n)
		}
	}
	if r.baseSeq() != seq-3000 {
		t.Fatalf("base %d, want %d", r.baseSeq(), seq-3000)
	}
	for _, after := range []int64{seq - 3000, seq - 2999, seq - 1500, seq - 1} {
		got, upTo, covered, _ := r.read(after, nil, 5000, 1<<30)
		if !covered || int64(len(got)) != seq-after || upTo != seq {
			t.Fatalf("after %d: %d frames up to %d, covered %v", after, len(got), upTo, covered)
		}
		for i, f := range got {
			if f.Seq != after+1+int64(i) || !bytes.Equal(f.Data, identityFrame(f.Seq, 0)) {
				t.Fatalf("after %d: frame %d is seq %d", after, i, f.Seq)
			}
		}
	}
}
