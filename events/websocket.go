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
	// No ReadBufferSize: the connection reuses the 4 KiB reader net/http
	// hijacks. A write pool is set only so gorilla allocates no write
	// buffer of its own; it is never used.
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
// answer; afterwards it reports nothing: the connection's end is counted in
// the metrics by reason. A FutureCursor is sent as an error frame after the
// upgrade, then the connection is closed with code 1008.
func (f *Firehose) ServeWebSocket(w http.ResponseWriter, r *http.Request, c Cursor) error {
	s := &subscriber{f: f, done: make(chan struct{}), ctrl: make(chan struct{}, 1)}
	if err := f.acquire(s); err != nil {
		return err
	}
	defer f.release(s)
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
	var reason string
	if openErr != nil {
		s.conn.finish(closePolicy, "FutureCursor", ErrorFrame("FutureCursor", "Cursor in the future."))
		reason = ReasonFutureCursor
	} else {
		s.stream = st
		reason = s.run()
		st.setBehind(false)
	}
	f.metrics.disconnected(reason)
	f.log.Debug("subscribeRepos: subscriber left", "reason", reason, "cursor", c.String())
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
	c := &wsConn{Conn: nc, timeout: h.f.opts.WriteTimeout}
	h.f.mu.Lock()
	h.s.conn = c
	h.f.mu.Unlock()
	return c, brw, nil
}

// subscriber is one websocket connection: a reader goroutine that discards
// what the client sends (answering pings, noticing close and silence), and
// the writer loop, on the handler's goroutine, that pulls frames from its
// stream and writes them.
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
				s.conn.finish(closePolicy, "ConsumerTooSlow", ErrorFrame("ConsumerTooSlow", "Stream consumer too slow: its position left the replay window"))
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
		s.conn.finish(closePolicy, "ConsumerTooSlow", ErrorFrame("ConsumerTooSlow", "Stream consumer too slow: the socket accepted nothing for too long"))
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

// wsBufSize is the size of a connection's write buffer, borrowed from a
// pool while it holds bytes and returned when they are written: an idle or
// live subscriber holds none between batches.
const wsBufSize = 32 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, wsBufSize); return &b }}

// wsConn is a subscriber's socket. Every write goes through it, under one
// lock, as whole websocket frames: the writer loop's batches (many frames,
// one syscall), and gorilla's own few writes (the handshake response, the
// close frame it sends on a protocol error), which arrive through Write.
// It sets the write deadline itself before each flush.
type wsConn struct {
	net.Conn
	timeout time.Duration

	mu     sync.Mutex
	buf    []byte // bytes not yet written; nil when none
	broken error  // the write that failed; nothing more is sent but finish
}

// Write sends p (whole frames, or the handshake response) at once.
func (c *wsConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return 0, c.broken
	}
	c.append(p)
	if err := c.flush(finalGrace); err != nil {
		return 0, err
	}
	return len(p), nil
}

// SetWriteDeadline is ignored: deadlines are set by flush, under the lock.
func (c *wsConn) SetWriteDeadline(time.Time) error { return nil }

// writeFrames writes each frame as one binary message, in as few syscalls
// as the buffer allows.
func (c *wsConn) writeFrames(frames []Frame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return c.broken
	}
	var hdr [10]byte
	for _, fr := range frames {
		h := appendFrameHeader(hdr[:0], opBinary, len(fr.Data))
		if len(c.buf)+len(h)+len(fr.Data) > wsBufSize {
			if err := c.flush(c.timeout); err != nil {
				return err
			}
			if len(h)+len(fr.Data) > wsBufSize {
				if err := c.writeDirect(h, fr.Data); err != nil {
					return err
				}
				continue
			}
		}
		c.append(h)
		c.append(fr.Data)
	}
	return c.flush(c.timeout)
}

// writeControl writes a ping or pong.
func (c *wsConn) writeControl(op byte, payload []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken != nil {
		return c.broken
	}
	c.append(appendFrameHeader(nil, op, len(payload)))
	c.append(payload)
	return c.flush(c.timeout)
}

// finish sends the last frames (frames, then a close frame with code and
// reason) within finalGrace, best effort, and closes the socket. After a
// write timeout the unwritten rest of the interrupted batch goes first, so
// the client still reads whole frames.
func (c *wsConn) finish(code int, reason string, frames ...[]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ne net.Error
	if c.broken == nil || (errors.As(c.broken, &ne) && ne.Timeout()) {
		c.broken = nil
		for _, fr := range frames {
			c.append(appendFrameHeader(nil, opBinary, len(fr)))
			c.append(fr)
		}
		if len(reason) > 123 {
			reason = reason[:123]
		}
		payload := binary.BigEndian.AppendUint16(nil, uint16(code))
		payload = append(payload, reason...)
		c.append(appendFrameHeader(nil, opClose, len(payload)))
		c.append(payload)
		_ = c.flush(finalGrace)
		c.broken = net.ErrClosed
	}
	c.Conn.Close()
}

func (c *wsConn) append(p []byte) {
	if c.buf == nil {
		c.buf = (*bufPool.Get().(*[]byte))[:0]
	}
	c.buf = append(c.buf, p...)
}

// flush writes the buffer. On failure the unwritten bytes stay buffered
// and the connection is broken.
func (c *wsConn) flush(timeout time.Duration) error {
	if len(c.buf) == 0 {
		c.release()
		return nil
	}
	_ = c.Conn.SetWriteDeadline(time.Now().Add(timeout))
	n, err := c.Conn.Write(c.buf)
	if err != nil {
		c.buf = c.buf[:copy(c.buf, c.buf[n:])]
		c.broken = err
		return err
	}
	c.release()
	return nil
}

// writeDirect writes a frame too large for the buffer straight from its
// bytes (the buffer is empty).
func (c *wsConn) writeDirect(h, data []byte) error {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.timeout))
	bufs := net.Buffers{h, data}
	if _, err := bufs.WriteTo(c.Conn); err != nil {
		for _, b := range bufs {
			c.append(b)
		}
		c.broken = err
		return err
	}
	return nil
}

func (c *wsConn) release() {
	if c.buf != nil && cap(c.buf) == wsBufSize {
		b := c.buf[:0]
		bufPool.Put(&b)
	}
	c.buf = nil
}
