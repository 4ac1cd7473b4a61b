package events

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/reservoir-atproto/reservoir/store"

	"github.com/reservoir-atproto/reservoir/events/wire"
)

// Log is the durable event log a firehose replays from. *store.DB is one.
type Log interface {
	// Events calls fn for every event with a seq greater than after, in
	// order, until fn returns an error (store.ErrStop ends quietly).
	Events(after int64, fn func(store.CommittedEvent) error) error
	// FirstSeq is the oldest seq still in the log (0 when it is empty).
	FirstSeq() (int64, error)
	// LastSeq is the newest durable seq (0 before the first event).
	LastSeq() int64
}

var _ Log = (*store.DB)(nil)

// Options configures a Firehose. Log and Ring are required; every other
// zero value takes its default.
type Options struct {
	// Log is the store's event log.
	Log Log
	// Ring is the in-memory tail the store's committer feeds
	// (store.Options.OnCommit = Ring.Publish).
	Ring *Ring
	// EventWindow is the store's event window: how long events stay in the
	// log. It tells an expired position from a purged one. Default 72h.
	EventWindow time.Duration
	// Now is the store's clock. Default time.Now.
	Now func() time.Time
	// MaxSubscribers bounds concurrent websocket subscribers. Default 10,000.
	MaxSubscribers int
	// WriteTimeout is how long a subscriber's socket may accept nothing
	// before the subscriber is dropped as too slow. Default 30s.
	WriteTimeout time.Duration
	// PingInterval is how often a subscriber is pinged. Default 30s.
	PingInterval time.Duration
	// IdleTimeout is how long a subscriber may send nothing at all (not even
	// a pong) before it is dropped as gone. Default 2×PingInterval.
	IdleTimeout time.Duration
	// BatchFrames bounds the frames one Poll returns. Default 256.
	BatchFrames int
	// BatchBytes bounds the bytes one Poll returns (past the first frame),
	// and so the page buffer of a subscriber reading the store. Default
	// 256 KiB.
	BatchBytes int
	// Metrics counts subscribers, frames and disconnects; nil counts
	// nothing.
	Metrics *Metrics
	// Logger receives connection-level logs; default: discard.
	Logger *slog.Logger

	// finalGrace replaces the package's finalGrace when set (tests).
	finalGrace time.Duration
}

// EnsureDefaults fills in the defaults of unset fields.
func (o *Options) EnsureDefaults() {
	if o.EventWindow <= 0 {
		o.EventWindow = 72 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxSubscribers <= 0 {
		o.MaxSubscribers = 10_000
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 30 * time.Second
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 30 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 2 * o.PingInterval
	}
	if o.BatchFrames <= 0 {
		o.BatchFrames = 256
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = 256 << 10
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.finalGrace <= 0 {
		o.finalGrace = finalGrace
	}
}

// Firehose serves com.atproto.sync.subscribeRepos: it opens streams at a
// cursor and runs websocket subscribers over them. It is safe for
// concurrent use.
type Firehose struct {
	opts    Options
	metrics *Metrics
	log     *slog.Logger

	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	closed  bool
	closing chan struct{} // closed by Close
	wg      sync.WaitGroup
}

// New returns a Firehose over opts.Log and opts.Ring.
func New(opts Options) (*Firehose, error) {
	if opts.Log == nil || opts.Ring == nil {
		return nil, errors.New("events: a firehose needs a Log and a Ring")
	}
	opts.EnsureDefaults()
	return &Firehose{
		opts:    opts,
		metrics: opts.Metrics,
		log:     opts.Logger,
		subs:    map[*subscriber]struct{}{},
		closing: make(chan struct{}),
	}, nil
}

// OutdatedCursorMessage is the message of the #info OutdatedCursor frame,
// as the reference PDS words it.
const OutdatedCursorMessage = "Requested cursor exceeded limit. Possibly missing events"

// Open returns a stream starting at cursor (sync-spec §3.3):
//   - no cursor: at the newest seq, live only;
//   - a cursor past the newest seq: ErrFutureCursor;
//   - 0: from the oldest event kept;
//   - N: from the event after N; if events after N are gone from the log
//     (N+1 is older than the oldest kept event), the stream first yields
//     an #info OutdatedCursor frame, then goes on from the oldest kept
//     event.
func (f *Firehose) Open(c Cursor) (*Stream, error) {
	s := &Stream{f: f, lastTime: f.opts.Now()}
	last := f.opts.Log.LastSeq()
	if !c.Set {
		s.pos = last
		return s, nil
	}
	if c.Seq > last {
		return nil, fmt.Errorf("%w: cursor %d, newest seq %d", ErrFutureCursor, c.Seq, last)
	}
	s.pos = c.Seq
	first, err := f.opts.Log.FirstSeq()
	if err != nil {
		return nil, fmt.Errorf("events: opening at %d: %w", c.Seq, err)
	}
	if c.Seq == 0 {
		// The oldest event kept: the ring may still hold older ones that
		// the store has let go.
		if first > 0 {
			s.pos = first - 1
		} else {
			s.pos = last
		}
		return s, nil
	}
	switch {
	case first == 0 && c.Seq < last: // every event up to last is gone
		s.pos = last
	case first > 0 && c.Seq+1 < first:
		s.pos = first - 1
	default:
		return s, nil
	}
	s.info = wire.InfoFrame("OutdatedCursor", OutdatedCursorMessage)
	return s, nil
}

// acquire registers a subscriber, or refuses it.
func (f *Firehose) acquire(s *subscriber) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ErrClosed
	}
	if len(f.subs) >= f.opts.MaxSubscribers {
		return ErrTooManySubscribers
	}
	f.subs[s] = struct{}{}
	f.wg.Add(1)
	f.metrics.connected(1)
	return nil
}

func (f *Firehose) release(s *subscriber) {
	f.mu.Lock()
	delete(f.subs, s)
	f.mu.Unlock()
	f.metrics.connected(-1)
	f.wg.Done()
}

// Subscribers returns how many websocket subscribers are connected.
func (f *Firehose) Subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// shutdownGrace is how long Close lets subscribers send their close frame
// before it cuts their connections.
const shutdownGrace = 5 * time.Second

// Close shuts the firehose down: new subscriptions are refused, every
// subscriber is sent a close frame (1001, going away) and disconnected, and
// Close returns once all of them have ended. It may be called more than
// once, and concurrently; every call waits.
func (f *Firehose) Close() {
	f.mu.Lock()
	if !f.closed {
		f.closed = true
		close(f.closing)
	}
	f.mu.Unlock()
	done := make(chan struct{})
	go func() {
		f.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-time.After(shutdownGrace):
	}
	f.mu.Lock()
	for s := range f.subs {
		if s.conn != nil { // nil until the upgrade
			s.conn.Close()
		}
	}
	f.mu.Unlock()
	<-done
}
