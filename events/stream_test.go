package events

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/reservoir-atproto/reservoir/store"

	"github.com/reservoir-atproto/reservoir/events/wire"
)

func TestReplayFromZeroIsTheStoreLog(t *testing.T) {
	// A ring far smaller than the log: the stream reads the store, then
	// crosses over to the ring.
	l := newTestLog(t, logConfig{ring: RingOptions{MaxEvents: 50}, fh: Options{BatchFrames: 7, BatchBytes: 600}})
	for i := range 5 {
		did := fmt.Sprintf("did:plc:r%d", i)
		uid := l.account(did)
		for range 20 {
			l.emitSized(uid, did, 1+i, 10*i)
		}
	}
	want := l.stored(0)
	if len(want) == 0 || want[len(want)-1].seq != l.db.LastSeq() {
		t.Fatalf("setup: %d events, last seq %d", len(want), l.db.LastSeq())
	}
	for i, w := range want {
		if w.seq != int64(i+1) {
			t.Fatalf("setup: the store's seqs are not 1..n: %d at %d", w.seq, i)
		}
	}
	s, err := l.fh.Open(AtSeq(0))
	if err != nil {
		t.Fatal(err)
	}
	sameLog(t, "replay from 0", drain(t, s, l.db.LastSeq()), want)
	if s.Behind() {
		t.Error("a stream at the head still reads the store")
	}
	// From a cursor in the middle: exactly what follows it.
	s, _ = l.fh.Open(AtSeq(123))
	sameLog(t, "replay from 123", drain(t, s, l.db.LastSeq()), want[123:])
}

func TestNoCursorIsLiveOnly(t *testing.T) {
	l := newTestLog(t, logConfig{})
	uid := l.account("did:plc:live")
	l.emit(uid, "did:plc:live", 10)
	s, err := l.fh.Open(LiveCursor)
	if err != nil {
		t.Fatal(err)
	}
	if frames, _, err := s.Poll(); err != nil || len(frames) != 0 {
		t.Fatalf("a live stream got %d old frames (err %v)", len(frames), err)
	}
	seqs := l.emit(uid, "did:plc:live", 3)
	got := drain(t, s, seqs[2])
	sameLog(t, "live", got, l.stored(seqs[0]-1))
}

func TestFutureCursor(t *testing.T) {
	l := newTestLog(t, logConfig{})
	uid := l.account("did:plc:f")
	l.emit(uid, "did:plc:f", 4) // seqs 1..5
	for _, c := range []int64{6, 7, 1 << 40, MaxSeq} {
		if _, err := l.fh.Open(AtSeq(c)); !errors.Is(err, ErrFutureCursor) {
			t.Errorf("cursor %d over newest 5: %v, want ErrFutureCursor", c, err)
		}
	}
	for _, c := range []int64{0, 1, 4, 5} {
		if _, err := l.fh.Open(AtSeq(c)); err != nil {
			t.Errorf("cursor %d: %v", c, err)
		}
	}
}

func TestOutdatedCursorThenOldestKept(t *testing.T) {
	const window = time.Hour
	l := newTestLog(t, logConfig{window: window})
	uid := l.account("did:plc:o") // seq 1
	l.emit(uid, "did:plc:o", 9)   // seqs 2..10
	l.clock.Advance(window + time.Minute)
	kept := l.emit(uid, "did:plc:o", 5) // 11..15
	if err := l.db.CollectGarbage(context.Background()); err != nil {
		t.Fatal(err)
	}
	if first, _ := l.db.FirstSeq(); first != kept[0] {
		t.Fatalf("setup: oldest kept %d, want %d", first, kept[0])
	}
	want := l.stored(0)

	for _, cursor := range []int64{1, 5, 9} {
		s, err := l.fh.Open(AtSeq(cursor))
		if err != nil {
			t.Fatal(err)
		}
		frames, _, err := s.Poll()
		if err != nil || len(frames) != 1 {
			t.Fatalf("cursor %d: first poll %d frames, %v", cursor, len(frames), err)
		}
		h, b := decodeFrame(t, frames[0].Data, 0)
		if h["t"] != "#info" || b["name"] != "OutdatedCursor" || b["message"] != OutdatedCursorMessage {
			t.Fatalf("cursor %d: first frame %v %v, want #info OutdatedCursor", cursor, h, b)
		}
		// The ring still holds the expired events; the stream must not
		// send them.
		sameLog(t, fmt.Sprintf("after OutdatedCursor at %d", cursor), drain(t, s, l.db.LastSeq()), want)
	}
	// The cursor just before the oldest kept event lost nothing: no info.
	s, _ := l.fh.Open(AtSeq(kept[0] - 1))
	if frames, _, _ := s.Poll(); len(frames) == 0 || frames[0].Seq != kept[0] {
		t.Fatalf("cursor %d: got %v, want seq %d first", kept[0]-1, frames, kept[0])
	}
	// Cursor 0 is the whole window, without info.
	s, _ = l.fh.Open(AtSeq(0))
	sameLog(t, "cursor 0", drain(t, s, l.db.LastSeq()), want)

	// Everything expired: a cursor behind the newest seq is outdated and
	// starts live.
	l.clock.Advance(window + time.Minute)
	if err := l.db.CollectGarbage(context.Background()); err != nil {
		t.Fatal(err)
	}
	if first, _ := l.db.FirstSeq(); first != 0 {
		t.Fatalf("setup: the log still holds %d", first)
	}
	s, _ = l.fh.Open(AtSeq(3))
	frames, _, _ := s.Poll()
	if len(frames) != 1 || wire.FrameType(frames[0].Data) != wire.TypeInfo || s.Position() != 15 {
		t.Fatalf("empty log, cursor 3: %d frames, position %d", len(frames), s.Position())
	}
}

func TestPositionExpiredIsConsumerTooSlow(t *testing.T) {
	const window = time.Hour
	l := newTestLog(t, logConfig{window: window, ring: RingOptions{MaxEvents: 4}, fh: Options{BatchFrames: 2}})
	uid := l.account("did:plc:slow")
	l.emit(uid, "did:plc:slow", 9) // 1..10
	s, err := l.fh.Open(AtSeq(0))
	if err != nil {
		t.Fatal(err)
	}
	if frames, _, err := s.Poll(); err != nil || len(frames) != 2 {
		t.Fatalf("first poll: %d frames, %v", len(frames), err)
	}
	// The stream stops at 2 while the log moves on and expires 1..10.
	l.clock.Advance(window + time.Minute)
	l.emit(uid, "did:plc:slow", 10) // 11..20, the ring holds 17..20
	if err := l.db.CollectGarbage(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Poll(); !errors.Is(err, ErrConsumerTooSlow) {
		t.Fatalf("poll after the position expired: %v, want ErrConsumerTooSlow", err)
	}

	// The same when the store has nothing left after the position at all,
	// while the ring (which bounds by count, not time) still holds expired
	// events.
	l = newTestLog(t, logConfig{window: window, ring: RingOptions{MaxEvents: 2}})
	uid = l.account("did:plc:slow2")
	l.emit(uid, "did:plc:slow2", 2) // 1..3; the ring holds 2, 3
	s, _ = l.fh.Open(AtSeq(0))
	l.clock.Advance(window + time.Minute)
	if err := l.db.CollectGarbage(context.Background()); err != nil {
		t.Fatal(err)
	}
	if first, _ := l.db.FirstSeq(); first != 0 {
		t.Fatalf("setup: the log still starts at %d", first)
	}
	if _, _, err := s.Poll(); !errors.Is(err, ErrConsumerTooSlow) {
		t.Fatalf("poll with the log emptied: %v, want ErrConsumerTooSlow", err)
	}
}

func TestPurgedEventsAreSkippedNotTooSlow(t *testing.T) {
	// A hole left by the account-deletion purge is not an expired position,
	// whether the stream reads it from the store or from the ring.
	for _, ringSize := range []int{4, 1000} {
		t.Run(fmt.Sprint("ring", ringSize), func(t *testing.T) {
			l := newTestLog(t, logConfig{window: time.Hour, ring: RingOptions{MaxEvents: ringSize}, fh: Options{BatchFrames: 3}})
			a := l.account("did:plc:a") // 1
			b := l.account("did:plc:b") // 2
			l.emit(a, "did:plc:a", 5)   // 3..7
			l.emit(b, "did:plc:b", 2)   // 8, 9
			s, _ := l.fh.Open(AtSeq(2))
			l.clock.Advance(30 * time.Minute)
			del := l.deleteAccount(a, "did:plc:a") // purges 1, 3..7; emits 10
			l.emit(b, "did:plc:b", 2)              // 11, 12
			want := l.stored(2)
			if len(want) != 5 || want[0].seq != 8 || want[2].seq != del {
				t.Fatalf("setup: the store holds %v after 2", want)
			}
			sameLog(t, "after the purge", drain(t, s, l.db.LastSeq()), want)
		})
	}
}

func TestDeletionPurgesTheRing(t *testing.T) {
	l := newTestLog(t, logConfig{})
	a := l.account("did:plc:a")
	b := l.account("did:plc:b")
	early, _ := l.fh.Open(AtSeq(0))        // will read after the deletion
	late, _ := l.fh.Open(LiveCursor)       // reads a's events before it
	l.emit(a, "did:plc:a", 3)              // 3..5
	l.emit(b, "did:plc:b", 1)              // 6
	gotLate := drain(t, late, 6)           // a consumer that saw a's events live
	del := l.deleteAccount(a, "did:plc:a") // 7
	l.emit(b, "did:plc:b", 1)              // 8
	want := l.stored(0)                    // 2, 6, 7, 8: a's 1 and 3..5 are gone
	if len(want) != 4 || want[0].seq != 2 || want[1].seq != 6 || want[2].seq != del {
		t.Fatalf("setup: the log after the purge is %v", want)
	}
	// The ring holds every seq since 1: the stream reads it only from the
	// ring, and gets exactly what the store keeps.
	sameLog(t, "stream behind the deletion", drain(t, early, 8), want)
	// The live consumer got a's events before; now the deletion.
	rest := drain(t, late, 8)
	if len(gotLate) != 4 || len(rest) != 2 || rest[0].seq != del || rest[1].seq != 8 {
		t.Fatalf("live consumer: %v then %v", gotLate, rest)
	}
	if _, b := decodeFrame(t, rest[0].frame, del); b["status"] != "deleted" || b["active"] != false {
		t.Fatalf("deletion event %v", b)
	}
}

// TestRingFollowsThePurgeWhateverTheStatus: the relay purges a mirrored
// account's events when its host deletes it, but reports the account
// taken down if it had taken it down itself. The ring checks with the
// store after any #account event, so subscribers reading it get exactly
// what the log keeps.
func TestRingFollowsThePurgeWhateverTheStatus(t *testing.T) {
	l := newTestLog(t, logConfig{})
	a := l.account("did:plc:a") // 1
	b := l.account("did:plc:b") // 2
	behind, _ := l.fh.Open(AtSeq(0))
	l.emit(a, "did:plc:a", 3)                                     // 3..5
	l.emit(b, "did:plc:b", 1)                                     // 6
	l.accountStatus(a, "did:plc:a", store.StatusTakendown, false) // 7: nothing purged
	// A stream reading now checks 1, 3..5 and finds them in the log.
	sameLog(t, "after a takedown", drain(t, l.mustOpen(AtSeq(0)), 7), l.stored(0))
	l.accountStatus(a, "did:plc:a", store.StatusTakendown, true) // 8: purges 1, 3..5, 7
	l.emit(b, "did:plc:b", 1)                                    // 9
	want := l.stored(0)
	if len(want) != 4 || want[0].seq != 2 || want[1].seq != 6 || want[2].seq != 8 {
		t.Fatalf("setup: the log after the purge is %v", want)
	}
	sameLog(t, "stream behind the purge", drain(t, behind, 9), want)
	sameLog(t, "stream opened after it", drain(t, l.mustOpen(AtSeq(0)), 9), want)
	if n, _ := l.ring.Len(); n != 9 {
		t.Fatalf("the ring holds %d entries", n)
	}
	got, _, _, _ := l.ring.read(0, nil, 100, 1<<20)
	if len(got) != 4 {
		t.Fatalf("the ring still serves %d frames, want the 4 the log keeps", len(got))
	}
}

// TestConcurrentWritersManyReaders checks order and completeness while
// writers commit to many repositories: every stream, started anywhere
// (cursor 0, in the middle, live), sees seqs strictly increasing, with no
// gap and no duplicate, and the store's bytes, across the store → ring
// cut-over.
func TestConcurrentWritersManyReaders(t *testing.T) {
	l := newTestLog(t, logConfig{ring: RingOptions{MaxEvents: 200, MaxBytes: 16 << 10}, fh: Options{BatchFrames: 16}})
	const writers, perWriter = 8, 300
	uids := make([]uint64, writers)
	for i := range uids {
		uids[i] = l.account(fmt.Sprintf("did:plc:w%d", i))
	}
	type result struct {
		name string
		got  []logged
		err  error
	}
	results := make(chan result, 16)
	var readers sync.WaitGroup
	var until atomic.Int64 // the last seq, once the writers are done
	startReader := func(name string, c Cursor, slow bool) {
		s, err := l.fh.Open(c)
		readers.Add(1)
		go func() {
			defer readers.Done()
			if err != nil {
				results <- result{name, nil, err}
				return
			}
			var got []logged
			deadline := time.Now().Add(60 * time.Second)
			for u := until.Load(); u == 0 || s.Position() < u; u = until.Load() {
				if time.Now().After(deadline) {
					results <- result{name, got, fmt.Errorf("stuck at %d", s.Position())}
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
				frames, err := s.Next(ctx)
				cancel()
				if err != nil && !errors.Is(err, context.DeadlineExceeded) {
					results <- result{name, got, err}
					return
				}
				for _, f := range frames {
					got = append(got, logged{f.Seq, append([]byte(nil), f.Data...)})
				}
				if slow {
					time.Sleep(time.Millisecond)
				}
			}
			results <- result{name, got, nil}
		}()
	}
	startReader("cursor 0", AtSeq(0), false)
	startReader("live", LiveCursor, false)
	startReader("slow from 0", AtSeq(0), true)

	var writing sync.WaitGroup
	for w := range writers {
		writing.Add(1)
		go func() {
			defer writing.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			for i := 0; i < perWriter; {
				n := 1 + rng.Intn(4)
				l.emitSized(uids[w], fmt.Sprintf("did:plc:w%d", w), n, rng.Intn(200))
				i += n
				if w == 0 && i > perWriter/2 && i-n <= perWriter/2 {
					startReader("started mid-way", AtSeq(l.db.LastSeq()/2), false)
				}
			}
		}()
	}
	writing.Wait()
	until.Store(l.db.LastSeq())
	readers.Wait()
	close(results)
	all := l.stored(0)
	names := map[string]bool{}
	for r := range results {
		names[r.name] = true
		if r.err != nil {
			t.Fatalf("%s: %v", r.name, r.err)
		}
		if len(r.got) == 0 {
			t.Fatalf("%s: nothing", r.name)
		}
		// Strictly increasing and gapless (nothing is purged here, so seqs
		// are consecutive), with the store's bytes.
		first := r.got[0].seq
		sameLog(t, r.name, r.got, all[first-1:])
		if (r.name == "cursor 0" || r.name == "slow from 0") && first != 1 {
			t.Fatalf("%s starts at %d", r.name, first)
		}
		if r.name == "live" && first != int64(writers)+1 {
			t.Fatalf("live starts at %d, want %d", first, writers+1)
		}
	}
	if len(names) != 4 {
		t.Fatalf("readers reporting: %v", names)
	}
}

// TestSlowConsumerCatchesUp: a consumer that reads slowly while 100k events
// are written, far behind a small ring, reaches the head with nothing lost
// or repeated, and is never dropped (the position stays in the window).
func TestSlowConsumerCatchesUp(t *testing.T) {
	total := 100_000
	if testing.Short() {
		total = 20_000
	}
	l := newTestLog(t, logConfig{ring: RingOptions{MaxEvents: 1000}, fh: Options{BatchFrames: 64}})
	uid := l.account("did:plc:busy")
	s, _ := l.fh.Open(AtSeq(0))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 1; n < total; n += 100 {
			l.emit(uid, "did:plc:busy", 100)
		}
	}()
	// The consumer starts late, then reads slowly: it falls far behind the
	// ring (1,000 events) and reads the store until it catches up.
	for l.db.LastSeq() < 5_000 {
		time.Sleep(time.Millisecond)
	}
	var got []logged
	behindSeen := false
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	for polls := 0; ; polls++ {
		select {
		case <-done:
			done = nil
		default:
		}
		if done == nil && s.Position() == l.db.LastSeq() {
			break
		}
		wctx, wcancel := context.WithTimeout(ctx, 20*time.Millisecond)
		frames, err := s.Next(wctx)
		wcancel()
		if err != nil && ctx.Err() != nil {
			t.Fatal(err)
		}
		behindSeen = behindSeen || s.Behind()
		for _, f := range frames {
			got = append(got, logged{f.Seq, append([]byte(nil), f.Data...)})
		}
		if polls%10 == 0 {
			time.Sleep(time.Millisecond) // slow
		}
	}
	if !behindSeen {
		t.Error("the consumer never read the store: the test did not test catching up")
	}
	sameLog(t, "slow consumer", got, l.stored(0))
	if s.Behind() {
		t.Error("the consumer at the head still reads the store")
	}
}

// TestResumeAfterRestart: a consumer resuming from its last seq after the
// server restarts (a new store handle on the same data, a new empty ring)
// gets exactly the rest, and new events follow without a gap.
func TestResumeAfterRestart(t *testing.T) {
	dir := t.TempDir()
	ck := newClock()
	l := newTestLog(t, logConfig{dir: dir, clock: ck})
	uid := l.account("did:plc:r")
	l.emit(uid, "did:plc:r", 50)
	s, _ := l.fh.Open(AtSeq(0))
	first := drain(t, s, 20)
	resumeAt := s.Position()
	l.emit(uid, "did:plc:r", 10) // the consumer misses these before the restart
	l.close()

	l2 := newTestLog(t, logConfig{dir: dir, clock: ck})
	s2, err := l2.fh.Open(AtSeq(resumeAt))
	if err != nil {
		t.Fatal(err)
	}
	l2.emit(uid, "did:plc:r", 10) // and these after it
	got := append(first, drain(t, s2, l2.db.LastSeq())...)
	sameLog(t, "across the restart", got, l2.stored(0))
	if l2.db.LastSeq() != 71 {
		t.Fatalf("seqs after the restart: last %d, want 71", l2.db.LastSeq())
	}
}
