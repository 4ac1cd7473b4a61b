package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/gorilla/websocket"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/car"
	"github.com/reservoir-atproto/reservoir/repo"
)

// Defaults of the Subscriber fields left zero.
const (
	DefaultMaxFrameBytes   = 5<<20 + 64<<10 // spec:sync's 5 MB frame limit, with slack
	DefaultIdleTimeout     = 90 * time.Second
	DefaultPingInterval    = 30 * time.Second
	DefaultMaxTrackedRepos = 100_000
	DefaultReconnectMin    = time.Second
	DefaultReconnectMax    = time.Minute
)

// Handler receives the events of a Subscriber, one at a time, in stream
// order. Returning an error stops Run, which returns it; the event is then
// not counted as delivered (LastSeq stays at the previous event).
type Handler func(ctx context.Context, ev Event) error

// Subscriber follows a service's com.atproto.sync.subscribeRepos stream:
// it connects, decodes every frame strictly, optionally verifies commits,
// hands events to a Handler, and reconnects with backoff after network
// failures, resuming after the last seq it delivered. Set the fields, then
// call Run; Stats and LastSeq may be called concurrently with Run.
type Subscriber struct {
	// URL is the service root: ws://, wss://, http:// or https:// (see
	// ServiceURL). Required.
	URL string
	// Cursor is where the first connection starts: nil for live (no
	// backfill), 0 for the whole replay window, N for the events after seq
	// N. Reconnections resume after the last delivered seq instead.
	Cursor *int64
	// Keys, if set, verifies every #commit (signature and sync-1.1
	// inversion, with chain checks against the last state seen of the
	// repository) and #sync (signature). Results are in the events'
	// Verified and VerifyErr fields; events are delivered either way.
	// identity.Resolver is a KeySource, and it is purged on #identity.
	Keys KeySource
	// Lenient accepts commits without prevData (pre-sync-1.1 producers);
	// the inversion check is then skipped.
	Lenient bool
	// SkipRecords leaves RepoOp.Record nil (no parsing of the blocks when
	// not verifying).
	SkipRecords bool
	// MaxTrackedRepos bounds the per-repository states verification keeps
	// (least recently used out). Default DefaultMaxTrackedRepos.
	MaxTrackedRepos int
	// MaxFrameBytes bounds one websocket message. Default
	// DefaultMaxFrameBytes.
	MaxFrameBytes int64
	// IdleTimeout drops a connection that delivers nothing, not even a
	// pong to the pings sent every PingInterval. Defaults
	// DefaultIdleTimeout and DefaultPingInterval.
	IdleTimeout, PingInterval time.Duration
	// ReconnectMin and ReconnectMax bound the exponential backoff between
	// connection attempts. Defaults DefaultReconnectMin and
	// DefaultReconnectMax.
	ReconnectMin, ReconnectMax time.Duration
	// MaxFailures ends Run after this many connection attempts in a row
	// that failed (0: never give up). An attempt that delivered an event
	// resets the count.
	MaxFailures int
	// Dialer makes the websocket connections. Default: a dialer with a 30s
	// handshake timeout and the proxy from the environment.
	Dialer *websocket.Dialer
	// UserAgent is sent with each connection. Default DefaultUserAgent.
	UserAgent string
	// Logger receives a line per connection and reconnection. Default:
	// discard.
	Logger *slog.Logger

	mu      sync.Mutex
	stats   SubscriberStats
	lastSeq int64
	haveSeq bool
	states  *repoStates
}

// SubscriberStats counts what a Subscriber did.
type SubscriberStats struct {
	Connects    int64 // successful handshakes
	Failures    int64 // connections that failed or broke
	Frames      int64
	Bytes       int64
	Events      int64 // delivered events with a seq
	Commits     int64
	Syncs       int64
	Identities  int64
	Accounts    int64
	Infos       int64
	ErrorFrames int64
	// Unknown frames (an op or type this client does not know) are
	// skipped, as the spec asks.
	Unknown int64
	// Duplicates are events whose seq is not above the last delivered one;
	// they are skipped.
	Duplicates     int64
	VerifyFailures int64
	TrackedRepos   int
	// LastTime is the time field of the last delivered event.
	LastTime string
}

// Stats returns a snapshot of the counters.
func (s *Subscriber) Stats() SubscriberStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// LastSeq returns the seq of the last event delivered (handled without
// error), and whether there is one.
func (s *Subscriber) LastSeq() (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastSeq, s.haveSeq
}

func (s *Subscriber) count(f func(st *SubscriberStats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// errFatal marks session errors that end Run instead of a reconnection.
type errFatal struct{ err error }

func (e *errFatal) Error() string { return e.err.Error() }
func (e *errFatal) Unwrap() error { return e.err }

// Run follows the stream until ctx ends (it then returns ctx's error), the
// handler returns an error, the server sends FutureCursor or InvalidRequest
// (an *ErrorFrame matching ErrFutureCursor or ErrInvalidRequest; the
// reference PDS sends the latter for a bad cursor), a frame is malformed
// (ErrMalformedFrame), the
// handshake is refused with a status that retrying cannot fix (an
// *APIError), or MaxFailures attempts in a row fail. Network failures,
// ConsumerTooSlow and other error frames lead to a reconnection after a
// backoff, resuming after the last delivered seq. Error frames and #info
// messages are also handed to the handler. Run must not be called
// concurrently with itself; a later call resumes where the previous ended.
func (s *Subscriber) Run(ctx context.Context, h Handler) error {
	base, err := ServiceURL(s.URL)
	if err != nil {
		return err
	}
	wsBase := "ws" + strings.TrimPrefix(base, "http")
	s.mu.Lock()
	if s.states == nil {
		s.states = newRepoStates(orDefaultInt(s.MaxTrackedRepos, DefaultMaxTrackedRepos))
	}
	s.mu.Unlock()
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	failures := 0
	for {
		progressed, err := s.session(ctx, wsBase, h, log)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var fatal *errFatal
		if errors.As(err, &fatal) {
			return fatal.err
		}
		s.count(func(st *SubscriberStats) { st.Failures++ })
		if progressed {
			failures = 0
		}
		failures++
		if s.MaxFailures > 0 && failures >= s.MaxFailures {
			return fmt.Errorf("client: subscribeRepos: giving up after %d failed attempts: %w", failures, err)
		}
		wait := reconnectBackoff(failures, orDefault(s.ReconnectMin, DefaultReconnectMin), orDefault(s.ReconnectMax, DefaultReconnectMax))
		var ae *APIError
		if errors.As(err, &ae) && ae.RetryAfter > wait {
			wait = min(ae.RetryAfter, DefaultMaxRetryWait)
		}
		log.Warn("firehose connection ended; reconnecting", "err", err, "in", wait)
		if err := sleepCtx(ctx, wait); err != nil {
			return err
		}
	}
}

func orDefaultInt(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// reconnectBackoff is min·2^(failures-1), capped, with equal jitter.
func reconnectBackoff(failures int, lo, hi time.Duration) time.Duration {
	c := &Client{MinBackoff: lo, MaxBackoff: hi}
	return c.backoff(max(failures-1, 0))
}

// streamURL is the subscribeRepos URL with the resume cursor.
func (s *Subscriber) streamURL(wsBase string) string {
	u := wsBase + "/xrpc/" + NSIDSubscribeRepos
	seq, have := s.LastSeq()
	switch {
	case have:
		u += "?cursor=" + strconv.FormatInt(seq, 10)
	case s.Cursor != nil:
		u += "?cursor=" + strconv.FormatInt(*s.Cursor, 10)
	}
	return u
}

// session runs one connection. progressed reports whether it delivered
// at least one event with a seq: a server that only sends an error frame
// does not reset the backoff.
func (s *Subscriber) session(ctx context.Context, wsBase string, h Handler, log *slog.Logger) (progressed bool, err error) {
	target := s.streamURL(wsBase)
	dialer := s.Dialer
	if dialer == nil {
		dialer = &websocket.Dialer{HandshakeTimeout: 30 * time.Second, Proxy: http.ProxyFromEnvironment}
	}
	hdr := http.Header{"User-Agent": {cmpOr(s.UserAgent, DefaultUserAgent)}}
	conn, resp, err := dialer.DialContext(ctx, target, hdr)
	if err != nil {
		if resp != nil {
			return false, handshakeError(resp, err)
		}
		return false, fmt.Errorf("client: subscribeRepos: connecting to %s: %w", redactURL(target), err)
	}
	defer conn.Close()
	s.count(func(st *SubscriberStats) { st.Connects++ })
	log.Info("firehose connected", "url", redactURL(target))

	idle := orDefault(s.IdleTimeout, DefaultIdleTimeout)
	conn.SetReadLimit(orDefault(s.MaxFrameBytes, DefaultMaxFrameBytes))
	extend := func() { _ = conn.SetReadDeadline(time.Now().Add(idle)) }
	conn.SetPongHandler(func(string) error { extend(); return nil })
	conn.SetPingHandler(func(data string) error {
		extend()
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	done := make(chan struct{})
	defer close(done)
	go s.keepAlive(ctx, conn, done)

	for {
		extend()
		typ, data, err := conn.ReadMessage()
		if err != nil {
			return progressed, fmt.Errorf("client: subscribeRepos: %w", err)
		}
		s.count(func(st *SubscriberStats) { st.Frames++; st.Bytes += int64(len(data)) })
		if typ != websocket.BinaryMessage {
			s.count(func(st *SubscriberStats) { st.Unknown++ })
			continue
		}
		ev, err := DecodeFrame(data)
		if err != nil {
			return progressed, &errFatal{err}
		}
		if err := s.deliver(ctx, ev, h); err != nil {
			return progressed, err
		}
		progressed = progressed || Seq(ev) > 0
	}
}

// keepAlive pings the server every PingInterval and closes the connection
// when ctx ends, which unblocks the reader.
func (s *Subscriber) keepAlive(ctx context.Context, conn *websocket.Conn, done chan struct{}) {
	t := time.NewTicker(orDefault(s.PingInterval, DefaultPingInterval))
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			conn.Close()
			return
		case <-t.C:
			_ = conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(5*time.Second))
		}
	}
}

// deliver handles one decoded frame: skips, verifies, calls the handler.
// Its errors are fatal, except those of error frames other than
// FutureCursor, which end the session for a reconnection.
func (s *Subscriber) deliver(ctx context.Context, ev Event, h Handler) error {
	switch e := ev.(type) {
	case *Unknown:
		s.count(func(st *SubscriberStats) { st.Unknown++ })
		return nil
	case *ErrorFrame:
		s.count(func(st *SubscriberStats) { st.ErrorFrames++ })
		if err := h(ctx, e); err != nil {
			return &errFatal{err}
		}
		if errors.Is(e, ErrFutureCursor) || errors.Is(e, ErrInvalidRequest) {
			return &errFatal{e} // asking again with the same cursor cannot help
		}
		return e
	case *Info:
		s.count(func(st *SubscriberStats) { st.Infos++ })
		if err := h(ctx, e); err != nil {
			return &errFatal{err}
		}
		return nil
	}
	seq := Seq(ev)
	if last, have := s.LastSeq(); have && seq <= last {
		s.count(func(st *SubscriberStats) { st.Duplicates++ })
		return nil
	}
	var evTime string
	switch e := ev.(type) {
	case *Commit:
		s.prepareCommit(ctx, e)
		evTime = e.Time
	case *Sync:
		s.prepareSync(ctx, e)
		evTime = e.Time
	case *Identity:
		if p, ok := s.Keys.(purger); ok {
			p.Purge(e.DID)
		}
		evTime = e.Time
	case *Account:
		if e.Status == "deleted" {
			s.states.remove(e.DID)
		}
		evTime = e.Time
	}
	if err := ctx.Err(); err != nil {
		// Stopped while preparing: a key lookup cut short is no verdict.
		return &errFatal{err}
	}
	if err := h(ctx, ev); err != nil {
		return &errFatal{err}
	}
	s.mu.Lock()
	s.lastSeq, s.haveSeq = seq, true
	st := &s.stats
	st.Events++
	st.LastTime = evTime
	st.TrackedRepos = s.states.len()
	switch ev.(type) {
	case *Commit:
		st.Commits++
	case *Sync:
		st.Syncs++
	case *Identity:
		st.Identities++
	case *Account:
		st.Accounts++
	}
	s.mu.Unlock()
	return nil
}

// prepareCommit verifies the commit (when Keys is set) and attaches the
// records its blocks carry.
func (s *Subscriber) prepareCommit(ctx context.Context, e *Commit) {
	var blocks map[cid.Cid][]byte
	if s.Keys != nil {
		vc, err := s.verifyCommit(ctx, e)
		if err != nil {
			e.VerifyErr = err
			s.count(func(st *SubscriberStats) { st.VerifyFailures++ })
		} else {
			e.Verified = true
			blocks = vc.Blocks
		}
	}
	if s.SkipRecords {
		return
	}
	if blocks == nil {
		_, parsed, err := car.ParseBytes(e.Blocks, &car.Options{MaxTotal: int64(len(e.Blocks))})
		if err != nil {
			if e.VerifyErr == nil {
				e.VerifyErr = fmt.Errorf("client: #commit blocks: %w", err)
			}
			return
		}
		blocks = parsed
	}
	for i := range e.Ops {
		if op := &e.Ops[i]; op.CID.Defined() {
			op.Record = blocks[op.CID]
		}
	}
}

func commitMessage(e *Commit) *repo.CommitMessage {
	ops := make([]repo.Op, len(e.Ops))
	for i, op := range e.Ops {
		ops[i] = repo.Op{Action: repo.Action(op.Action), Path: op.Path, CID: op.CID, Prev: op.Prev}
	}
	return &repo.CommitMessage{
		Repo: string(e.Repo), Rev: string(e.Rev), Since: e.Since, Commit: e.CommitCID, PrevData: e.PrevData,
		Blocks: e.Blocks, Ops: ops, TooBig: e.TooBig, Rebase: e.Rebase,
	}
}

// verifyCommit runs the sync-1.1 checks against the repository's last
// known state, with the cached key and, if the signature fails, once more
// with a refreshed key. A chain break (since or prevData not matching what
// was seen) is reported, and the commit, if valid on its own, becomes the
// new state: the repository was desynchronized and continues from here.
func (s *Subscriber) verifyCommit(ctx context.Context, e *Commit) (*repo.VerifiedCommit, error) {
	msg := commitMessage(e)
	var prev *repo.RepoState
	if st, ok := s.states.get(e.Repo); ok {
		prev = &st
	}
	verify := func(key atcrypto.PublicKey, prev *repo.RepoState) (*repo.VerifiedCommit, error) {
		return repo.VerifyCommitMessage(msg, repo.VerifyOptions{Key: key, Prev: prev, Lenient: s.Lenient})
	}
	key, err := signingKey(ctx, s.Keys, e.Repo, false)
	if err != nil {
		return nil, err
	}
	vc, err := verify(key, prev)
	if errors.Is(repo.FailedCheck(err), repo.ErrSignature) {
		if key, err = signingKey(ctx, s.Keys, e.Repo, true); err != nil {
			return nil, err
		}
		vc, err = verify(key, prev)
	}
	if err == nil {
		s.states.put(e.Repo, vc.State())
		return vc, nil
	}
	switch repo.FailedCheck(err) {
	case repo.ErrChainBreak, repo.ErrPrevDataMismatch:
		if alone, aerr := verify(key, nil); aerr == nil {
			s.states.put(e.Repo, alone.State())
		}
	}
	return nil, err
}

// prepareSync reads the commit's CID and data from the #sync's blocks,
// checks its signature (when Keys is set) and moves the repository's state
// to it when its rev is newer.
func (s *Subscriber) prepareSync(ctx context.Context, e *Sync) {
	if s.Keys == nil {
		roots, blocks, err := car.ParseBytes(e.Blocks, &car.Options{MaxTotal: int64(len(e.Blocks))})
		if err != nil || len(roots) == 0 {
			e.VerifyErr = fmt.Errorf("client: #sync blocks: %w", cmpErr(err, errors.New("no root")))
			return
		}
		e.CommitCID = roots[0]
		if commit, err := repo.DecodeCommit(blocks[roots[0]]); err == nil {
			e.Data = commit.Data
		}
		return
	}
	msg := &repo.SyncMessage{DID: string(e.DID), Rev: string(e.Rev), Blocks: e.Blocks}
	key, err := signingKey(ctx, s.Keys, e.DID, false)
	var commit *repo.Commit
	var cc cid.Cid
	if err == nil {
		commit, cc, err = repo.VerifySyncMessage(msg, key)
		if errors.Is(err, repo.ErrSignature) {
			if key, err = signingKey(ctx, s.Keys, e.DID, true); err == nil {
				commit, cc, err = repo.VerifySyncMessage(msg, key)
			}
		}
	}
	if err != nil {
		e.VerifyErr = err
		s.count(func(st *SubscriberStats) { st.VerifyFailures++ })
		return
	}
	e.Verified, e.CommitCID, e.Data = true, cc, commit.Data
	if st, ok := s.states.get(e.DID); !ok || commit.Rev > st.Rev {
		s.states.put(e.DID, repo.RepoState{Rev: commit.Rev, Data: commit.Data})
	}
}

// handshakeError turns a refused websocket handshake into an *APIError;
// statuses that retrying cannot fix (4xx but 429) are fatal.
func handshakeError(resp *http.Response, err error) error {
	e := &APIError{Method: NSIDSubscribeRepos, Status: resp.StatusCode, Name: statusName(resp.StatusCode)}
	if resp.Body != nil {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		var body struct{ Error, Message string }
		if json.Unmarshal(data, &body) == nil && body.Error != "" {
			e.Name, e.Message = body.Error, body.Message
		}
	}
	if e.Message == "" {
		e.Message = err.Error()
	}
	e.RetryAfter = serverWait(resp.Header, resp.StatusCode, time.Now())
	if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusTooManyRequests {
		return &errFatal{e}
	}
	return e
}

// redactURL drops userinfo from a URL for logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	u.User = nil
	return u.String()
}

func cmpErr(err, def error) error {
	if err != nil {
		return err
	}
	return def
}
