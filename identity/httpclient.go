package identity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"

	"github.com/reservoir-atproto/reservoir/internal/netguard"
)

// newHTTPClient returns the client every request goes through: the caller's
// (o.HTTPClient) or a default one, with the body limit added either way.
func newHTTPClient(o Options) *http.Client {
	var c http.Client
	if o.HTTPClient != nil {
		c = *o.HTTPClient
	} else {
		c = defaultHTTPClient(o)
	}
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c.Transport = limitTransport{next: next, max: MaxResponseBytes, userAgent: o.UserAgent}
	return &c
}

func defaultHTTPClient(o Options) http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, Resolver: o.DNSResolver, KeepAlive: 30 * time.Second}
	guarded := &net.Dialer{Timeout: dialer.Timeout, Resolver: dialer.Resolver, KeepAlive: dialer.KeepAlive, Control: refuseNonPublic}
	plc := o.plcHostPort()
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		if o.AllowInsecure || addr == plc {
			return dialer.DialContext(ctx, network, addr)
		}
		return guarded.DialContext(ctx, network, addr)
	}
	return http.Client{
		Timeout: o.Timeout,
		Transport: &http.Transport{
			DialContext:           dial,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: o.Timeout,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   16, // the directory gets most requests
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("identity: more than 5 redirects")
			}
			if req.URL.Scheme != "https" && !o.AllowInsecure {
				return fmt.Errorf("identity: redirect to %s: only https without AllowInsecure", req.URL.Redacted())
			}
			return nil
		},
	}
}

// refuseNonPublic is a net.Dialer Control function: it runs after name
// resolution, on the address about to be dialled, so a public name that
// resolves to 127.0.0.1 is refused too.
func refuseNonPublic(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("identity: dial %s: %w", address, err)
	}
	if !netguard.Public(ap.Addr()) {
		return fmt.Errorf("identity: dial %s: %w", address, ErrForbiddenAddress)
	}
	return nil
}

// limitTransport sets the User-Agent and cuts every response body at max
// bytes: a longer body fails with ErrResponseTooLarge instead of being read
// into memory.
type limitTransport struct {
	next      http.RoundTripper
	max       int64
	userAgent string
}

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("User-Agent") == "" {
		req = req.Clone(req.Context())
		req.Header.Set("User-Agent", t.userAgent)
	}
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > t.max {
		resp.Body.Close()
		return nil, fmt.Errorf("identity: %s: %w (%d bytes, limit %d)", req.URL.Redacted(), ErrResponseTooLarge, resp.ContentLength, t.max)
	}
	resp.Body = &limitedBody{ReadCloser: resp.Body, left: t.max, max: t.max}
	return resp, nil
}

type limitedBody struct {
	io.ReadCloser
	left, max int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// At the limit: one more byte means the body is too long.
		var one [1]byte
		n, err := b.ReadCloser.Read(one[:])
		if n > 0 {
			return 0, fmt.Errorf("identity: %w (over %d bytes)", ErrResponseTooLarge, b.max)
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
