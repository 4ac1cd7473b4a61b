package relay

import "slices"

// cursorTracker computes a host's durable cursor: the highest upstream seq
// S such that every event submitted with a seq up to S is done (applied, or
// dropped after its verdict). Events of different repositories finish out
// of order, so a seq that is done is held until every seq before it is.
//
// Seqs are submitted in increasing order (the subscription skips any that
// is not), so the pending ones form a queue whose front is the oldest. It
// is not safe for concurrent use: the host's lock guards it.
type cursorTracker struct {
	durable int64   // the durable cursor, store.NoCursor before any event
	pending []int64 // submitted and not yet counted, increasing; from head
	head    int
	done    map[int64]struct{} // pending seqs done ahead of the front
}

func newCursorTracker(durable int64) cursorTracker {
	return cursorTracker{durable: durable, done: map[int64]struct{}{}}
}

// add records a seq about to be submitted (before Submit: it may be done
// before Submit returns).
func (c *cursorTracker) add(seq int64) { c.pending = append(c.pending, seq) }

// drop forgets the last seq added, whose Submit failed: it was never queued
// and will never be done.
func (c *cursorTracker) drop(seq int64) {
	if n := len(c.pending); n > c.head && c.pending[n-1] == seq {
		c.pending = c.pending[:n-1]
		delete(c.done, seq)
	}
}

// finish records that seq is done and reports whether the durable cursor
// moved. A seq that is not pending (from before a reset) is ignored.
func (c *cursorTracker) finish(seq int64) bool {
	if c.head == len(c.pending) || seq < c.pending[c.head] {
		return false
	}
	if seq != c.pending[c.head] {
		if _, found := slices.BinarySearch(c.pending[c.head:], seq); found {
			c.done[seq] = struct{}{}
		}
		return false
	}
	c.durable = seq
	c.head++
	for c.head < len(c.pending) {
		next := c.pending[c.head]
		if _, ok := c.done[next]; !ok {
			break
		}
		delete(c.done, next)
		c.durable = next
		c.head++
	}
	c.compact()
	return true
}

// compact reclaims the consumed front of the queue once it is at least
// half of it, so the queue's memory follows the events in flight.
func (c *cursorTracker) compact() {
	if c.head == len(c.pending) {
		c.pending, c.head = c.pending[:0], 0
		return
	}
	if c.head >= 1024 && c.head*2 >= len(c.pending) {
		n := copy(c.pending, c.pending[c.head:])
		c.pending, c.head = c.pending[:n], 0
	}
}

// inFlight is the number of seqs submitted and not yet done.
func (c *cursorTracker) inFlight() int { return len(c.pending) - c.head - len(c.done) }

// reset forgets every pending seq and starts over at durable (a host whose
// upstream restarted its seqs).
func (c *cursorTracker) reset(durable int64) { *c = newCursorTracker(durable) }
