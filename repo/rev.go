package repo

import (
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// RevClock hands out commit revs (TIDs) that never go backwards, even when
// the wall clock does, and that always sort after the repository's previous
// rev. It is safe for concurrent use.
type RevClock struct {
	mu      sync.Mutex
	clockID uint
	last    uint64
	now     func() time.Time
}

// NewRevClock returns a clock with the given 10-bit clock id.
func NewRevClock(clockID uint) *RevClock {
	return &RevClock{clockID: clockID & 0x3ff, now: time.Now}
}

// Next returns a rev greater than both every rev this clock returned before
// and prev (pass "" for a repository's first commit).
func (c *RevClock) Next(prev syntax.TID) syntax.TID {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := syntax.NewTIDFromTime(c.now(), c.clockID).Integer()
	if v <= c.last {
		v = c.last + 1
	}
	if prev != "" {
		if p := prev.Integer(); v <= p {
			v = p + 1
		}
	}
	c.last = v
	return syntax.NewTIDFromInteger(v)
}
