package xrpc

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Paths the Server answers. Mount it in a parent mux at PathPrefix, without
// stripping the prefix: mux.Handle(xrpc.PathPrefix, srv).
const (
	PathPrefix = "/xrpc/"
	HealthPath = PathPrefix + "_health"
)

// DefaultMaxBodyBytes is the request body limit when Options.MaxBodyBytes is
// zero.
const DefaultMaxBodyBytes = 1 << 20

// labelUnknown is the nsid label of requests for no registered method, so
// that random paths cannot grow the metrics without bound.
const labelUnknown = "unknown"

// Kind is the lexicon type of a method, which decides its HTTP method.
type Kind uint8

const (
	KindQuery        Kind = iota + 1 // GET (and HEAD)
	KindProcedure                    // POST
	KindSubscription                 // GET, upgraded to a websocket by the handler
)

func (k Kind) String() string {
	switch k {
	case KindQuery:
		return "query"
	case KindProcedure:
		return "procedure"
	case KindSubscription:
		return "subscription"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// allow lists the HTTP methods of a kind, the first one preferred.
func (k Kind) allow() []string {
	switch k {
	case KindQuery:
		return []string{http.MethodGet, http.MethodHead}
	case KindProcedure:
		return []string{http.MethodPost}
	case KindSubscription:
		return []string{http.MethodGet}
	}
	return nil
}

// Route describes a method to register.
type Route struct {
	NSID string
	Kind Kind
	// MaxBodyBytes bounds the request body: 0 means Options.MaxBodyBytes,
	// a negative value means no limit (a handler that streams a large body,
	// such as importRepo, then enforces its own). Reading past the limit
	// fails with *http.MaxBytesError, which answers 413 PayloadTooLarge.
	MaxBodyBytes int64
}

// Options configure a Server. The zero value is usable.
type Options struct {
	// Logger receives one line per 5xx response (with the internal cause)
	// and per recovered panic (with the stack). Nil discards.
	Logger *slog.Logger
	// Metrics counts requests; nil counts nothing. See NewMetrics.
	Metrics *Metrics
	// Version is reported by GET /xrpc/_health.
	Version string
	// Health reports whether the service can serve (for reservoir: the
	// store is writable). Nil means always healthy; an error answers 503.
	Health func(ctx context.Context) error
	// MaxBodyBytes is the default request body limit (DefaultMaxBodyBytes
	// when zero; negative: no limit).
	MaxBodyBytes int64
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	return o
}

// Server routes /xrpc/NSID to registered handlers. Register every method
// before serving; registration may run concurrently with serving, but a
// method registered late is simply unknown (501) until then.
type Server struct {
	opts    Options
	adapter adapter

	mu     sync.Mutex                        // serializes registration
	routes atomic.Pointer[map[string]*route] // copy on write: lookups take no lock
}

type route struct {
	Route
	h     HandlerFunc
	allow []string
}

// NewServer returns a Server with no methods registered.
func NewServer(opts Options) *Server {
	opts = opts.withDefaults()
	s := &Server{opts: opts, adapter: adapter{log: opts.Logger, metrics: opts.Metrics}}
	s.routes.Store(&map[string]*route{})
	return s
}

// Query registers a query (GET, also HEAD) at /xrpc/nsid.
func (s *Server) Query(nsid string, h HandlerFunc) {
	s.Handle(Route{NSID: nsid, Kind: KindQuery}, h)
}

// Procedure registers a procedure (POST) at /xrpc/nsid.
func (s *Server) Procedure(nsid string, h HandlerFunc) {
	s.Handle(Route{NSID: nsid, Kind: KindProcedure}, h)
}

// Subscription registers a subscription (GET) at /xrpc/nsid. The handler
// does the websocket upgrade; errors it returns before upgrading are
// answered as JSON like any other.
func (s *Server) Subscription(nsid string, h HandlerFunc) {
	s.Handle(Route{NSID: nsid, Kind: KindSubscription}, h)
}

// Handle registers h for rt. Like http.ServeMux it panics on a programming
// error: an invalid NSID, an unknown Kind, a nil handler or a method
// registered twice.
func (s *Server) Handle(rt Route, h HandlerFunc) {
	if _, err := syntax.ParseNSID(rt.NSID); err != nil {
		panic(fmt.Sprintf("xrpc: Handle: invalid NSID %q: %v", rt.NSID, err))
	}
	allow := rt.Kind.allow()
	if allow == nil {
		panic(fmt.Sprintf("xrpc: Handle %s: invalid kind %v", rt.NSID, rt.Kind))
	}
	if h == nil {
		panic("xrpc: Handle " + rt.NSID + ": nil handler")
	}
	if rt.MaxBodyBytes == 0 {
		rt.MaxBodyBytes = s.opts.MaxBodyBytes
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.routes.Load()
	if _, dup := old[rt.NSID]; dup {
		panic("xrpc: Handle: " + rt.NSID + " registered twice")
	}
	next := maps.Clone(old)
	next[rt.NSID] = &route{Route: rt, h: h, allow: allow}
	s.routes.Store(&next)
}

// Endpoint returns an http.Handler that runs h like an XRPC method (error
// mapping, panic recovery, logging, the default body limit and metrics
// under label) for routes outside /xrpc/, such as /admin/. It does no
// method check. label must be a constant: it becomes a metrics label.
func (s *Server) Endpoint(label string, h HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.adapter.run(label, 0, s.opts.MaxBodyBytes, h, w, r)
	})
}

// ServeHTTP dispatches /xrpc/NSID: an unknown NSID gets 501
// MethodNotImplemented, a known one called with the wrong HTTP method 405
// with an Allow header, and paths outside /xrpc/ 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	nsid, ok := strings.CutPrefix(r.URL.Path, PathPrefix)
	switch {
	case !ok:
		s.adapter.run(labelUnknown, 0, s.opts.MaxBodyBytes, notFound, w, r)
		return
	case nsid == "_health":
		s.adapter.run("_health", KindQuery, s.opts.MaxBodyBytes, s.health, w, r)
		return
	}
	rt := (*s.routes.Load())[nsid]
	if rt == nil {
		s.adapter.run(labelUnknown, 0, s.opts.MaxBodyBytes, notImplemented, w, r)
		return
	}
	h := rt.h
	if !slices.Contains(rt.allow, r.Method) {
		h = methodNotAllowed(rt.allow)
	}
	s.adapter.run(rt.NSID, rt.Kind, rt.MaxBodyBytes, h, w, r)
}

func notFound(http.ResponseWriter, *http.Request) error {
	return NewError(http.StatusNotFound, "NotFound", "Not Found")
}

func notImplemented(http.ResponseWriter, *http.Request) error {
	return MethodNotImplemented()
}

func methodNotAllowed(allow []string) HandlerFunc {
	return func(_ http.ResponseWriter, r *http.Request) error {
		return MethodNotAllowed(r.Method, allow...)
	}
}

type healthBody struct {
	Version string `json:"version"`
	Error   string `json:"error,omitempty"`
	Message string `json:"message,omitempty"`
}

// health answers GET /xrpc/_health: 200 {"version": V}, or 503 {"version":
// V, "error": "ServiceUnavailable", "message": ...} when Options.Health
// fails (its error is logged, not sent).
func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	if m := r.Method; m != http.MethodGet && m != http.MethodHead {
		return MethodNotAllowed(m, http.MethodGet, http.MethodHead)
	}
	if s.opts.Health != nil {
		if err := s.opts.Health(r.Context()); err != nil {
			s.opts.Logger.Error("xrpc: health check failed", "cause", err)
			return WriteJSON(w, http.StatusServiceUnavailable, healthBody{
				Version: s.opts.Version, Error: "ServiceUnavailable", Message: "Service Unavailable",
			})
		}
	}
	return WriteJSON(w, http.StatusOK, healthBody{Version: s.opts.Version})
}
