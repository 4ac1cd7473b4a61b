package events

import (
	"context"
	"fmt"
	"time"

	"github.com/reservoir-atproto/reservoir/store"
)

// Frame is one frame to send: the stored bytes of an event (or an #info
// frame, Seq 0). Data is shared and read-only.
type Frame struct {
	Seq  int64
	Time time.Time // when the committer stored the event (zero for #info)
	Data []byte

	check bool // from the ring, marked for a check against the store
}

// Stream is one subscriber's position in the log and the few buffers it
// reads with. It pulls: each Poll returns the next frames after its
// position, from the ring when the ring holds them and from the store
// otherwise, so a subscriber far behind reads the store page by page, at its
// own pace, until it reaches the ring; nothing is queued for it. A Stream is
// used by one goroutine.
type Stream struct {
	f        *Firehose
	pos      int64     // the last seq handed out
	lastTime time.Time // the time of the event at pos (open time at the start)
	info     []byte    // a pending #info frame, sent first
	frames   []Frame   // returned by Poll, reused
	page     []byte    // copies of store frames, reused; nil while on the ring
	behind   bool      // the last Poll read the store
}

// Position returns the last seq the stream handed out (its cursor).
func (s *Stream) Position() int64 { return s.pos }

// Behind reports whether the stream last read from the store rather than
// the ring (it is catching up).
func (s *Stream) Behind() bool { return s.behind }

// Poll returns the next frames after the stream's position and advances it
// past them. The frames are valid until the next Poll. With no frame ready
// it returns none and a channel that is closed when new events are
// published: wait on it (and on whatever else the caller waits for), then
// Poll again. It fails with ErrConsumerTooSlow when events after the
// position were collected before the stream read them, or with the store's
// error.
func (s *Stream) Poll() (frames []Frame, wake <-chan struct{}, err error) {
	if s.info != nil {
		s.frames = append(s.frames[:0], Frame{Data: s.info})
		s.info = nil
		return s.frames, nil, nil
	}
	if c := cap(s.frames); c > 32 && len(s.frames) < c/4 {
		s.frames = nil // a catch-up batch is over: do not keep its size
	}
	o := &s.f.opts
	lastBase := int64(-1)
	for {
		frames, upTo, covered, wake := o.Ring.read(s.pos, s.frames[:0], o.BatchFrames, o.BatchBytes)
		if covered {
			s.setBehind(false)
			s.page = nil
			read := len(frames)
			if frames, err = s.checkMarked(frames); err != nil {
				return nil, nil, err
			}
			s.advance(frames, upTo)
			s.frames = frames
			if len(frames) == 0 && read > 0 {
				continue // all of them were purged: read on
			}
			return frames, wake, nil
		}
		s.setBehind(true)
		frames, err := s.readStore()
		if err != nil {
			return nil, nil, err
		}
		s.frames = frames
		if len(frames) > 0 {
			return frames, wake, nil
		}
		// Nothing after pos in the store, yet the ring does not hold
		// everything after pos: its base is above pos. Events committed
		// after the store read may have gone through the ring already, so
		// read the store once more; if it is still empty with the same
		// base, the events up to base are gone from the log (expired while
		// the ring kept them): judge the gap and go on from the ring.
		base := o.Ring.baseSeq()
		if base <= s.pos {
			return nil, wake, nil
		}
		if base != lastBase {
			lastBase = base
			continue
		}
		if err := s.gap(base); err != nil {
			return nil, nil, err
		}
		s.pos = base
	}
}

// Next blocks until frames are ready, then returns them like Poll.
func (s *Stream) Next(ctx context.Context) ([]Frame, error) {
	for {
		frames, wake, err := s.Poll()
		if err != nil || len(frames) > 0 {
			return frames, err
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// checkMarked asks the store about the frames the ring marked (an
// #account event of their account followed them, which may have purged
// them), drops those the log no longer has, and tells the ring.
func (s *Stream) checkMarked(frames []Frame) ([]Frame, error) {
	out := frames[:0]
	for _, f := range frames {
		if f.check {
			inLog := false
			err := s.f.opts.Log.Events(f.Seq-1, func(ev store.CommittedEvent) error {
				inLog = ev.Seq == f.Seq
				return store.ErrStop
			})
			if err != nil {
				return nil, fmt.Errorf("events: checking seq %d: %w", f.Seq, err)
			}
			s.f.opts.Ring.resolve(f.Seq, inLog)
			if !inLog {
				continue
			}
			f.check = false
		}
		out = append(out, f)
	}
	return out, nil
}

func (s *Stream) advance(frames []Frame, upTo int64) {
	if len(frames) > 0 {
		s.lastTime = frames[len(frames)-1].Time
	}
	s.pos = upTo
}

func (s *Stream) setBehind(b bool) {
	if b != s.behind {
		s.behind = b
		s.f.metrics.catchingUp(b)
	}
}

// readStore reads the next page after pos from the store: at most
// BatchFrames frames, and at most BatchBytes bytes past the first.
func (s *Stream) readStore() ([]Frame, error) {
	o := &s.f.opts
	if s.page == nil {
		s.page = make([]byte, 0, o.BatchBytes)
	}
	s.page = s.page[:0]
	frames := s.frames[:0]
	first := true
	err := o.Log.Events(s.pos, func(ev store.CommittedEvent) error {
		if first {
			first = false
			if ev.Seq != s.pos+1 {
				if err := s.gap(ev.Seq - 1); err != nil {
					return err
				}
			}
		}
		if len(frames) >= o.BatchFrames {
			return store.ErrStop
		}
		var data []byte
		if len(s.page)+len(ev.Frame) <= cap(s.page) {
			off := len(s.page)
			s.page = append(s.page, ev.Frame...)
			data = s.page[off:len(s.page):len(s.page)]
		} else if len(frames) == 0 {
			data = append([]byte(nil), ev.Frame...) // one frame over the page size
		} else {
			return store.ErrStop
		}
		frames = append(frames, Frame{Seq: ev.Seq, Time: ev.Time, Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("events: reading the log after %d: %w", s.pos, err)
	}
	if len(frames) > 0 {
		s.advance(frames, frames[len(frames)-1].Seq)
	}
	return frames, nil
}

// gap judges a hole in the log between the stream's position and next (the
// seq before the next event it can read). Events leave the log two ways:
// the account-deletion purge, anywhere, and expiry, oldest first. Expired
// events were all older than the window; the events after pos are no older
// than the event at pos, so if that one is still inside the window the hole
// can only be purges, which the stream skips. Otherwise the position fell
// out of the window: ErrConsumerTooSlow.
func (s *Stream) gap(next int64) error {
	cutoff := s.f.opts.Now().Add(-s.f.opts.EventWindow)
	if s.lastTime.Before(cutoff) {
		return fmt.Errorf("%w: events %d to %d expired before the stream read them", ErrConsumerTooSlow, s.pos+1, next)
	}
	return nil
}
