package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/reservoir-atproto/reservoir/events/wire"
)

// writeTimeout bounds one websocket write to a subscriber.
const writeTimeout = 30 * time.Second

// Host is a fake PDS on loopback serving a Stream. Frames become visible
// to subscribers as they are released (Release, Pace); a subscription
// without a cursor starts at the frames released after it connected, one
// with cursor N at seq N+1 (waiting for it to be released).
type Host struct {
	stream *Stream
	log    *slog.Logger
	ln     net.Listener
	srv    *http.Server

	mu       sync.Mutex
	released int64
	wake     chan struct{} // closed and replaced when released grows

	sent   atomic.Int64 // frames written to subscribers
	active atomic.Int64 // subscribers connected
	conns  atomic.Int64 // subscriptions ever accepted
	closed chan struct{}
}

// NewHost starts a fake host for s on 127.0.0.1 (a free port). logger may
// be nil.
func NewHost(s *Stream, logger *slog.Logger) (*Host, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("loadgen: host: %w", err)
	}
	h := &Host{stream: s, log: logger, ln: ln, wake: make(chan struct{}), closed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("/xrpc/com.atproto.sync.subscribeRepos", h.subscribe)
	mux.HandleFunc("/xrpc/com.atproto.sync.listRepos", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"repos": []any{}}) // relays learn accounts from their genesis commits
	})
	mux.HandleFunc("/xrpc/com.atproto.server.describeServer", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"did": "did:web:" + ln.Addr().(*net.TCPAddr).IP.String(), "availableUserDomains": []string{".test"}, "inviteCodeRequired": true})
	})
	mux.HandleFunc("/xrpc/_health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"version": "loadgen"})
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotImplemented, map[string]any{"error": "MethodNotImplemented", "message": "the load generator's host serves only the firehose"})
	})
	h.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go h.srv.Serve(ln)
	return h, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// Hostname is the host's name as relays crawl it: localhost:PORT (indigo's
// relay takes no IP address as a PDS hostname, and a port only on
// localhost). It listens on 127.0.0.1 only.
func (h *Host) Hostname() string { return fmt.Sprintf("localhost:%d", h.ln.Addr().(*net.TCPAddr).Port) }

// URL is the host's service root, the PDS endpoint of its accounts.
func (h *Host) URL() string { return "http://" + h.Hostname() }

// Release makes the frames up to seq visible (it never takes any back).
func (h *Host) Release(seq int64) {
	seq = min(seq, h.stream.Len())
	h.mu.Lock()
	defer h.mu.Unlock()
	if seq > h.released {
		h.released = seq
		close(h.wake)
		h.wake = make(chan struct{})
	}
}

// Released is the last seq released.
func (h *Host) Released() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.released
}

func (h *Host) position() (int64, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.released, h.wake
}

// Pace releases the frames up to seq at rate frames per second (in steps
// of 10 ms), from where the release stands; it returns when seq is
// released or ctx ends.
func (h *Host) Pace(ctx context.Context, seq int64, rate float64) error {
	if rate <= 0 {
		h.Release(seq)
		return nil
	}
	seq = min(seq, h.stream.Len())
	start, from := time.Now(), h.Released()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for h.Released() < seq {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		h.Release(min(seq, from+int64(time.Since(start).Seconds()*rate)))
	}
	return nil
}

// Sent is the number of frames written to subscribers so far.
func (h *Host) Sent() int64 { return h.sent.Load() }

// Subscribers is the number of subscriptions open now, and ever accepted.
func (h *Host) Subscribers() (open, total int64) { return h.active.Load(), h.conns.Load() }

// Close stops the host and its subscriptions.
func (h *Host) Close() error {
	select {
	case <-h.closed:
		return nil
	default:
	}
	close(h.closed)
	return h.srv.Close()
}

var upgrader = websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 64 << 10, CheckOrigin: func(*http.Request) bool { return true }}

func (h *Host) subscribe(w http.ResponseWriter, r *http.Request) {
	pos := int64(-1)
	if c := r.URL.Query().Get("cursor"); c != "" {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil || n < 0 {
			writeJSON(w, http.StatusBadRequest, map[string]any{"error": "InvalidRequest", "message": "cursor is not a non-negative integer"})
			return
		}
		pos = n
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered
	}
	defer conn.Close()
	h.conns.Add(1)
	h.active.Add(1)
	defer h.active.Add(-1)
	if pos > h.stream.Len() {
		conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		conn.WriteMessage(websocket.BinaryMessage, wire.ErrorFrame("FutureCursor", "cursor is ahead of the stream"))
		return
	}
	if pos < 0 {
		pos, _ = h.position()
	}
	gone := make(chan struct{})
	go func() { // reads control frames; a close or an error ends the subscription
		defer close(gone)
		conn.SetReadLimit(64 << 10)
		for {
			if _, _, err := conn.NextReader(); err != nil {
				return
			}
		}
	}()
	h.log.Debug("loadgen: subscriber", "remote", r.RemoteAddr, "from", pos)
	fr := h.stream.Reader(pos)
	var buf []byte
	for {
		released, wake := h.position()
		for fr.seq < released {
			b, _, err := fr.Next(buf)
			if err != nil {
				if !errors.Is(err, io.EOF) {
					h.log.Warn("loadgen: reading the stream", "err", err)
				}
				return
			}
			buf = b
			conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := conn.WriteMessage(websocket.BinaryMessage, b); err != nil {
				return
			}
			h.sent.Add(1)
		}
		select {
		case <-wake:
		case <-gone:
			return
		case <-h.closed:
			conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(time.Second))
			return
		}
	}
}
