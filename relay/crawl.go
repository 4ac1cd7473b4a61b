package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/internal/netguard"
)

// Errors of crawl requests and host administration. The API maps each to
// its XRPC error.
var (
	// ErrInvalidHostname: the hostname (or URL) is not one the relay
	// crawls: bad syntax, a scheme other than http(s)/ws(s), a path, a port
	// where none is allowed, http without --allow-insecure-hosts.
	ErrInvalidHostname = errors.New("relay: invalid hostname")
	// ErrNonPublicHost: the hostname resolves to a loopback, private,
	// link-local or unspecified address (allowed only with
	// --allow-insecure-hosts).
	ErrNonPublicHost = errors.New("relay: host resolves to a non-public address")
	// ErrHostUnreachable: the host does not resolve or does not answer as an
	// atproto service.
	ErrHostUnreachable = errors.New("relay: host not reachable")
	// ErrHostBanned: the host is banned by the admin.
	ErrHostBanned = errors.New("relay: host banned")
	// ErrHostNotFound: the relay knows no host of that name.
	ErrHostNotFound = errors.New("relay: unknown host")
	// ErrNewHostQuota: the quota of new hosts per day is used up.
	ErrNewHostQuota = errors.New("relay: new host quota exceeded")
)

// HostAddr is a validated upstream host: its normalized name (lower case,
// no scheme, a port only where one is allowed) and whether it is reached
// without TLS (http:// and ws://).
type HostAddr struct {
	Hostname string
	NoSSL    bool
}

// ParseHostAddr validates the hostname of a crawl request, which may be a
// bare hostname or the URL of the service's root (sync-spec §1.4,
// requestCrawl):
//
//   - schemes https and wss mean TLS; http and ws mean no TLS, allowed only
//     when allowInsecure;
//   - no user, query, fragment or path (a lone "/" is fine);
//   - the name is lower-cased and must have handle syntax (at least two
//     labels, no IP address), with a TLD not reserved for special uses
//     (.local, .internal, .onion, ...), or be localhost;
//   - a port is allowed only for localhost; the scheme's default port is
//     dropped (the name matches the host of a PDS endpoint URL).
//
// allowInsecure (--allow-insecure-hosts) also allows IP addresses, ports on
// any host and the reserved TLDs, for tests and private networks.
func ParseHostAddr(raw string, allowInsecure bool) (HostAddr, error) {
	s := strings.TrimSpace(raw)
	bad := func(format string, args ...any) (HostAddr, error) {
		return HostAddr{}, fmt.Errorf("%w: %q: %s", ErrInvalidHostname, raw, fmt.Sprintf(format, args...))
	}
	if s == "" || len(s) > 512 {
		return bad("empty or too long")
	}
	var a HostAddr
	hostport := s
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		u, err := url.Parse(s)
		if err != nil {
			return bad("not a URL: %v", err)
		}
		switch strings.ToLower(scheme) {
		case "https", "wss":
		case "http", "ws":
			a.NoSSL = true
		default:
			return bad("scheme %q: want https, wss, http or ws", scheme)
		}
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || (u.Path != "" && u.Path != "/") {
			return bad("a URL of the service root has no user, path, query or fragment")
		}
		hostport = strings.TrimSuffix(rest, "/")
	}
	if strings.ContainsAny(hostport, "/?#@ \t") {
		return bad("not a hostname")
	}
	if a.NoSSL && !allowInsecure {
		return bad("http and ws hosts are not crawled (--allow-insecure-hosts allows them)")
	}
	host, port := hostport, ""
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		host, port = h, p
	} else if strings.Count(hostport, ":") == 1 || strings.HasPrefix(hostport, "[") {
		return bad("bad port: %v", err)
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if (port == "443" && !a.NoSSL) || (port == "80" && a.NoSSL) {
		port = "" // the scheme's default: the name is the same host
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return bad("bad port %q", port)
		}
		if host != "localhost" && !allowInsecure {
			return bad("a port is allowed only for localhost")
		}
	}
	switch ip, err := netip.ParseAddr(host); {
	case err == nil:
		if !allowInsecure {
			return bad("an IP address is not a hostname")
		}
		host = ip.String()
	case host == "localhost":
	default:
		h, err := syntax.ParseHandle(host)
		if err != nil {
			return bad("not a valid hostname: %v", err)
		}
		if !h.AllowedTLD() && !allowInsecure {
			return bad("the TLD of %s is reserved", host)
		}
	}
	a.Hostname = host
	if port != "" {
		a.Hostname = net.JoinHostPort(host, port)
	}
	return a, nil
}

// baseURL is the host's service root over HTTP.
func (a HostAddr) baseURL() string {
	if a.NoSSL {
		return "http://" + a.Hostname
	}
	return "https://" + a.Hostname
}

// subscribeURL is the host's firehose, from after cursor (none when the
// cursor is unknown: live).
func (a HostAddr) subscribeURL(cursor int64) string {
	scheme := "wss://"
	if a.NoSSL {
		scheme = "ws://"
	}
	u := scheme + a.Hostname + "/xrpc/com.atproto.sync.subscribeRepos"
	if cursor >= 0 {
		u += "?cursor=" + strconv.FormatInt(cursor, 10)
	}
	return u
}

// publicAddr reports whether ip may be crawled without
// --allow-insecure-hosts (see internal/netguard).
func publicAddr(ip netip.Addr) bool { return netguard.Public(ip) }

// guardedDialer returns a dialer that refuses non-public addresses unless
// allowInsecure. It checks the address actually dialed, after resolution,
// so a name that resolved to a public address at the crawl request and to
// a private one later is still refused.
func guardedDialer(allowInsecure bool, timeout time.Duration) *net.Dialer {
	d := netguard.Dialer(allowInsecure, timeout)
	if d.Control != nil {
		d.Control = func(network, address string, c syscall.RawConn) error {
			if err := netguard.Control(network, address, c); err != nil {
				return fmt.Errorf("%w: %w", ErrNonPublicHost, err)
			}
			return nil
		}
	}
	return d
}

// checkResolves resolves the host's name and refuses it when it has no
// address, or a non-public one (unless allowInsecure).
func checkResolves(ctx context.Context, r *net.Resolver, a HostAddr, allowInsecure bool) error {
	host := a.Hostname
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !allowInsecure && !publicAddr(ip) {
			return fmt.Errorf("%w: %s", ErrNonPublicHost, ip)
		}
		return nil
	}
	ips, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return fmt.Errorf("%w: %s does not resolve: %v", ErrHostUnreachable, host, err)
	}
	if allowInsecure {
		return nil
	}
	for _, ip := range ips {
		if !publicAddr(ip) {
			return fmt.Errorf("%w: %s has address %s", ErrNonPublicHost, host, ip)
		}
	}
	return nil
}

// checkAnswers asks the host whether it is an atproto service: GET
// /xrpc/_health, then com.atproto.server.describeServer, must answer 2xx.
// A service that says it is a relay (Server: atproto-relay, like the
// reference relay) is refused: relays are not crawled as hosts.
func checkAnswers(ctx context.Context, client *http.Client, a HostAddr) error {
	var last error
	for _, path := range []string{"/xrpc/_health", "/xrpc/com.atproto.server.describeServer"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.baseURL()+path, nil)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrHostUnreachable, err)
		}
		resp, err := client.Do(req)
		if err != nil {
			if errors.Is(err, ErrNonPublicHost) {
				return err
			}
			return fmt.Errorf("%w: %s: %v", ErrHostUnreachable, a.Hostname, err)
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if strings.Contains(resp.Header.Get("Server"), "atproto-relay") {
			return fmt.Errorf("%w: %s is a relay", ErrHostUnreachable, a.Hostname)
		}
		if resp.StatusCode/100 == 2 {
			return nil
		}
		last = fmt.Errorf("%w: %s: GET %s answered %s", ErrHostUnreachable, a.Hostname, path, resp.Status)
	}
	return last
}
