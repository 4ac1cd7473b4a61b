package events

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/reservoir-atproto/reservoir/events/wire"
)

// Why a subscriber's connection ended: the values of the reason label of
// firehose_disconnects_total.
const (
	ReasonClientClosed = "client_closed" // the client sent a close frame
	ReasonClientGone   = "client_gone"   // the socket failed or closed without one
	ReasonIdle         = "idle_timeout"  // nothing read (not even a pong) for IdleTimeout
	ReasonWriteTimeout = "write_timeout" // the socket accepted nothing for WriteTimeout: ConsumerTooSlow
	ReasonWriteError   = "write_error"   // a write failed otherwise
	ReasonExpired      = "expired"       // the position fell out of the window: ConsumerTooSlow
	ReasonFutureCursor = "future_cursor" // FutureCursor at connection time
	ReasonShutdown     = "shutdown"      // the server is shutting down
	ReasonInternal     = "internal"      // reading the log failed
)

// Websocket close codes (RFC 6455 §7.4.1).
const (
	closeNormal    = 1000
	closeGoingAway = 1001
	closePolicy    = 1008
	closeInternal  = 1011
)

// finalGrace bounds the last frames sent to a subscriber being dropped (an
// error frame, the close frame).
const finalGrace = 5 * time.Second

// upgrader does the handshake and reads client frames; frames are written
// by wsConn, never through gorilla's writers.
var upgrader = websocket.Upgrader{
	// Clients send next to nothing (pongs, a close): a small read buffer
	// rather than the 4 KiB one net/http hijacks. A write pool is set only
	// so gorilla allocates no write buffer of its own; it is never used.
	ReadBufferSize:  512,
	WriteBufferPool: &sync.Pool{},
	CheckOrigin:     func(*http.Request) bool { return true }, // a public stream
	Error:           handshakeError,
}

// handshakeError answers a failed websocket handshake with the XRPC error
// shape.
func handshakeError(w http.ResponseWriter, _ *http.Request, status int, reason error) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": "InvalidRequest", "message": reason.Error()})
}

// ServeWebSocket upgrades the request to a websocket and streams the log
// from cursor until the client leaves, the subscriber is dropped, or the
// firehose closes. It returns an error only before the upgrade
// (ErrTooManySubscribers, ErrClosed, a store failure), for the caller to
// answer. After the upgrade it returns at once: the subscriber runs on its
// own goroutines, so the request's buffers and the handler's stack are let
// go, and its end is counted in the metrics by reason. A FutureCursor is
// sent as an error frame after the upgrade, then the connection is closed
// with code 1008.
func (f *Firehose) ServeWebSocket(w http.ResponseWriter, r *http.Request, c Cursor) error {
	s := &subscriber{f: f, done: make(chan struct{}), ctrl: make(chan struct{}, 1)}
	if err := f.acquire(s); err != nil {
		return err
	}
	running := false
	defer func() {
		if !running {
			f.release(s)
		}
	}()
	st, openErr := f.Open(c)
	if openErr != nil && !errors.Is(openErr, ErrFutureCursor) {
		return openErr
	}
	hj := &hijacker{ResponseWriter: w, f: f, s: s}
	ws, err := upgrader.Upgrade(hj, r, nil)
	if err != nil {
		f.log.Debug("subscribeRepos: handshake failed", "err", err)
		return nil // answered by handshakeError, or the connection is gone
	}
	s.ws = ws
	if openErr != nil {
		s.conn.finish(closePolicy, "FutureCursor", wire.ErrorFrame("FutureCursor", "Cursor in the future."))
		f.metrics.disconnected(ReasonFutureCursor)
		return nil
	}
	s.stream = st
	running = true
	go func() {
		defer f.release(s)
		reason := s.run()
		st.setBehind(false)
		f.metrics.disconnected(reason)
		f.log.Debug("subscribeRepos: subscriber left", "reason", reason, "cursor", c.String(), "position", st.Position())
	}()
	return nil
}

// hijacker hands gorilla a connection whose writes go through wsConn.
type hijacker struct {
	http.ResponseWriter
	f *Firehose
	s *subscriber
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	c := &wsConn{Conn: nc, timeout: h.f.opts.WriteTimeout, grace: h.f.opts.finalGrace}
	h.f.mu.Lock()
	h.s.conn = c
	h.f.mu.Unlock()
	return c, brw, nil
}

// subscriber is one websocket connection: a reader goroutine that discards
// what the client sends (answering pings, noticing close and silence), and
// a writer goroutine that pulls frames from its stream and writes them.
type subscriber struct {
	f      *Firehose
	ws     *websocket.Conn // reading only
	conn   *wsConn         // all writes
	stream *Stream

	done    chan struct{} // closed when the reader ends
	readErr error         // why it ended; read after done
	ctrl    chan struct{} // a pong is due
	pongMu  sync.Mutex
	pong    []byte
}

// run serves the subscriber until it ends and returns why.
func (s *subscriber) run() string {
	go s.readLoop()
	reason := s.writeLoop()
	s.conn.Close()
	<-s.done
	return reason
}

func (s *subscriber) readLoop() {
	defer close(s.done)
	idle := s.f.opts.IdleTimeout
	extend := func() { _ = s.ws.SetReadDeadline(time.Now().Add(idle)) }
	extend()
	s.ws.SetPongHandler(func(string) error { extend(); return nil })
	s.ws.SetPingHandler(func(data string) error {
		extend()
		s.pongMu.Lock()
		s.pong = append(s.pong[:0], data...)
		s.pongMu.Unlock()
		select {
		case s.ctrl <- struct{}{}:
		default:
		}
		return nil
	})
	s.ws.SetCloseHandler(func(int, string) error { return nil }) // the writer answers
	for {
		// Data messages are ignored (sync-spec §3.1): NextReader skips
		// what was not read of the previous one, without buffering it.
		if _, _, err := s.ws.NextReader(); err != nil {
			s.readErr = err
			return
		}
		extend()
	}
}

func (s *subscriber) writeLoop() string {
	f := s.f
	ping := time.NewTicker(f.opts.PingInterval)
	defer ping.Stop()
	for {
		frames, wake, err := s.stream.Poll()
		if err != nil {
			if errors.Is(err, ErrConsumerTooSlow) {
				s.conn.finish(closePolicy, "ConsumerTooSlow", wire.ErrorFrame("ConsumerTooSlow", "Stream consumer too slow: its position left the replay window"))
				return ReasonExpired
			}
			f.log.Error("subscribeRepos: reading the log", "err", err)
			s.conn.finish(closeInternal, "internal error")
			return ReasonInternal
		}
		if len(frames) > 0 {
			if err := s.conn.writeFrames(frames); err != nil {
				return s.writeFailed(err)
			}
			f.metrics.sent(frames, s.stream.Behind(), f.opts.Log.LastSeq()-s.stream.Position())
			// More may be ready: poll again, but let a due ping, a pong,
			// the client's leaving or shutdown in first (select picks among
			// ready cases at random).
			wake = closedChan
		}
		select {
		case <-wake:
		case <-ping.C:
			if err := s.conn.writeControl(opPing, nil); err != nil {
				return s.writeFailed(err)
			}
		case <-s.ctrl:
			s.pongMu.Lock()
			data := append([]byte(nil), s.pong...)
			s.pongMu.Unlock()
			if err := s.conn.writeControl(opPong, data); err != nil {
				return s.writeFailed(err)
			}
		case <-s.done:
			return s.readEnded()
		case <-f.closing:
			s.conn.finish(closeGoingAway, "server shutting down")
			return ReasonShutdown
		}
	}
}

// closedChan is always ready.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// readEnded answers the client's close, if it sent one.
func (s *subscriber) readEnded() string {
	var ce *websocket.CloseError
	if errors.As(s.readErr, &ce) && ce.Code != websocket.CloseAbnormalClosure { // 1006: gorilla's name for EOF
		s.conn.finish(closeNormal, "")
		return ReasonClientClosed
	}
	var ne net.Error
	if errors.As(s.readErr, &ne) && ne.Timeout() {
		s.conn.finish(closePolicy, "idle timeout")
		return ReasonIdle
	}
	return ReasonClientGone
}

// writeFailed classifies a failed write. A socket that accepted nothing
// for the write timeout gets a last chance to take the rest of the frame
// it was sent, a ConsumerTooSlow error frame and the close.
func (s *subscriber) writeFailed(err error) string {
	select {
	case <-s.done:
		return s.readEnded()
	default:
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		s.conn.finish(closePolicy, "ConsumerTooSlow", wire.ErrorFrame("ConsumerTooSlow", "Stream consumer too slow: the socket accepted nothing for too long"))
		return ReasonWriteTimeout
	}
	return ReasonWriteError
}

// Websocket opcodes (RFC 6455 §5.2).
const (
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xa
)

// appendFrameHeader writes the header of an unmasked, final frame: the
// server side of RFC 6455 §5.2.
func appendFrameHeader(b []byte, op byte, n int) []byte {
	b = append(b, 0x80|op)
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
	}
}

// scratch is what a batch write needs besides the frames: their headers
// and the list of slices handed to writev. Pooled, so a connection holds
// none between batches.
type scratch struct {
	hdrs []byte
	bufs net.Buffers
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// wsConn is a subscriber's socket. Every write goes through it, under one
// lock, as whole websocket frames: the writer loop's batches (all frames of
// a batch in one writev, straight from the shared frame bytes: nothing is
// copied into a per-connection buffer), its pings and pongs, and gorilla's
// own few writes (the handshake response, the close frame it sends on a
// protocol error), which arrive through Write. It sets the write deadline
// itself before each write.
type wsConn struct {
	net.Conn
	timeout time.Duration
	grace   time.Duration // finalGrace, or the Options' override

	mu      sync.Mutex
	pending []byte // what a failed write left unwritten (sent first by finish)
	broken  error  // the write that failed; nothing more is sent but by finish
}

// Write sends p (whole frames, or the handshake response) at once.
func (c *wsConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return 0, c.broken
	}
	if err := c.writev(net.Buffers{p}, c.grace); err != nil {
		return 0, err
	}
	return len(p), nil
}

// SetWriteDeadline is ignored: deadlines are set by writev, under the lock.
func (c *wsConn) SetWriteDeadline(time.Time) error { return nil }

// writeFrames writes each frame as one binary message, all in one writev.
func (c *wsConn) writeFrames(frames []Frame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return c.broken
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	if need := 10 * len(frames); cap(sc.hdrs) < need {
		sc.hdrs = make([]byte, 0, need) // the headers' backing array must not move
	}
	hdrs, bufs := sc.hdrs[:0], sc.bufs[:0]
	for _, fr := range frames {
		off := len(hdrs)
		hdrs = appendFrameHeader(hdrs, opBinary, len(fr.Data))
		bufs = append(bufs, hdrs[off:], fr.Data)
	}
	sc.bufs = bufs
	err := c.writev(bufs, c.timeout)
	clear(sc.bufs[:cap(sc.bufs)]) // drop the references to frames
	return err
}

// writeControl writes a ping or pong.
func (c *wsConn) writeControl(op byte, payload []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return c.broken
	}
	return c.writev(net.Buffers{append(appendFrameHeader(nil, op, len(payload)), payload...)}, c.timeout)
}

// finish sends the last frames (frames, then a close frame with code and
// reason) within finalGrace, best effort, and closes the socket. After a
// write timeout the unwritten rest of the interrupted write goes first, so
// the client still reads whole frames.
func (c *wsConn) finish(code int, reason string, frames ...[]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ne net.Error
	if c.broken == nil || (errors.As(c.broken, &ne) && ne.Timeout()) {
		c.broken = nil
		last := c.pending
		for _, fr := range frames {
			last = appendFrameHeader(last, opBinary, len(fr))
			last = append(last, fr...)
		}
		if len(reason) > 123 {
			reason = reason[:123]
		}
		payload := binary.BigEndian.AppendUint16(nil, uint16(code))
		payload = append(payload, reason...)
		last = appendFrameHeader(last, opClose, len(payload))
		last = append(last, payload...)
		_ = c.writev(net.Buffers{last}, c.grace)
		c.broken = net.ErrClosed
	}
	c.pending = nil
	c.Conn.Close()
}

// writev writes bufs. It fails when the socket accepts nothing for
// timeout: a deadline that passes after some progress (a client reading,
// slowly) is moved on. On failure it keeps the unwritten bytes in pending
// and breaks the connection.
func (c *wsConn) writev(bufs net.Buffers, timeout time.Duration) error {
	for {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(timeout))
		n, err := bufs.WriteTo(c.Conn)
		if err == nil {
			return nil
		}
		var ne net.Error
		if n > 0 && len(bufs) > 0 && errors.As(err, &ne) && ne.Timeout() {
			continue
		}
		c.pending = nil
		for _, b := range bufs { // WriteTo left only what it did not write
			c.pending = append(c.pending, b...)
		}
		c.broken = err
		return err
	}
}
