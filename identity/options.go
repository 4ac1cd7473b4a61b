package identity

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults of Options fields left zero.
const (
	DefaultPLCURL           = "https://plc.directory"
	DefaultTimeout          = 10 * time.Second
	DefaultCacheSize        = 250_000
	DefaultTTL              = time.Hour
	DefaultErrorTTL         = 2 * time.Minute
	DefaultInvalidHandleTTL = 5 * time.Minute
	DefaultRefreshInterval  = 5 * time.Second
	DefaultUserAgent        = "reservoir-identity"

	// MaxResponseBytes bounds every response body the Resolver reads (DID
	// documents, and handle answers which indigo further caps at 2048
	// bytes). did:plc documents are a few kilobytes.
	MaxResponseBytes = 256 << 10
)

// Options configure a Resolver. The zero value is valid: every zero field
// takes the default named in its comment. Nothing can be changed after New.
type Options struct {
	// PLCURL is the did:plc directory: scheme, host, optional port and path
	// prefix, no query. The DID is appended as "/<did>". Default
	// DefaultPLCURL (the contract's --plc-url). The default HTTP client always
	// lets this host through, even on loopback without AllowInsecure: the
	// operator chose it.
	PLCURL string
	// Timeout bounds each network lookup (one DID document, one handle),
	// whatever context the caller passes. Default 10s.
	Timeout time.Duration
	// CacheSize bounds the entries of each of the two caches (DIDs and
	// handles); the least recently used entry is evicted first. Default
	// 250,000.
	CacheSize int
	// TTL is how long a resolved identity or handle stays cached. Default 1h.
	// Purge (on #identity events) and RefreshSigningKey (after a signature
	// failure) cut it short.
	TTL time.Duration
	// ErrorTTL is how long a failed lookup (not found, timeout, malformed
	// document) stays cached, so a broken DID cannot make every event cost a
	// network request. Default 2m.
	ErrorTTL time.Duration
	// InvalidHandleTTL replaces TTL for identities whose document claims a
	// handle that did not verify, so a newly set-up handle is picked up soon.
	// Default 5m.
	InvalidHandleTTL time.Duration
	// RefreshInterval: RefreshSigningKey fetches the document again only when
	// the cached one was fetched longer ago than this, so a burst of bad
	// signatures for one DID costs one request. Default 5s.
	RefreshInterval time.Duration
	// SkipHandleVerification makes LookupDID skip resolving the handle the
	// document claims: Identity.Handle is then always handle.invalid (the
	// claim is still in Identity.DeclaredHandle). It saves a DNS and an HTTPS
	// request per new DID, which a relay that only needs keys and endpoints
	// may prefer. LookupHandle still verifies both directions.
	SkipHandleVerification bool
	// AllowInsecure (mirror of --allow-insecure-hosts) allows, for tests and
	// private networks: did:web:localhost with a port (%3A) over http://,
	// http:// and loopback/private #atproto_pds endpoints, and connections
	// of the default HTTP client to loopback and private addresses.
	AllowInsecure bool
	// HTTPClient, if set, is used for every HTTP request (did:plc, did:web,
	// handle well-known). Its transport is wrapped to enforce
	// MaxResponseBytes; its own timeouts and dialer are kept, so the
	// non-public address guard of the default client does not apply. The
	// default client has connect, TLS and header timeouts, allows 5
	// redirects (https only unless AllowInsecure) and resolves names with
	// DNSResolver.
	HTTPClient *http.Client
	// DNSResolver, if set, answers the _atproto TXT lookups of handle
	// resolution and the host lookups of the default HTTP client. Default: a
	// net.Resolver with default settings (the system's DNS).
	DNSResolver *net.Resolver
	// UserAgent is sent with every HTTP request. Default
	// DefaultUserAgent.
	UserAgent string
	// Logger receives a debug line per network lookup. Default: discard.
	Logger *slog.Logger
}

// withDefaults returns a copy of o with zero fields set to their defaults,
// or an error naming the first invalid field.
func (o Options) withDefaults() (Options, error) {
	if o.PLCURL == "" {
		o.PLCURL = DefaultPLCURL
	}
	plc, err := url.Parse(o.PLCURL)
	if err != nil || (plc.Scheme != "https" && plc.Scheme != "http") || plc.Host == "" ||
		plc.User != nil || plc.RawQuery != "" || plc.Fragment != "" {
		return o, fmt.Errorf("identity: PLCURL %q: want an http(s) URL with a host and no query", o.PLCURL)
	}
	o.PLCURL = strings.TrimRight(o.PLCURL, "/")
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"Timeout", &o.Timeout, DefaultTimeout},
		{"TTL", &o.TTL, DefaultTTL},
		{"ErrorTTL", &o.ErrorTTL, DefaultErrorTTL},
		{"InvalidHandleTTL", &o.InvalidHandleTTL, DefaultInvalidHandleTTL},
		{"RefreshInterval", &o.RefreshInterval, DefaultRefreshInterval},
	} {
		if *d.v < 0 {
			return o, fmt.Errorf("identity: %s %v is negative", d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if o.CacheSize < 0 {
		return o, fmt.Errorf("identity: CacheSize %d is negative", o.CacheSize)
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.DNSResolver == nil {
		o.DNSResolver = &net.Resolver{}
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// plcHostPort is the host:port the default client dials for the directory.
func (o Options) plcHostPort() string {
	u, err := url.Parse(o.PLCURL)
	if err != nil {
		return ""
	}
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	return net.JoinHostPort(u.Hostname(), port)
}
