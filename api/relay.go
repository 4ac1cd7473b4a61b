package api

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/reservoir-atproto/reservoir/relay"
	"github.com/reservoir-atproto/reservoir/store"
	"github.com/reservoir-atproto/reservoir/xrpc"
)

// RelayHosts is what the relay's endpoints need of its host manager
// (*relay.Manager).
type RelayHosts interface {
	RequestCrawl(ctx context.Context, hostname string) error
	AddHost(ctx context.Context, hostname string) (relay.HostInfo, error)
	Host(hostname string) (relay.HostInfo, error)
	Hosts(afterID uint64, limit int) []relay.HostInfo
	Ban(ctx context.Context, hostname string) (relay.HostInfo, error)
	Unban(ctx context.Context, hostname string) (relay.HostInfo, error)
	SetLimits(ctx context.Context, hostname string, l store.HostLimits) (relay.HostInfo, error)
}

var _ RelayHosts = (*relay.Manager)(nil)

// RelayOptions configure the relay's endpoints.
type RelayOptions struct {
	Hosts RelayHosts
	Auth  *xrpc.Auth
	// CrawlRequestsPerMinute bounds the crawl requests (requestCrawl and
	// notifyOfUpdate together) of one client IP address; the burst is the
	// same number. Default 10.
	CrawlRequestsPerMinute int
	// MaxTrackedClients bounds the client addresses the rate limit keeps
	// (when full, it starts over). Default 10,000.
	MaxTrackedClients int
	// AdminCrawlOnly (--crawl-auth=admin) makes requestCrawl and
	// notifyOfUpdate require admin auth (401 otherwise), for a closed
	// relay. By default they are public, as the network runs them, bounded
	// by the per-IP rate limit and the new-hosts-per-day quota.
	AdminCrawlOnly bool
}

// Relay serves the relay's endpoints: com.atproto.sync.requestCrawl,
// notifyOfUpdate, listHosts and getHostStatus, and the admin routes under
// /admin/hosts.
type Relay struct {
	hosts RelayHosts
	auth  *xrpc.Auth
	opts  RelayOptions

	mu      sync.Mutex
	clients map[netip.Addr]*rate.Limiter
}

// NewRelay returns the relay's endpoints over opts.Hosts.
func NewRelay(opts RelayOptions) *Relay {
	if opts.Auth == nil {
		opts.Auth = &xrpc.Auth{}
	}
	if opts.CrawlRequestsPerMinute <= 0 {
		opts.CrawlRequestsPerMinute = 10
	}
	if opts.MaxTrackedClients <= 0 {
		opts.MaxTrackedClients = 10_000
	}
	return &Relay{hosts: opts.Hosts, auth: opts.Auth, opts: opts, clients: map[netip.Addr]*rate.Limiter{}}
}

// Register adds the relay's XRPC methods to srv.
func (rl *Relay) Register(srv *xrpc.Server) {
	crawl := rl.auth.OptionalAuth(rl.requestCrawl)
	if rl.opts.AdminCrawlOnly {
		crawl = rl.auth.RequireAdmin(rl.requestCrawl)
	}
	// notifyOfUpdate (deprecated) is a crawl request for the host it names:
	// the same SSRF guard, rate limit and quota.
	srv.Procedure("com.atproto.sync.requestCrawl", crawl)
	srv.Procedure("com.atproto.sync.notifyOfUpdate", crawl)
	srv.Query("com.atproto.sync.listHosts", rl.listHosts)
	srv.Query("com.atproto.sync.getHostStatus", rl.getHostStatus)
}

// requestCrawl asks the relay to crawl a host: {hostname}, a bare name or a
// service URL. It answers 200 with no body once the host is subscribed (or
// already was). The admin's requests bypass the daily quota of new hosts
// and the check that the host answers.
func (rl *Relay) requestCrawl(w http.ResponseWriter, r *http.Request) error {
	c, _ := xrpc.CallerFrom(r.Context())
	if !c.Admin {
		if err := rl.allow(r); err != nil {
			return err
		}
	}
	var in struct {
		Hostname string `json:"hostname"`
	}
	if err := xrpc.DecodeJSON(r, &in, 16<<10); err != nil {
		return err
	}
	if in.Hostname == "" {
		return xrpc.InvalidRequest("hostname is required")
	}
	var err error
	if c.Admin {
		_, err = rl.hosts.AddHost(r.Context(), in.Hostname)
	} else {
		err = rl.hosts.RequestCrawl(r.Context(), in.Hostname)
	}
	if err != nil {
		return hostsError(in.Hostname, err)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// allow applies the per-IP rate limit of crawl requests.
func (rl *Relay) allow(r *http.Request) error {
	ip := clientAddr(r)
	rl.mu.Lock()
	l := rl.clients[ip]
	if l == nil {
		if len(rl.clients) >= rl.opts.MaxTrackedClients {
			clear(rl.clients)
		}
		n := rl.opts.CrawlRequestsPerMinute
		l = rate.NewLimiter(rate.Every(time.Minute/time.Duration(n)), n)
		rl.clients[ip] = l
	}
	rl.mu.Unlock()
	res := l.Reserve()
	if d := res.Delay(); d > 0 {
		res.Cancel()
		return xrpc.RateLimitExceeded(d)
	}
	return nil
}

// clientAddr is the request's peer address (proxy headers are not
// trusted).
func clientAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// hostsError maps the host manager's errors to XRPC errors.
func hostsError(hostname string, err error) error {
	switch {
	case errors.Is(err, relay.ErrHostBanned):
		return xrpc.HostBanned(hostname)
	case errors.Is(err, relay.ErrHostUnreachable):
		return xrpc.NewError(http.StatusBadRequest, "HostNotFound", "Host not reachable: "+err.Error())
	case errors.Is(err, relay.ErrHostNotFound):
		return xrpc.HostNotFound(hostname)
	case errors.Is(err, relay.ErrNewHostQuota):
		e := xrpc.RateLimitExceeded(time.Hour)
		e.Message = "The relay takes no more new hosts today"
		return e
	case errors.Is(err, relay.ErrInvalidHostname), errors.Is(err, relay.ErrNonPublicHost):
		return xrpc.InvalidRequest(err.Error())
	}
	return err
}

// hostView is a host as listHosts and getHostStatus show it
// (com.atproto.sync.listHosts#host); seq is absent while no upstream event
// was processed.
type hostView struct {
	Hostname     string `json:"hostname"`
	Seq          *int64 `json:"seq,omitempty"`
	AccountCount int64  `json:"accountCount"`
	Status       string `json:"status"`
}

func viewHost(h relay.HostInfo) hostView {
	v := hostView{Hostname: h.Hostname, AccountCount: h.AccountCount, Status: string(h.Status)}
	if h.Cursor != store.NoCursor {
		seq := h.Cursor
		v.Seq = &seq
	}
	return v
}

// listHosts pages through the hosts in first-seen order; the cursor is the
// last host's id.
func (rl *Relay) listHosts(w http.ResponseWriter, r *http.Request) error {
	page, cursor, err := rl.hostPage(r)
	if err != nil {
		return err
	}
	out := struct {
		Cursor string     `json:"cursor,omitempty"`
		Hosts  []hostView `json:"hosts"`
	}{Cursor: cursor, Hosts: make([]hostView, 0, len(page))}
	for _, h := range page {
		out.Hosts = append(out.Hosts, viewHost(h))
	}
	return xrpc.WriteJSON(w, http.StatusOK, out)
}

// hostPage reads limit (1..1000, default 200) and cursor (a host id) and
// returns that page of hosts and the next cursor ("" after a short page).
func (rl *Relay) hostPage(r *http.Request) ([]relay.HostInfo, string, error) {
	p, err := xrpc.ParamsFrom(r)
	if err != nil {
		return nil, "", err
	}
	limit, err := p.Int("limit", 200, 1, 1000)
	if err != nil {
		return nil, "", err
	}
	after, err := uidCursor(p)
	if err != nil {
		return nil, "", err
	}
	page := rl.hosts.Hosts(after, int(limit))
	cursor := ""
	if int64(len(page)) == limit {
		cursor = strconv.FormatUint(page[len(page)-1].ID, 10)
	}
	return page, cursor, nil
}

func (rl *Relay) getHostStatus(w http.ResponseWriter, r *http.Request) error {
	p, err := xrpc.ParamsFrom(r)
	if err != nil {
		return err
	}
	name, err := p.String("hostname", true)
	if err != nil {
		return err
	}
	addr, err := relay.ParseHostAddr(name, true)
	if err != nil {
		return xrpc.HostNotFound(name)
	}
	h, err := rl.hosts.Host(addr.Hostname)
	if err != nil {
		return hostsError(name, err)
	}
	return xrpc.WriteJSON(w, http.StatusOK, viewHost(h))
}

// adminHostView is a host as the admin routes show it: everything stored.
type adminHostView struct {
	ID              uint64     `json:"id"`
	Hostname        string     `json:"hostname"`
	Status          string     `json:"status"`
	Seq             *int64     `json:"seq,omitempty"`
	AccountCount    int64      `json:"accountCount"`
	EventsPerSecond int64      `json:"eventsPerSecond"`
	MaxAccounts     int64      `json:"maxAccounts"`
	NoSSL           bool       `json:"noSSL"`
	CreatedAt       time.Time  `json:"createdAt"`
	LastEventAt     *time.Time `json:"lastEventAt,omitempty"`
	Failures        int64      `json:"failures"`
	InFlight        int        `json:"inFlight"`
}

func viewAdminHost(h relay.HostInfo) adminHostView {
	v := adminHostView{
		ID: h.ID, Hostname: h.Hostname, Status: string(h.Status), Seq: viewHost(h).Seq, AccountCount: h.AccountCount,
		EventsPerSecond: h.Limits.EventsPerSecond, MaxAccounts: h.Limits.MaxAccounts, NoSSL: h.NoSSL,
		CreatedAt: h.CreatedAt, Failures: h.Failures, InFlight: h.InFlight,
	}
	if !h.LastEventAt.IsZero() {
		t := h.LastEventAt
		v.LastEventAt = &t
	}
	return v
}

// AdminHandler serves the admin's host routes (mount it at /admin/hosts and
// /admin/hosts/ behind admin auth):
//
//	GET  /admin/hosts?limit=&cursor=        every host, in first-seen order
//	POST /admin/hosts {hostname}            add a host (no quota, no answer check)
//	GET  /admin/hosts/{hostname}            one host
//	POST /admin/hosts/{hostname}/ban        ban (also a host not seen yet)
//	POST /admin/hosts/{hostname}/unban      lift a ban
//	POST /admin/hosts/{hostname}/limits {eventsPerSecond, maxAccounts}
//
// Zero limits mean the relay's defaults.
func (rl *Relay) AdminHandler() xrpc.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		rest, ok := strings.CutPrefix(r.URL.Path, "/admin/hosts")
		if !ok || (rest != "" && rest[0] != '/') {
			return xrpc.NewError(http.StatusNotFound, "NotFound", "no such admin route")
		}
		rest = strings.Trim(rest, "/")
		if rest == "" {
			switch r.Method {
			case http.MethodGet:
				return rl.adminList(w, r)
			case http.MethodPost:
				return rl.adminAdd(w, r)
			}
			return xrpc.MethodNotAllowed(r.Method, http.MethodGet, http.MethodPost)
		}
		name, action, _ := strings.Cut(rest, "/")
		var h relay.HostInfo
		var err error
		switch {
		case action == "" && r.Method == http.MethodGet:
			h, err = rl.hosts.Host(name)
		case action == "":
			return xrpc.MethodNotAllowed(r.Method, http.MethodGet)
		case r.Method != http.MethodPost:
			return xrpc.MethodNotAllowed(r.Method, http.MethodPost)
		case action == "ban":
			h, err = rl.hosts.Ban(r.Context(), name)
		case action == "unban":
			h, err = rl.hosts.Unban(r.Context(), name)
		case action == "limits":
			var in struct {
				EventsPerSecond int64 `json:"eventsPerSecond"`
				MaxAccounts     int64 `json:"maxAccounts"`
			}
			if err := xrpc.DecodeJSON(r, &in, 16<<10); err != nil {
				return err
			}
			if in.EventsPerSecond < 0 || in.MaxAccounts < 0 {
				return xrpc.InvalidRequest("limits must not be negative")
			}
			h, err = rl.hosts.SetLimits(r.Context(), name, store.HostLimits{EventsPerSecond: in.EventsPerSecond, MaxAccounts: in.MaxAccounts})
		default:
			return xrpc.NewError(http.StatusNotFound, "NotFound", "no such host action: "+action)
		}
		if err != nil {
			return hostsError(name, err)
		}
		return xrpc.WriteJSON(w, http.StatusOK, viewAdminHost(h))
	}
}

func (rl *Relay) adminList(w http.ResponseWriter, r *http.Request) error {
	page, cursor, err := rl.hostPage(r)
	if err != nil {
		return err
	}
	out := struct {
		Cursor string          `json:"cursor,omitempty"`
		Hosts  []adminHostView `json:"hosts"`
	}{Cursor: cursor, Hosts: make([]adminHostView, 0, len(page))}
	for _, h := range page {
		out.Hosts = append(out.Hosts, viewAdminHost(h))
	}
	return xrpc.WriteJSON(w, http.StatusOK, out)
}

func (rl *Relay) adminAdd(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Hostname string `json:"hostname"`
	}
	if err := xrpc.DecodeJSON(r, &in, 16<<10); err != nil {
		return err
	}
	if in.Hostname == "" {
		return xrpc.InvalidRequest("hostname is required")
	}
	h, err := rl.hosts.AddHost(r.Context(), in.Hostname)
	if err != nil {
		return hostsError(in.Hostname, err)
	}
	return xrpc.WriteJSON(w, http.StatusOK, viewAdminHost(h))
}
