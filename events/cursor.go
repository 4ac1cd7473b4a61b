package events

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/reservoir-atproto/reservoir/events/wire"
)

// Errors of opening and following a subscription.
var (
	// ErrInvalidCursor: the cursor parameter is not a non-negative decimal
	// integer. It is answered with HTTP 400 before any upgrade.
	ErrInvalidCursor = errors.New("events: invalid cursor")
	// ErrFutureCursor: the cursor is ahead of the newest seq. On a stream it
	// becomes the error frame FutureCursor.
	ErrFutureCursor = errors.New("events: cursor in the future")
	// ErrConsumerTooSlow: the subscriber's position fell out of the replay
	// window (events after it were collected before it read them), or its
	// socket accepted nothing for the write timeout. On a stream it becomes
	// the error frame ConsumerTooSlow.
	ErrConsumerTooSlow = errors.New("events: consumer too slow")
	// ErrTooManySubscribers: Options.MaxSubscribers are connected.
	ErrTooManySubscribers = errors.New("events: too many subscribers")
	// ErrClosed: the firehose is shut down.
	ErrClosed = errors.New("events: firehose closed")
)

// MaxSeq is the largest seq the protocol allows (2^53-1, sync-spec §3.3).
const MaxSeq = wire.MaxSeq

// Cursor is where a subscription starts.
type Cursor struct {
	// Seq is the last seq the consumer processed: the stream carries the
	// events with a greater seq. 0 replays the whole window.
	Seq int64
	// Set is false when the request carried no cursor: the stream starts at
	// the current head and sends only events committed after it.
	Set bool
}

// LiveCursor is the cursor of a request without one.
var LiveCursor = Cursor{}

// AtSeq is the cursor "everything after seq".
func AtSeq(seq int64) Cursor { return Cursor{Seq: seq, Set: true} }

// ParseCursor parses the cursor query parameter: "" is no cursor (live);
// otherwise decimal digits only (at most 16 of them, as many as MaxSeq
// has), with a value up to MaxSeq. A sign, a fraction, spaces or a value
// past MaxSeq is ErrInvalidCursor.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return LiveCursor, nil
	}
	if len(s) > 16 {
		return Cursor{}, fmt.Errorf("%w: %.20q is too long", ErrInvalidCursor, s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return Cursor{}, fmt.Errorf("%w: %q is not a non-negative integer", ErrInvalidCursor, s)
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > MaxSeq {
		return Cursor{}, fmt.Errorf("%w: %q is out of range", ErrInvalidCursor, s)
	}
	return AtSeq(n), nil
}

// String is the cursor as the query parameter writes it ("" when live).
func (c Cursor) String() string {
	if !c.Set {
		return ""
	}
	return strconv.FormatInt(c.Seq, 10)
}
