package xrpc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"
)

// HandlerFunc serves one XRPC method. It writes a successful response itself
// (WriteJSON, CARResponse, or any bytes) and returns nil, or returns an
// error and writes nothing: the adapter turns the error into the response.
// An *Error (possibly wrapped) chooses the status and body; any other error
// becomes 500 InternalServerError and is logged.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Status labels for responses that carry no status of their own.
const (
	// statusClientClosed is counted when the client went away before a
	// response was written (nginx's 499).
	statusClientClosed = 499
	// statusAborted is counted when the connection was cut without a
	// response (http.ErrAbortHandler).
	statusAborted = 0
)

// adapter runs handlers: it recovers panics, maps errors to responses, logs
// 5xx and counts every request. It holds no per-request state.
type adapter struct {
	log     *slog.Logger
	metrics *Metrics
}

// run serves one request with h. label is the nsid the request is counted
// and logged under; maxBody bounds the request body (<= 0: no limit).
func (a *adapter) run(label string, kind Kind, maxBody int64, h HandlerFunc, w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &responseWriter{ResponseWriter: w}
	if maxBody > 0 && r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	}
	err := a.call(h, rw, r)
	code, abort := a.finish(rw, r, label, err)
	a.metrics.observe(label, kind, code, time.Since(start))
	if abort {
		// Cut the connection so the client cannot take a truncated body
		// for a complete one. net/http does not log this panic.
		panic(http.ErrAbortHandler)
	}
}

// finish answers for a handler that returned err, if it can. It returns the
// status the request is counted under, and whether the connection must be
// cut.
func (a *adapter) finish(w *responseWriter, r *http.Request, label string, err error) (code int, abort bool) {
	switch {
	case err == nil:
		if !w.started {
			return http.StatusOK, false // net/http sends 200 with no body
		}
		return w.status, false
	case errors.Is(err, http.ErrAbortHandler):
		if !w.started {
			return statusAborted, true
		}
		return w.status, !w.hijacked
	}
	return a.fail(w, r, label, err)
}

// call runs h, turning a panic into a *panicError (or, for
// http.ErrAbortHandler, into that error).
func (a *adapter) call(h HandlerFunc, w *responseWriter, r *http.Request) (err error) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if e, ok := v.(error); ok && errors.Is(e, http.ErrAbortHandler) {
			err = http.ErrAbortHandler
			return
		}
		err = &panicError{value: v, stack: debug.Stack()}
	}()
	return h(w, r)
}

// panicError is a recovered handler panic.
type panicError struct {
	value any
	stack []byte
}

func (p *panicError) Error() string { return fmt.Sprintf("xrpc: handler panic: %v", p.value) }

// fail answers a request whose handler returned err (not nil, not
// http.ErrAbortHandler).
func (a *adapter) fail(w *responseWriter, r *http.Request, label string, err error) (code int, abort bool) {
	attrs := []any{"nsid", label, "method", r.Method, "cause", err}
	var pe *panicError
	if errors.As(err, &pe) {
		attrs = append(attrs, "stack", string(pe.stack))
	}
	if w.started {
		level := slog.LevelWarn
		if pe != nil {
			level = slog.LevelError
		}
		a.log.Log(r.Context(), level, "xrpc: handler failed after the response started",
			append(attrs, "status", w.status)...)
		return w.status, !w.hijacked
	}
	if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		// The client is gone; nobody reads an answer.
		a.log.Debug("xrpc: client went away", attrs...)
		return statusClientClosed, false
	}
	xe := errorFor(err)
	if xe.Status >= 500 {
		a.log.Error("xrpc: request failed",
			append(attrs, "status", xe.Status, "error", xe.Name)...)
	}
	writeError(w, xe)
	return xe.Status, false
}

// errorFor maps a handler's error to the response it gets.
func errorFor(err error) *Error {
	var xe *Error
	if errors.As(err, &xe) && xe != nil && xe.Status >= 400 && xe.Status <= 599 {
		return xe
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return PayloadTooLarge(tooLarge.Limit)
	}
	return Internal(err)
}

// headersOfContent are headers a handler may have set for a success body
// that must not go out with an error body.
var headersOfContent = []string{
	"Content-Length", "Content-Encoding", "Content-Disposition", "Content-Range",
	"Etag", "Last-Modified",
}

// writeError writes e as {"error": Name, "message": Message}. Headers set
// by middleware before the handler (CORS, rate-limit headers) are kept.
func writeError(w http.ResponseWriter, e *Error) {
	h := w.Header()
	for _, k := range headersOfContent {
		h.Del(k)
	}
	for k, vs := range e.Header {
		h[http.CanonicalHeaderKey(k)] = vs
	}
	name, msg := e.Name, e.Message
	if name == "" {
		name = defaultName(e.Status)
	}
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	// Marshalling two strings cannot fail, and a write error means the
	// client is gone: nothing is left to do with either.
	_ = WriteJSON(w, e.Status, errorBody{Error: name, Message: msg})
}

type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// defaultName is the error name the TypeScript reference uses for a status
// when nothing more specific applies.
func defaultName(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusMethodNotAllowed:
		return NameInvalidRequest
	case http.StatusUnauthorized:
		return NameAuthenticationRequired
	case http.StatusForbidden:
		return "Forbidden"
	case http.StatusNotFound:
		return "XRPCNotSupported"
	case http.StatusNotAcceptable:
		return "NotAcceptable"
	case http.StatusRequestEntityTooLarge:
		return NamePayloadTooLarge
	case http.StatusUnsupportedMediaType:
		return "UnsupportedMediaType"
	case http.StatusTooManyRequests:
		return "RateLimitExceeded"
	case http.StatusNotImplemented:
		return NameMethodNotImplemented
	case http.StatusBadGateway:
		return "UpstreamFailure"
	case http.StatusServiceUnavailable:
		return "NotEnoughResources"
	case http.StatusGatewayTimeout:
		return "UpstreamTimeout"
	}
	if status >= 500 {
		return NameInternalServerError
	}
	return NameInvalidRequest
}

// responseWriter remembers the status a handler sent, and whether it sent
// one, so the adapter knows if it can still answer with an error. It passes
// Flush and Hijack through (websocket upgrades need Hijack) and unwraps for
// http.ResponseController.
type responseWriter struct {
	http.ResponseWriter
	status   int
	started  bool
	hijacked bool
}

func (w *responseWriter) WriteHeader(code int) {
	if !w.started && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status, w.started = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	w.begin()
	return w.ResponseWriter.Write(p)
}

func (w *responseWriter) begin() {
	if !w.started {
		w.status, w.started = http.StatusOK, true
	}
}

// Flush sends the status and headers, then any buffered body.
func (w *responseWriter) Flush() {
	w.begin()
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack hands the connection to the caller (a websocket upgrade).
func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if !w.started {
		w.status, w.started = http.StatusSwitchingProtocols, true
	}
	w.hijacked = true
	return conn, brw, nil
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func statusLabel(code int) string {
	if code == statusAborted {
		return "aborted"
	}
	return strconv.Itoa(code)
}
