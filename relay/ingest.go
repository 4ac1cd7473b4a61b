package relay

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/identity"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
)

// IdentityResolver is what the ingest needs of identity resolution: the
// signing key commits are checked against, the PDS an account's events must
// come from, and the handle. *identity.Resolver implements it.
type IdentityResolver interface {
	LookupDID(ctx context.Context, did syntax.DID) (*identity.Identity, error)
	SigningKey(ctx context.Context, did syntax.DID) (atcrypto.PublicKey, error)
	RefreshSigningKey(ctx context.Context, did syntax.DID) (atcrypto.PublicKey, error)
	PDSEndpoint(ctx context.Context, did syntax.DID) (string, error)
	Purge(did syntax.DID)
}

var _ IdentityResolver = (*identity.Resolver)(nil)

// IngestOptions configures NewIngest. DB, Repos and Identity are required;
// every other field has a default (see withDefaults).
type IngestOptions struct {
	DB       *store.DB
	Repos    *repostore.Repos
	Identity IdentityResolver
	// Lenient accepts upstream commits without prevData (--lenient); they
	// are then applied only if their ops apply to the stored tree and give
	// the signed root.
	Lenient bool
	// Lean (serve --archive=false) keeps of mirrored accounts only their
	// state (head, status, host, handle, collection counts): no blocks, no
	// record index (lean.go). Hosted accounts are unaffected.
	Lean bool
	// Workers is how many events are processed at once (of different
	// accounts). Verification is CPU, applying waits for the store's group
	// commit (an fsync), so many more workers than cores keep both busy and
	// make the groups large; more workers than the store's MaxGroup keep
	// verifying while a full group waits for its fsync.
	// Default 1,024: on the ingest benchmark (the load generator's stream,
	// 10k accounts, 2 cores), since group commits overlap their fsyncs,
	// 1,024 workers gave 13,556–15,264 archived commits/s against
	// 12,905–14,244 for 512 (nine alternating pairs: six won, two even,
	// one lost; the lean relay the same either way), at the cost of about
	// 40 MiB of RSS with 1M archived accounts (P6: 924 MiB median against
	// 884; BENCHMARKS.md). Before that pipelining 512 was best. Running
	// events count in the queue bounds below, so more workers do not raise
	// the bound on queued frames; each holds its event's decoded state.
	Workers int
	// QueueLen bounds the events submitted and not yet processed, all
	// accounts together; QueueBytes bounds their frames' bytes. Submit
	// blocks beyond either (one frame is always admitted into an empty
	// queue). Defaults 10,000 and 64 MiB.
	QueueLen   int
	QueueBytes int64
	// MaxHeldEvents and MaxHeldBytes bound, apart from the queues above,
	// the events waiting for their account's resync, so that accounts
	// being resynced never stall the others. An event beyond them is
	// dropped (the account's chain check then asks for another resync).
	// Defaults QueueLen and QueueBytes.
	MaxHeldEvents int
	MaxHeldBytes  int64
	// ResyncWorkers is how many repositories are fetched and replaced at
	// once; MaxPendingResyncs bounds the resyncs waiting for one (a
	// request beyond it is dropped: the account stays desynchronized and
	// its next event asks again). Defaults 4 and 10,000.
	ResyncWorkers     int
	MaxPendingResyncs int
	// ResyncTimeout bounds one getRepo fetch; MaxRepoSize the CAR it reads
	// (verified in memory). Defaults 5m and 1 GiB.
	ResyncTimeout time.Duration
	MaxRepoSize   int64
	// ResyncBackoff is the wait after a failed resync of an account before
	// its events may ask for another; it doubles with each failure up to
	// MaxResyncBackoff. Defaults 30s and 6h.
	ResyncBackoff    time.Duration
	MaxResyncBackoff time.Duration
	// HTTPClient fetches getRepo. Default: a client whose dialer refuses
	// non-public addresses unless AllowInsecure.
	HTTPClient *http.Client
	// AllowInsecure allows http:// PDS endpoints and loopback or private
	// addresses (--allow-insecure-hosts; tests).
	AllowInsecure bool
	// OnDone is called once per submitted event when it is durably handled:
	// applied and committed, or dropped after its verdict. It may be called
	// before Submit returns, from any goroutine, in any order across events;
	// it must not block.
	OnDone func(hostname string, seq int64)
	// SweepDesynchronized, when set, makes NewIngest walk the accounts once
	// in the background and queue a resync of every mirrored account left
	// desynchronized (by a failure before a restart).
	SweepDesynchronized bool
	// LegacyEvents (--legacy-events) also emits the legacy frames next to
	// the current ones, for consumers that still expect them: a #handle
	// next to each #identity that carries a handle, a #tombstone next to
	// each deletion #account, a #migrate next to the #identity of an
	// account that moved hosts. Each takes its own seq.
	LegacyEvents bool
	// DiscoverHost, when set, is told the PDS endpoint a mirrored
	// account's DID document names when it is not the host the account's
	// events came from (the account moved): the Manager's Discover, which
	// crawls that host as a requestCrawl would. It must not block.
	DiscoverHost func(endpoint string)

	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: metrics are kept but not exported
	Now        func() time.Time
}

func (o IngestOptions) withDefaults() (IngestOptions, error) {
	if o.DB == nil || o.Repos == nil || o.Identity == nil {
		return o, errors.New("relay: IngestOptions needs DB, Repos and Identity")
	}
	if o.Workers <= 0 {
		o.Workers = 1024
	}
	if o.QueueLen <= 0 {
		o.QueueLen = 10_000
	}
	if o.QueueBytes <= 0 {
		o.QueueBytes = 64 << 20
	}
	if o.MaxHeldEvents <= 0 {
		o.MaxHeldEvents = o.QueueLen
	}
	if o.MaxHeldBytes <= 0 {
		o.MaxHeldBytes = o.QueueBytes
	}
	if o.ResyncWorkers <= 0 {
		o.ResyncWorkers = 4
	}
	if o.MaxPendingResyncs <= 0 {
		o.MaxPendingResyncs = 10_000
	}
	if o.ResyncTimeout <= 0 {
		o.ResyncTimeout = 5 * time.Minute
	}
	if o.MaxRepoSize <= 0 {
		o.MaxRepoSize = 1 << 30
	}
	if o.ResyncBackoff <= 0 {
		o.ResyncBackoff = 30 * time.Second
	}
	if o.MaxResyncBackoff <= 0 {
		o.MaxResyncBackoff = 6 * time.Hour
	}
	if o.HTTPClient == nil {
		o.HTTPClient = newResyncClient(o.AllowInsecure)
	}
	if o.OnDone == nil {
		o.OnDone = func(string, int64) {}
	}
	if o.DiscoverHost == nil {
		o.DiscoverHost = func(string) {}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.NewRegistry()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// ErrIngestClosed is returned by Submit and Backfill after Close.
var ErrIngestClosed = errors.New("relay: ingest closed")

// Ingest verifies and applies the events of upstream hosts (see the package
// doc). It is safe for concurrent use.
type Ingest struct {
	opts  IngestOptions
	db    *store.DB
	repos *repostore.Repos
	ident IdentityResolver
	log   *slog.Logger
	m     *ingestMetrics

	mu          sync.Mutex
	queues      map[string]*didQueue // accounts with events queued, running or held by a resync
	ready       []*didQueue          // runnable queues, FIFO from readyHead
	readyHead   int
	queued      int   // events submitted and not finished, but held ones
	queuedBytes int64 // their frames' bytes
	held        int   // events waiting for their account's resync
	heldBytes   int64
	space       chan struct{}
	work        *sync.Cond // a queue became runnable, or closing
	idle        *sync.Cond // a queue's running event finished
	closing     bool
	backoff     map[string]*resyncBackoff
	retries     retrySchedule // the backoffs by next attempt (resync_retry.go)
	retryWake   chan struct{}

	resyncCh     chan *didQueue
	resyncCtx    context.Context // canceled by Close: fetches stop
	cancelResync context.CancelFunc
	workers      sync.WaitGroup
	resyncers    sync.WaitGroup
}

// didQueue is one account's events, in submission order, and what holds it.
// A queue exists only while it has events or is held; it is freed when idle.
type didQueue struct {
	did     string
	items   []*queuedEvent
	running bool        // a worker is processing its first event
	resync  resyncState // a resync is waiting for it or holds it
	inReady bool
	host    string // the host the resync was asked for
}

type resyncState uint8

const (
	resyncNone    resyncState = iota
	resyncPending             // asked for: the account's events wait
	resyncActive              // running
)

type queuedEvent struct {
	hostname string
	seq      int64
	ev       wire.DIDEvent
	size     int64
	local    *localChange // not an upstream event: a change of ours (ingest_local.go)
}

// did is the account the event is about.
func (qe *queuedEvent) did() string {
	if qe.local != nil {
		return qe.local.did
	}
	return qe.ev.EventDID()
}

// NewIngest starts an ingest's workers.
func NewIngest(opts IngestOptions) (*Ingest, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	m, err := newIngestMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	in := &Ingest{
		opts: o, db: o.DB, repos: o.Repos, ident: o.Identity, log: o.Logger, m: m,
		queues:    map[string]*didQueue{},
		space:     make(chan struct{}),
		backoff:   map[string]*resyncBackoff{},
		retryWake: make(chan struct{}, 1),
		resyncCh:  make(chan *didQueue, o.MaxPendingResyncs),
	}
	in.work = sync.NewCond(&in.mu)
	in.idle = sync.NewCond(&in.mu)
	in.resyncCtx, in.cancelResync = context.WithCancel(context.Background())
	for range o.Workers {
		in.workers.Add(1)
		go in.worker()
	}
	for range o.ResyncWorkers {
		in.resyncers.Add(1)
		go in.resyncWorker()
	}
	in.resyncers.Add(1)
	go in.retryLoop()
	in.resyncers.Add(1)
	go in.recordMirrorMode()
	if o.SweepDesynchronized {
		in.resyncers.Add(1)
		go in.sweepDesynchronized()
	}
	return in, nil
}

// Submit decodes an upstream frame from hostname and queues it behind the
// earlier events of its account. It blocks while the queues are full
// (backpressure to the upstream reader) and returns ctx.Err() if ctx ends
// first, or ErrIngestClosed after Close; the frame is then not taken and
// OnDone is not called for it. Otherwise exactly one OnDone(hostname, seq)
// follows, possibly before Submit returns: a frame that is malformed, has no
// account (#info, an error frame, an unknown type) or is too large is
// settled at once. The ingest keeps frame (event fields alias it) until
// that OnDone: the caller must not reuse it.
func (in *Ingest) Submit(ctx context.Context, hostname string, seq int64, frame []byte) error {
	ev, err := wire.DecodeFrame(frame)
	if err != nil {
		in.m.event("malformed", outcomeMalformed)
		in.log.Debug("malformed upstream frame", "host", hostname, "seq", seq, "err", err)
		in.opts.OnDone(hostname, seq)
		return nil
	}
	de, ok := ev.(wire.DIDEvent)
	if !ok {
		in.m.event(typeLabel(ev), outcomeSkipped)
		in.opts.OnDone(hostname, seq)
		return nil
	}
	return in.enqueue(ctx, &queuedEvent{hostname: hostname, seq: seq, ev: de, size: int64(len(frame))})
}

// enqueue waits for room and appends the event to its account's queue.
// An account waiting for a resync takes the event without waiting, within
// the held bounds, beyond which the event is dropped.
func (in *Ingest) enqueue(ctx context.Context, qe *queuedEvent) error {
	did := qe.did()
	in.mu.Lock()
	var q *didQueue
	for {
		if in.closing {
			in.mu.Unlock()
			return ErrIngestClosed
		}
		q = in.queues[did]
		if q != nil && q.resync != resyncNone {
			if qe.local == nil && in.held >= in.opts.MaxHeldEvents || in.heldBytes+qe.size > in.opts.MaxHeldBytes {
				in.mu.Unlock()
				in.m.event(typeLabel(qe.ev), outcomeDroppedHeld)
				in.opts.OnDone(qe.hostname, qe.seq)
				return nil
			}
			in.held++
			in.heldBytes += qe.size
			q.items = append(q.items, qe)
			in.mu.Unlock()
			return nil
		}
		full := in.queued >= in.opts.QueueLen || in.queuedBytes+qe.size > in.opts.QueueBytes
		if !full || in.queued == 0 {
			break
		}
		space := in.space
		in.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return ctx.Err()
		}
		in.mu.Lock()
	}
	in.queued++
	in.queuedBytes += qe.size
	in.m.queue(in.queued, in.queuedBytes)
	if q == nil {
		q = &didQueue{did: did}
		in.queues[did] = q
	}
	q.items = append(q.items, qe)
	in.scheduleLocked(q)
	in.mu.Unlock()
	return nil
}

// holdLocked marks q as waiting for a resync: its queued events move to
// the held counts, which frees room in the queues.
func (in *Ingest) holdLocked(q *didQueue, hostname string) {
	q.resync, q.host = resyncPending, hostname
	n, size := len(q.items), q.size()
	in.queued -= n
	in.queuedBytes -= size
	in.held += n
	in.heldBytes += size
	in.m.queue(in.queued, in.queuedBytes)
	if n > 0 {
		in.signalSpaceLocked()
	}
}

// releaseLocked ends q's resync: its events count as queued again (above
// the bounds for a while, if they must) and run.
func (in *Ingest) releaseLocked(q *didQueue) {
	q.resync = resyncNone
	n, size := len(q.items), q.size()
	in.held -= n
	in.heldBytes -= size
	in.queued += n
	in.queuedBytes += size
	in.m.queue(in.queued, in.queuedBytes)
	in.scheduleLocked(q)
}

func (q *didQueue) size() int64 {
	var n int64
	for _, qe := range q.items {
		n += qe.size
	}
	return n
}

// signalSpaceLocked wakes the Submits waiting for room.
func (in *Ingest) signalSpaceLocked() {
	close(in.space)
	in.space = make(chan struct{})
}

// scheduleLocked makes q runnable if it has events and nothing holds it, and
// frees it if it is idle.
func (in *Ingest) scheduleLocked(q *didQueue) {
	switch {
	case q.running || q.resync != resyncNone || q.inReady:
	case len(q.items) > 0:
		q.inReady = true
		in.ready = append(in.ready, q)
		in.work.Signal()
	default:
		delete(in.queues, q.did)
	}
}

// worker processes runnable queues, one event at a time, until Close and
// every queued event is done.
func (in *Ingest) worker() {
	defer in.workers.Done()
	in.mu.Lock()
	for {
		for in.readyHead == len(in.ready) && !in.drainedLocked() {
			in.work.Wait()
		}
		if in.readyHead == len(in.ready) {
			in.mu.Unlock()
			return
		}
		q := in.ready[in.readyHead]
		in.ready[in.readyHead] = nil
		in.readyHead++
		if in.readyHead > 64 && in.readyHead*2 > len(in.ready) {
			n := copy(in.ready, in.ready[in.readyHead:])
			clear(in.ready[n:])
			in.ready, in.readyHead = in.ready[:n], 0
		}
		q.inReady = false
		qe := q.items[0]
		q.items[0] = nil
		q.items = q.items[1:]
		if len(q.items) == 0 {
			q.items = nil
		}
		q.running = true
		in.mu.Unlock()

		in.process(qe)

		in.mu.Lock()
		q.running = false
		in.queued--
		in.queuedBytes -= qe.size
		in.m.queue(in.queued, in.queuedBytes)
		in.signalSpaceLocked()
		if q.resync == resyncPending {
			in.idle.Broadcast()
		}
		in.scheduleLocked(q)
		if in.drainedLocked() {
			in.work.Broadcast()
		}
	}
}

// drainedLocked reports whether Close may let the workers go: closing, and
// no event left, queued or held.
func (in *Ingest) drainedLocked() bool { return in.closing && in.queued == 0 && in.held == 0 }

// process handles one event and reports it done.
func (in *Ingest) process(qe *queuedEvent) {
	if qe.local != nil {
		in.runLocal(qe.local)
		return
	}
	start := time.Now()
	outcome := in.handle(qe)
	in.m.event(typeLabel(qe.ev), outcome)
	in.m.latency.Observe(time.Since(start).Seconds())
	in.opts.OnDone(qe.hostname, qe.seq)
}

// Close stops taking events, cancels the resyncs in flight (their accounts
// stay desynchronized and ask again later), processes every event already
// queued, and returns when all workers are gone. The store must stay open
// until then.
func (in *Ingest) Close() {
	in.mu.Lock()
	if in.closing {
		in.mu.Unlock()
		return
	}
	in.closing = true
	in.signalSpaceLocked() // blocked Submits see closing

	in.work.Broadcast()
	in.idle.Broadcast()
	in.mu.Unlock()
	in.cancelResync()
	in.resyncers.Wait()
	in.workers.Wait()
}

// QueueStats is what the ingest holds now.
type QueueStats struct {
	Events         int   // submitted and not finished, but held ones
	Bytes          int64 // their frames' bytes
	Held           int   // events waiting for their account's resync
	HeldBytes      int64 // their frames' bytes
	Accounts       int   // accounts with events queued or a resync
	PendingResyncs int   // resyncs waiting for a worker
}

// Stats returns the current queue sizes.
func (in *Ingest) Stats() QueueStats {
	in.mu.Lock()
	defer in.mu.Unlock()
	return QueueStats{
		Events: in.queued, Bytes: in.queuedBytes, Held: in.held, HeldBytes: in.heldBytes,
		Accounts: len(in.queues), PendingResyncs: len(in.resyncCh),
	}
}

func typeLabel(ev wire.Event) string {
	switch e := ev.(type) {
	case *wire.ErrorFrameEvent:
		return "error"
	case *wire.UnknownEvent:
		return "unknown"
	default:
		if t := e.Type(); len(t) > 1 {
			return t[1:]
		}
	}
	return "unknown"
}
