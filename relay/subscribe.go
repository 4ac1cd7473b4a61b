package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/reservoir-atproto/reservoir/store"
)

// subscription is the goroutine that follows one host's firehose, and the
// one backfilling it when it is new.
type subscription struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when its goroutines (follow, backfill) end
	kick   chan struct{} // cuts a reconnect wait short (a crawl request)
}

// errFutureCursor: the host answered our cursor with FutureCursor; its seqs
// restarted below it. The host goes idle until the next crawl request.
var errFutureCursor = errors.New("relay: upstream answered FutureCursor")

// upstreamError is an error frame other than FutureCursor.
type upstreamError struct{ name, message string }

func (e *upstreamError) Error() string {
	return fmt.Sprintf("relay: upstream error frame %s: %s", e.name, e.message)
}

func limitOf(eps int64) rate.Limit { return rate.Limit(eps) }

// subscribe starts the host's subscription, unless one runs, the manager is
// stopped, or the host's status is not one that is subscribed.
func (m *Manager) subscribe(hs *hostState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.subscribeLocked(hs)
}

func (m *Manager) subscribeLocked(hs *hostState) {
	if m.stopped {
		return
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.sub != nil || !subscribable(hs.rec.Status) {
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	s := &subscription{cancel: cancel, done: make(chan struct{}), kick: make(chan struct{}, 1)}
	hs.sub = s
	var wg sync.WaitGroup
	wg.Go(func() { m.run(ctx, hs, s) })
	if m.needsBackfill(hs) {
		wg.Go(func() { m.backfill(ctx, hs) })
	}
	go func() { wg.Wait(); close(s.done) }()
}

// unsubscribe stops the host's subscription and waits for it (bounded).
func (m *Manager) unsubscribe(hs *hostState) {
	hs.mu.Lock()
	s := hs.sub
	hs.sub = nil
	hs.throttled = false
	hs.mu.Unlock()
	if s != nil {
		m.waitSubs([]*subscription{s})
	}
}

// kick makes a subscription waiting to reconnect try now, its failures
// forgotten.
func (hs *hostState) kick() {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	hs.rec.Failures = 0
	hs.dirty = true
	if hs.sub != nil {
		select {
		case hs.sub.kick <- struct{}{}:
		default:
		}
	}
}

// run follows the host until ctx ends or the host goes idle: connect, read
// until the connection fails, wait, reconnect. The wait doubles with each
// failed attempt in a row (MinBackoff to MaxBackoff, with jitter); after
// OfflineAfter of them the host is offline and is retried every
// OfflineRetry, and comes back to active by itself with the first
// successful connection.
func (m *Manager) run(ctx context.Context, hs *hostState, s *subscription) {
	defer s.cancel() // ends the backfill too
	log := m.log.With("host", hs.addr.Hostname)
	for {
		err := m.follow(ctx, hs)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errFutureCursor) {
			log.Warn("relay: host answered FutureCursor; idle until the next crawl request")
			m.metrics.disconnects.WithLabelValues("future_cursor").Inc()
			m.setStatus(ctx, hs, store.HostIdle, store.HostActive, store.HostOffline)
			hs.mu.Lock()
			if hs.sub == s {
				hs.sub = nil
			}
			hs.mu.Unlock()
			return
		}
		failures, offline := m.failed(ctx, hs)
		wait := m.backoff(failures)
		if offline {
			wait = m.opts.OfflineRetry
		}
		log.Info("relay: upstream connection ended", "err", err, "failures", failures, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.kick:
			t.Stop()
		case <-t.C:
		}
	}
}

// backoff is the wait after failures attempts in a row: MinBackoff doubled
// per failure, capped at MaxBackoff, times a jitter in [0.5, 1.5).
func (m *Manager) backoff(failures int64) time.Duration {
	d := m.opts.MinBackoff
	for i := int64(1); i < failures && d < m.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, m.opts.MaxBackoff)
	return time.Duration(float64(d) * (0.5 + rand.Float64()))
}

// failed counts a failed attempt (or a connection that ended: the first
// failure after a success) and marks the host offline past OfflineAfter.
func (m *Manager) failed(ctx context.Context, hs *hostState) (failures int64, offline bool) {
	hs.mu.Lock()
	hs.rec.Failures++
	hs.dirty = true
	hs.throttled = false
	failures = hs.rec.Failures
	toOffline := hs.rec.Status == store.HostActive && failures > int64(m.opts.OfflineAfter)
	offline = hs.rec.Status == store.HostOffline || toOffline
	hs.mu.Unlock()
	if toOffline {
		m.log.Warn("relay: host offline", "host", hs.addr.Hostname, "failures", failures)
		m.setStatus(ctx, hs, store.HostOffline, store.HostActive)
	}
	return failures, offline
}

// connected resets the failures of a host whose connection succeeded, and
// brings an offline host back.
func (m *Manager) connected(ctx context.Context, hs *hostState) {
	hs.mu.Lock()
	hs.rec.Failures = 0
	hs.dirty = true
	hs.connectedOnce = true
	wasOffline := hs.rec.Status == store.HostOffline
	hs.mu.Unlock()
	if wasOffline {
		m.log.Info("relay: host back online", "host", hs.addr.Hostname)
		m.setStatus(ctx, hs, store.HostActive, store.HostOffline)
	}
}

// setStatus moves the host to status if its status is one of from (so a
// ban in between is never undone), and stores it.
func (m *Manager) setStatus(ctx context.Context, hs *hostState, status store.HostStatus, from ...store.HostStatus) {
	hs.mu.Lock()
	ok := false
	for _, f := range from {
		ok = ok || hs.rec.Status == f
	}
	if ok {
		hs.rec.Status = status
	}
	hs.mu.Unlock()
	if !ok {
		return
	}
	if err := m.save(context.WithoutCancel(ctx), hs); err != nil {
		m.log.Warn("relay: storing host status", "host", hs.addr.Hostname, "status", status, "err", err)
	}
}

// follow connects to the host's firehose after the last seq submitted and
// hands each frame to the Submitter until the connection fails or ctx ends.
func (m *Manager) follow(ctx context.Context, hs *hostState) error {
	hs.mu.Lock()
	cursor := hs.submitted
	if cursor == store.NoCursor && hs.connectedOnce {
		// A quiet host we were connected to: whatever it sent while we
		// were away is in its log after our last (unknown) position, so
		// ask for its whole window rather than only what comes next.
		cursor = 0
	}
	hs.mu.Unlock()
	dialer := websocket.Dialer{
		NetDialContext:   guardedDialer(m.opts.AllowInsecure, m.opts.CheckTimeout).DialContext,
		HandshakeTimeout: m.opts.CheckTimeout,
		ReadBufferSize:   64 << 10,
	}
	hdr := http.Header{"User-Agent": {"reservoir-relay"}}
	conn, resp, err := dialer.DialContext(ctx, hs.addr.subscribeURL(cursor), hdr)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		m.metrics.connects.WithLabelValues("failed").Inc()
		return fmt.Errorf("relay: dialing %s: %w", hs.addr.Hostname, err)
	}
	m.metrics.connects.WithLabelValues("ok").Inc()
	m.connected(ctx, hs)
	defer conn.Close()
	conn.SetReadLimit(m.opts.MaxFrameBytes)
	idle := 3 * m.opts.PingInterval
	alive := func() { conn.SetReadDeadline(time.Now().Add(idle)) }
	alive()
	conn.SetPongHandler(func(string) error { alive(); return nil })
	conn.SetPingHandler(func(data string) error {
		alive()
		return conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
	})
	stop := make(chan struct{})
	defer close(stop)
	go func() { // closes the connection when ctx ends; pings the host
		t := time.NewTicker(m.opts.PingInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(time.Second))
				conn.Close()
				return
			case <-stop:
				return
			case <-t.C:
				conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(5*time.Second))
			}
		}
	}()
	// Each message is read into a scratch buffer of the connection and
	// copied out at its exact size: the ingest keeps a frame until it is
	// processed, and its queue bounds count frame bytes. (ReadMessage's
	// io.ReadAll grows a slice by doubling, which left up to half of every
	// queued frame's allocation unused, and made garbage on the way: under
	// a full queue, 61 MB of the heap were such slices.)
	var scratch bytes.Buffer
	for {
		typ, r, err := conn.NextReader()
		if err == nil {
			scratch.Reset()
			_, err = scratch.ReadFrom(r)
		}
		if err != nil {
			m.metrics.disconnects.WithLabelValues(disconnectReason(ctx, err)).Inc()
			return fmt.Errorf("relay: reading %s: %w", hs.addr.Hostname, err)
		}
		alive()
		if typ != websocket.BinaryMessage {
			m.metrics.skipped.WithLabelValues("not_binary").Inc()
			continue
		}
		frame := make([]byte, scratch.Len()) // not bytes.Clone: append rounds the capacity up
		copy(frame, scratch.Bytes())
		if scratch.Cap() > maxScratch {
			scratch = bytes.Buffer{} // a rare large frame: do not keep its buffer
		}
		if err := m.handleFrame(ctx, hs, frame); err != nil {
			return err
		}
	}
}

// maxScratch is the largest read buffer a host connection keeps between
// frames.
const maxScratch = 256 << 10

func disconnectReason(ctx context.Context, err error) string {
	var ce *websocket.CloseError
	switch {
	case ctx.Err() != nil:
		return "shutdown"
	case errors.As(err, &ce):
		return "closed_by_host"
	case errors.Is(err, websocket.ErrReadLimit):
		return "frame_too_large"
	}
	return "read_error"
}

// handleFrame routes one upstream frame: error frames end the connection,
// frames without a seq (#info) are logged, frames at or below the last seq
// submitted are skipped, the rest wait for the host's rate limit and go to
// the Submitter.
func (m *Manager) handleFrame(ctx context.Context, hs *hostState, frame []byte) error {
	m.metrics.frames.Inc()
	h, err := readFrameHead(frame)
	if err != nil {
		m.metrics.disconnects.WithLabelValues("malformed_frame").Inc()
		return err
	}
	switch {
	case h.Op == -1 && h.Error == "FutureCursor":
		return errFutureCursor
	case h.Op == -1:
		m.metrics.disconnects.WithLabelValues("error_frame").Inc()
		return &upstreamError{name: h.Error, message: h.Message}
	case h.Op != 1:
		m.metrics.skipped.WithLabelValues("unknown_op").Inc()
		return nil
	case !h.HasSeq:
		m.metrics.skipped.WithLabelValues("no_seq").Inc()
		m.log.Info("relay: upstream frame without seq", "host", hs.addr.Hostname, "type", h.Type)
		return nil
	}
	hs.mu.Lock()
	stale := hs.submitted != store.NoCursor && h.Seq <= hs.submitted
	limiter := hs.limiter
	maxAccounts := hs.rec.Limits.MaxAccounts
	hs.mu.Unlock()
	full := maxAccounts > 0 && m.accountCount(hs) >= maxAccounts
	if stale {
		m.metrics.skipped.WithLabelValues("seq_not_increasing").Inc()
		return nil
	}
	if full && h.DID != "" && m.newAccount(hs, h.DID) {
		m.metrics.skipped.WithLabelValues("account_limit").Inc()
		hs.mu.Lock() // handled: the cursor may pass it
		hs.cursor.add(h.Seq)
		hs.submitted = h.Seq
		if hs.cursor.finish(h.Seq) {
			hs.rec.Cursor = hs.cursor.durable
			hs.dirty = true
		}
		hs.mu.Unlock()
		return nil
	}
	if err := m.throttle(ctx, hs, limiter); err != nil {
		return err
	}
	hs.mu.Lock()
	prev := hs.submitted
	hs.cursor.add(h.Seq)
	hs.submitted = h.Seq
	hs.rec.LastEventAt = m.opts.Now().UTC()
	hs.dirty = true
	hs.mu.Unlock()
	if err := m.opts.Submitter.Submit(ctx, hs.addr.Hostname, h.Seq, frame); err != nil {
		hs.mu.Lock()
		hs.cursor.drop(h.Seq)
		hs.submitted = prev // asked for again after the reconnect
		hs.mu.Unlock()
		return fmt.Errorf("relay: submitting %s seq %d: %w", hs.addr.Hostname, h.Seq, err)
	}
	m.metrics.submitted.Inc()
	return nil
}

// newAccount reports whether did is an account the store does not hold,
// for a host at its account limit: its events are skipped (as the
// reference relay does), and the host shows as throttled until its count
// is under the limit again. The account is picked up by its next commit
// once the limit allows (the ingest fetches a repository it meets
// mid-history whole).
func (m *Manager) newAccount(hs *hostState, did string) bool {
	_, err := m.db.Account(did)
	if !errors.Is(err, store.ErrNotFound) {
		return false // known, or the store could not say: let the ingest decide
	}
	hs.mu.Lock()
	hs.accountLimited = true
	hs.mu.Unlock()
	return true
}

// throttle waits for the host's rate limiter; while it waits the host shows
// as throttled. Nothing is dropped.
func (m *Manager) throttle(ctx context.Context, hs *hostState, l *rate.Limiter) error {
	r := l.Reserve()
	delay := r.Delay()
	hs.mu.Lock()
	hs.throttled = delay > 0
	hs.mu.Unlock()
	if delay <= 0 {
		return nil
	}
	m.metrics.throttled.Add(delay.Seconds())
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		r.Cancel()
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
