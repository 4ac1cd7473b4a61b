package events

import (
	"sync"
	"time"

	"github.com/reservoir-atproto/reservoir/store"

	"github.com/reservoir-atproto/reservoir/events/wire"
)

// RingOptions configures NewRing. Zero values take the defaults.
type RingOptions struct {
	// MaxEvents bounds the events the ring keeps. Default 65,536.
	MaxEvents int
	// MaxBytes bounds the frame bytes the ring keeps. Default 64 MiB.
	MaxBytes int
	// Metrics counts published events by type; nil counts nothing.
	Metrics *Metrics
}

// Ring is the in-memory tail of the event log: the most recent committed
// frames, bounded by count and bytes. The store's committer feeds it
// (Publish is store.Options.OnCommit) and subscribers near the head read
// from it instead of the store. It never blocks the committer: Publish
// copies the frames, takes a short lock and wakes every waiting subscriber
// by closing a channel.
//
// The ring knows a seq base: it holds every event with a seq greater than
// base, up to the newest (except purged ones, see Publish). base is the seq before the
// first event it was given, and moves up as old events are evicted. A
// reader asking for events after a position below base must read the store.
type Ring struct {
	opts    RingOptions
	metrics *Metrics

	mu      sync.RWMutex
	entries []ringEntry // circular: entries[(start+i)%len] for i < n
	start   int
	n       int
	bytes   int
	base    int64         // every event after base is held; -1 before the first Publish
	wake    chan struct{} // closed and replaced by every Publish
}

type ringEntry struct {
	seq   int64
	uid   uint64
	time  time.Time
	frame []byte // nil once purged
	check bool   // an #account event followed: ask the store before sending
}

// NewRing returns an empty ring.
func NewRing(opts RingOptions) *Ring {
	if opts.MaxEvents <= 0 {
		opts.MaxEvents = 1 << 16
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 64 << 20
	}
	return &Ring{opts: opts, metrics: opts.Metrics, base: -1, wake: make(chan struct{}), entries: make([]ringEntry, min(opts.MaxEvents, 1024))}
}

// Publish adds the events of one durable group commit, in seq order. It is
// store.Options.OnCommit: called by the committer, after the group is on
// disk, with seqs following the previous call's. It copies the frames (one
// allocation per group), so the caller may reuse them.
//
// An #account event marks the account's earlier events in the ring for a
// check against the store: a change that purges an account's events from
// the log (an account deletion, by the host or the relay) always carries
// one, and a subscriber must not be sent what the log no longer has. The
// first stream to read a marked event asks the store whether it is still
// there and tells the ring (resolve); Publish itself reads nothing.
func (r *Ring) Publish(evs []store.CommittedEvent) {
	if len(evs) == 0 {
		return
	}
	total := 0
	for i := range evs {
		total += len(evs[i].Frame)
	}
	slab := make([]byte, 0, total)
	add := make([]ringEntry, len(evs))
	account := make([]bool, len(evs))
	for i := range evs {
		ev := &evs[i]
		off := len(slab)
		slab = append(slab, ev.Frame...)
		add[i] = ringEntry{seq: ev.Seq, uid: ev.UID, time: ev.Time, frame: slab[off:len(slab):len(slab)]}
		typ := wire.FrameType(ev.Frame)
		r.metrics.published(typ)
		account[i] = typ == wire.TypeAccount
	}

	r.mu.Lock()
	if r.base < 0 {
		r.base = evs[0].Seq - 1
	}
	for i := range add {
		r.pushLocked(add[i])
		if account[i] {
			r.markLocked(add[i].uid, add[i].seq)
		}
	}
	old := r.wake
	r.wake = make(chan struct{})
	n, bytes := r.n, r.bytes
	r.mu.Unlock()

	close(old)
	r.metrics.ringSize(n, bytes)
}

// pushLocked appends e, evicting the oldest entries beyond the bounds.
func (r *Ring) pushLocked(e ringEntry) {
	for r.n > 0 && (r.n >= r.opts.MaxEvents || r.bytes+len(e.frame) > r.opts.MaxBytes) {
		old := &r.entries[r.start]
		r.base = old.seq
		r.bytes -= len(old.frame)
		*old = ringEntry{}
		r.start = (r.start + 1) % len(r.entries)
		r.n--
	}
	if r.n == len(r.entries) {
		r.growLocked()
	}
	r.entries[(r.start+r.n)%len(r.entries)] = e
	r.n++
	r.bytes += len(e.frame)
	if r.n == 1 && len(e.frame) > r.opts.MaxBytes {
		// A single frame over the byte bound is not kept: readers get it
		// from the store.
		r.base = e.seq
		r.bytes = 0
		r.entries[r.start] = ringEntry{}
		r.n = 0
	}
}

// growLocked doubles the entry array, up to MaxEvents.
func (r *Ring) growLocked() {
	next := make([]ringEntry, min(2*len(r.entries), r.opts.MaxEvents))
	for i := 0; i < r.n; i++ {
		next[i] = r.entries[(r.start+i)%len(r.entries)]
	}
	r.entries, r.start = next, 0
}

// markLocked marks uid's events before seq for a check against the store.
func (r *Ring) markLocked(uid uint64, before int64) {
	for i := 0; i < r.n; i++ {
		e := r.at(i)
		if e.seq >= before {
			return
		}
		if e.uid == uid && e.frame != nil {
			e.check = true
		}
	}
}

// resolve records the store's answer for a marked event: still in the log,
// or purged (its frame is dropped).
func (r *Ring) resolve(seq int64, inLog bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := r.search(seq - 1)
	if i == r.n {
		return
	}
	e := r.at(i)
	if e.seq != seq || e.frame == nil {
		return // evicted meanwhile, or already resolved
	}
	e.check = false
	if !inLog {
		r.bytes -= len(e.frame)
		e.frame = nil
	}
}

func (r *Ring) at(i int) *ringEntry { return &r.entries[(r.start+i)%len(r.entries)] }

// search returns the index of the first entry with a seq greater than
// after (r.n when there is none).
func (r *Ring) search(after int64) int {
	if r.n == 0 {
		return 0
	}
	// Seqs are usually consecutive: try the direct index first.
	if g := after + 1 - r.at(0).seq; g >= 0 && g < int64(r.n) && r.at(int(g)).seq == after+1 &&
		(g == 0 || r.at(int(g)-1).seq <= after) {
		return int(g)
	}
	lo, hi := 0, r.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r.at(m).seq <= after {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// read appends to dst the frames with a seq greater than after, at most
// maxFrames of them and (past the first) at most maxBytes. covered is false
// when the ring does not hold every event after after (the caller reads the
// store). upTo is the seq of the last entry looked at, purged ones included
// (after when none): the caller's new position. wake is closed by the next
// Publish; take it before reading anything else so no event slips between.
func (r *Ring) read(after int64, dst []Frame, maxFrames, maxBytes int) (out []Frame, upTo int64, covered bool, wake <-chan struct{}) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	wake = r.wake
	if r.base < 0 || after < r.base {
		return dst, after, false, wake
	}
	upTo = after
	bytes := 0
	for i := r.search(after); i < r.n && len(dst) < maxFrames; i++ {
		e := r.at(i)
		if e.frame != nil {
			if len(dst) > 0 && bytes+len(e.frame) > maxBytes {
				break
			}
			bytes += len(e.frame)
			dst = append(dst, Frame{Seq: e.seq, Time: e.time, Data: e.frame, check: e.check})
		}
		upTo = e.seq
	}
	return dst, upTo, true, wake
}

// baseSeq returns the seq after which the ring holds every event (-1
// before the first Publish).
func (r *Ring) baseSeq() int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.base
}

// Wait returns a channel closed by the next Publish.
func (r *Ring) Wait() <-chan struct{} {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.wake
}

// Head returns the newest seq the ring was given (0 before any).
func (r *Ring) Head() int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.n > 0 {
		return r.at(r.n - 1).seq
	}
	return max(r.base, 0)
}

// Len returns the events and frame bytes the ring holds.
func (r *Ring) Len() (events, bytes int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.n, r.bytes
}
