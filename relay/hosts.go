package relay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/reservoir-atproto/reservoir/store"
)

// Submitter takes upstream frames for processing: the ingest. Submit blocks
// while the ingest's queues are full (backpressure to the upstream read)
// and returns ctx.Err() when ctx ends first. Every frame Submit accepts is
// later reported done, once, through Manager.Done.
type Submitter interface {
	Submit(ctx context.Context, hostname string, seq int64, frame []byte) error
}

// ManagerOptions configure a Manager. Zero fields take the defaults named.
type ManagerOptions struct {
	// DB stores the hosts. Required.
	DB *store.DB
	// Submitter receives every upstream frame that carries a seq. Required.
	Submitter Submitter
	// AllowInsecure (--allow-insecure-hosts) allows http/ws hosts, IP
	// addresses, ports on any host, and loopback and private addresses.
	AllowInsecure bool

	// Resolver resolves hostnames for the address check of crawl requests.
	// Default net.DefaultResolver.
	Resolver *net.Resolver
	// HTTPClient asks a host to be crawled whether it answers. Default: a
	// client with CheckTimeout, no redirects, and a dialer that refuses
	// non-public addresses unless AllowInsecure.
	HTTPClient *http.Client
	// CheckTimeout bounds the check that a host answers, and each dial of a
	// subscription. Default 10s.
	CheckTimeout time.Duration

	// MaxFrameBytes bounds one upstream frame. Default 5 MB (sync-spec §3.2).
	MaxFrameBytes int64
	// PingInterval is how often a subscription pings its host; a connection
	// that reads nothing, not even a pong, for three intervals is dropped.
	// Default 30s.
	PingInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait before reconnecting, which
	// doubles with each failure in a row (with ±50% jitter). Defaults 1s and
	// 1m.
	MinBackoff, MaxBackoff time.Duration
	// OfflineAfter failed connection attempts in a row mark a host offline.
	// Default 15 (as the reference relay).
	OfflineAfter int
	// OfflineRetry is the wait between attempts to reach an offline host
	// (which comes back by itself once one succeeds). Default 5m.
	OfflineRetry time.Duration

	// Backfiller, when set, fetches every repository a new host lists
	// (listRepos) when it is first crawled, alongside its live events:
	// the ingest's Backfill. Nil: new hosts are followed from their live
	// events only.
	Backfiller Backfiller
	// BackfillWorkers is how many repositories of one host are fetched at
	// once; BackfillReposPerSecond bounds how fast they are started.
	// Defaults 4 and 10.
	BackfillWorkers        int
	BackfillReposPerSecond int

	// EventsPerSecond is the default limit of events read per second from
	// one host (HostLimits.EventsPerSecond overrides it). Reading past it is
	// delayed, never dropped; the host shows as throttled meanwhile.
	// Default 1000.
	EventsPerSecond int64
	// NewHostsPerDay bounds the hosts public crawl requests add per 24
	// hours. Default 100. Admin additions do not count.
	NewHostsPerDay int
	// FlushInterval is how often durable cursors are stored. Default 1s.
	FlushInterval time.Duration
	// RecountInterval is how often the account count of each host record
	// (what the account limit checks, and what is stored with the record)
	// is refreshed from the store's exact per-change counts
	// (store.HostAccountCounts, a key per host). listHosts and
	// getHostStatus read the store's count directly. Default 5s.
	RecountInterval time.Duration
	// StopTimeout bounds the wait for subscriptions to end in Stop.
	// Default 10s.
	StopTimeout time.Duration

	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
}

func (o ManagerOptions) withDefaults() (ManagerOptions, error) {
	if o.DB == nil || o.Submitter == nil {
		return o, errors.New("relay: ManagerOptions needs DB and Submitter")
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&o.CheckTimeout, 10 * time.Second},
		{&o.PingInterval, 30 * time.Second},
		{&o.MinBackoff, time.Second},
		{&o.MaxBackoff, time.Minute},
		{&o.OfflineRetry, 5 * time.Minute},
		{&o.FlushInterval, time.Second},
		{&o.RecountInterval, 5 * time.Second},
		{&o.StopTimeout, 10 * time.Second},
	} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.MaxFrameBytes <= 0 {
		o.MaxFrameBytes = 5_000_000
	}
	if o.OfflineAfter <= 0 {
		o.OfflineAfter = 15
	}
	if o.EventsPerSecond <= 0 {
		o.EventsPerSecond = 1000
	}
	if o.BackfillWorkers <= 0 {
		o.BackfillWorkers = 4
	}
	if o.BackfillReposPerSecond <= 0 {
		o.BackfillReposPerSecond = 10
	}
	if o.NewHostsPerDay <= 0 {
		o.NewHostsPerDay = 100
	}
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{
			Timeout: o.CheckTimeout,
			Transport: &http.Transport{
				DialContext:           guardedDialer(o.AllowInsecure, o.CheckTimeout).DialContext,
				TLSHandshakeTimeout:   o.CheckTimeout,
				ResponseHeaderTimeout: o.CheckTimeout,
				MaxIdleConns:          10,
				IdleConnTimeout:       time.Minute,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o, nil
}

// Manager runs the relay's upstream hosts: one subscription per host that
// is not idle or banned, the host records in the store (status, durable
// cursor, limits, account count), crawl requests and the admin's host
// actions. Its methods are safe for concurrent use.
type Manager struct {
	opts    ManagerOptions
	db      *store.DB
	log     *slog.Logger
	metrics *metrics

	mu      sync.Mutex
	hosts   map[string]*hostState
	added   []time.Time // creations by public crawl requests in the last 24h
	ctx     context.Context
	cancel  context.CancelFunc
	started bool
	stopped bool

	discover *discoverer // hosts named by DID documents (hosts_discover.go)

	// persist serializes host writes, so a snapshot taken later is never
	// overwritten by one taken earlier.
	persist sync.Mutex

	loops sync.WaitGroup
}

// hostState is one host: its record (the truth, written through to the
// store), the cursor tracker and the running subscription.
type hostState struct {
	addr HostAddr

	mu        sync.Mutex
	rec       store.Host
	dirty     bool // rec differs from the store in fields flushed periodically
	throttled bool
	// accountLimited: events of new accounts were skipped since the last
	// recount, the host being at its account limit.
	accountLimited bool
	cursor         cursorTracker
	submitted      int64 // the last seq submitted, store.NoCursor before one
	// connectedOnce: a connection succeeded since the host was loaded or
	// reactivated. Reconnecting to a host whose cursor is still unknown
	// then asks for its whole window (cursor 0), not just what comes next.
	connectedOnce bool
	limiter       *rate.Limiter
	sub           *subscription
}

// NewManager returns a Manager; Start loads the hosts and subscribes.
func NewManager(opts ManagerOptions) (*Manager, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	mgr := &Manager{opts: o, db: o.DB, log: o.Logger, metrics: m, hosts: map[string]*hostState{}, discover: newDiscoverer()}
	mgr.ctx, mgr.cancel = context.WithCancel(context.Background())
	m.watch(mgr)
	return mgr, nil
}

// Start loads every host from the store, subscribes to those that are
// active, throttled or offline (an offline host is retried at once, then
// slowly), and starts the periodic cursor flush and account recount.
func (m *Manager) Start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started {
		return errors.New("relay: manager started twice")
	}
	m.started = true
	var after uint64
	for {
		page, err := m.db.Hosts(after, 500)
		if err != nil {
			return fmt.Errorf("relay: loading hosts: %w", err)
		}
		if len(page) == 0 {
			break
		}
		for _, h := range page {
			after = h.ID
			hs := m.newHostState(*h)
			m.hosts[h.Hostname] = hs
			if subscribable(h.Status) {
				m.subscribeLocked(hs)
			}
		}
	}
	m.loops.Add(3)
	go m.flushLoop()
	go m.recountLoop()
	go m.discoverLoop()
	return nil
}

func subscribable(s store.HostStatus) bool {
	return s == store.HostActive || s == store.HostThrottled || s == store.HostOffline
}

func (m *Manager) newHostState(rec store.Host) *hostState {
	if rec.Status == store.HostThrottled { // shown from memory, never stored
		rec.Status = store.HostActive
	}
	return &hostState{
		addr:      HostAddr{Hostname: rec.Hostname, NoSSL: rec.NoSSL},
		rec:       rec,
		cursor:    newCursorTracker(rec.Cursor),
		submitted: rec.Cursor,
		limiter:   rate.NewLimiter(rate.Limit(m.eventsPerSecond(rec.Limits)), int(m.eventsPerSecond(rec.Limits))),
	}
}

func (m *Manager) eventsPerSecond(l store.HostLimits) int64 {
	if l.EventsPerSecond > 0 {
		return l.EventsPerSecond
	}
	return m.opts.EventsPerSecond
}

// Stop ends every subscription and waits for them (at most StopTimeout).
// Frames already submitted are still reported through Done: close the
// ingest after Stop, then Close the manager to store the final cursors.
func (m *Manager) Stop() {
	m.mu.Lock()
	m.stopped = true
	var subs []*subscription
	for _, hs := range m.hosts {
		hs.mu.Lock()
		if hs.sub != nil {
			subs = append(subs, hs.sub)
			hs.sub = nil
		}
		hs.mu.Unlock()
	}
	m.mu.Unlock()
	m.cancel()
	m.waitSubs(subs)
}

func (m *Manager) waitSubs(subs []*subscription) {
	deadline := time.NewTimer(m.opts.StopTimeout)
	defer deadline.Stop()
	for _, s := range subs {
		s.cancel()
	}
	for _, s := range subs {
		select {
		case <-s.done:
		case <-deadline.C:
			m.log.Warn("relay: subscriptions did not stop in time", "timeout", m.opts.StopTimeout)
			return
		}
	}
}

// Close stops the subscriptions (if Stop was not called), the flush and
// recount loops, and stores every host's final state.
func (m *Manager) Close() error {
	m.Stop()
	m.loops.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.StopTimeout)
	defer cancel()
	return m.flush(ctx)
}

// Done is the ingest's OnDone: the event with seq from hostname is durably
// handled. It advances the host's durable cursor, stored at the next flush.
func (m *Manager) Done(hostname string, seq int64) {
	m.mu.Lock()
	hs := m.hosts[hostname]
	m.mu.Unlock()
	if hs == nil {
		return
	}
	hs.mu.Lock()
	if hs.cursor.finish(seq) {
		hs.rec.Cursor = hs.cursor.durable
		hs.dirty = true
	}
	hs.mu.Unlock()
}

// flushLoop stores changed cursors every FlushInterval.
func (m *Manager) flushLoop() {
	defer m.loops.Done()
	t := time.NewTicker(m.opts.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
			if err := m.flush(m.ctx); err != nil && m.ctx.Err() == nil {
				m.log.Warn("relay: storing host cursors", "err", err)
			}
		}
	}
}

// flush stores every host whose record changed since it was last stored.
func (m *Manager) flush(ctx context.Context) error {
	m.persist.Lock()
	defer m.persist.Unlock()
	var recs []*store.Host
	var states []*hostState
	for _, hs := range m.snapshotHosts() {
		hs.mu.Lock()
		if hs.dirty {
			rec := hs.rec
			recs = append(recs, &rec)
			states = append(states, hs)
			hs.dirty = false
		}
		hs.mu.Unlock()
	}
	if len(recs) == 0 {
		return nil
	}
	if err := m.db.PutHosts(ctx, recs...); err != nil {
		for _, hs := range states {
			hs.mu.Lock()
			hs.dirty = true
			hs.mu.Unlock()
		}
		return err
	}
	return nil
}

// save stores one host's record now (a status change).
func (m *Manager) save(ctx context.Context, hs *hostState) error {
	m.persist.Lock()
	defer m.persist.Unlock()
	hs.mu.Lock()
	rec := hs.rec
	hs.dirty = false
	hs.mu.Unlock()
	if err := m.db.PutHost(ctx, &rec); err != nil {
		hs.mu.Lock()
		hs.dirty = true
		hs.mu.Unlock()
		return err
	}
	return nil
}

func (m *Manager) snapshotHosts() []*hostState {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*hostState, 0, len(m.hosts))
	for _, hs := range m.hosts {
		out = append(out, hs)
	}
	return out
}

// recountLoop recounts the accounts of every host at start and every
// RecountInterval.
func (m *Manager) recountLoop() {
	defer m.loops.Done()
	t := time.NewTicker(m.opts.RecountInterval)
	defer t.Stop()
	for {
		if err := m.Recount(); err != nil {
			m.log.Warn("relay: recounting accounts per host", "err", err)
		}
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Recount sets every host's account count from the store's per-host
// counts; the counts are stored with the records at the next flush.
func (m *Manager) Recount() error {
	counts, err := m.db.HostAccountCounts()
	if err != nil {
		return err
	}
	for _, hs := range m.snapshotHosts() {
		hs.mu.Lock()
		if n := counts[hs.rec.Hostname]; n != hs.rec.AccountCount {
			hs.rec.AccountCount = n
			hs.dirty = true
		}
		if max := hs.rec.Limits.MaxAccounts; max == 0 || hs.rec.AccountCount < max {
			hs.accountLimited = false
		}
		hs.mu.Unlock()
	}
	return nil
}

// HostInfo is a host as listHosts and getHostStatus show it.
type HostInfo struct {
	store.Host
	// InFlight is the number of its events submitted and not yet done.
	InFlight int
}

// info is the host as shown: its status is throttled while its reading is
// being delayed or its new accounts are refused, otherwise the stored
// status.
func (hs *hostState) info() HostInfo {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	h := HostInfo{Host: hs.rec, InFlight: hs.cursor.inFlight()}
	if (hs.throttled || hs.accountLimited) && h.Status == store.HostActive {
		h.Status = store.HostThrottled
	}
	return h
}

// Host returns the state of one host (its name normalized as
// ParseHostAddr does), or ErrHostNotFound.
func (m *Manager) Host(hostname string) (HostInfo, error) {
	hs, err := m.known(hostname)
	if err != nil {
		return HostInfo{}, err
	}
	return m.withCount(hs.info()), nil
}

// Hosts returns up to limit hosts with an ID greater than afterID, in ID
// (first-seen) order.
func (m *Manager) Hosts(afterID uint64, limit int) []HostInfo {
	all := m.snapshotHosts()
	out := make([]HostInfo, 0, min(limit, len(all)))
	for _, hs := range all {
		if h := hs.info(); h.ID > afterID {
			out = append(out, h)
		}
	}
	slices.SortFunc(out, func(a, b HostInfo) int { return cmp.Compare(a.ID, b.ID) })
	if len(out) > limit {
		out = out[:limit]
	}
	for i := range out {
		out[i] = m.withCount(out[i])
	}
	return out
}

// accountCount is the host's account count, exact (the store's) unless
// the store cannot say (then the last recount's).
func (m *Manager) accountCount(hs *hostState) int64 {
	if n, err := m.db.HostAccountCount(hs.addr.Hostname); err == nil {
		return n
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return hs.rec.AccountCount
}

// withCount sets the account count of h from the store's count, exact as
// of the last committed change (store.HostAccountCount: the committer moves
// it in the batch that creates, moves or deletes a mirrored account).
func (m *Manager) withCount(h HostInfo) HostInfo {
	if n, err := m.db.HostAccountCount(h.Hostname); err == nil {
		h.AccountCount = n
	}
	return h
}
