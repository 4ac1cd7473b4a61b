package identity

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

func TestRefuseNonPublic(t *testing.T) {
	for _, tc := range []struct {
		addr    string
		allowed bool
	}{
		{"8.8.8.8:443", true},
		{"[2606:4700::1111]:443", true},
		{"[::ffff:8.8.8.8]:443", true},
		{"100.128.0.1:443", true}, // just past the shared range
		{"[2001:4860:4860::8888]:8443", true},
		{"127.0.0.1:443", false},
		{"127.8.9.10:80", false},
		{"[::1]:443", false},
		{"[::ffff:127.0.0.1]:443", false},
		{"10.0.0.1:443", false},
		{"172.16.5.4:443", false},
		{"192.168.1.1:443", false},
		{"100.64.1.1:443", false},
		{"169.254.169.254:80", false}, // cloud metadata
		{"[fe80::1]:443", false},
		{"[fd00::1]:443", false},
		{"0.0.0.0:443", false},
		{"[::]:443", false},
		{"224.0.0.1:443", false},
		{"[ff02::1]:443", false},
		{"255.255.255.255:443", false},
	} {
		err := refuseNonPublic("tcp", tc.addr, nil)
		if tc.allowed && err != nil {
			t.Errorf("%s: %v", tc.addr, err)
		}
		if !tc.allowed && !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("%s: %v, want ErrForbiddenAddress", tc.addr, err)
		}
	}
	if err := refuseNonPublic("tcp", "not-an-address:443", nil); err == nil {
		t.Error("unparsable address allowed")
	}
}

// TestNonPublicGuard: with the default client, a handle or did:web host
// whose name resolves to loopback is not fetched unless AllowInsecure.
func TestNonPublicGuard(t *testing.T) {
	dns := newFakeDNS(t)
	dns.setA("evil.example.com", "127.0.0.1")
	secure, err := New(Options{DNSResolver: dns.resolver(), Timeout: 5e9})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := secure.LookupHandle(ctx, "evil.example.com"); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("handle: %v, want ErrForbiddenAddress", err)
	}
	if _, err := secure.LookupDID(ctx, "did:web:evil.example.com"); !errors.Is(err, ErrForbiddenAddress) || !errors.Is(err, ErrDIDResolutionFailed) {
		t.Errorf("did:web: %v, want ErrForbiddenAddress", err)
	}
	insecure, err := New(Options{DNSResolver: dns.resolver(), Timeout: 5e9, AllowInsecure: true})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing listens on 127.0.0.1:443: the dial is tried and fails there.
	if _, err := insecure.LookupHandle(ctx, "evil.example.com"); err == nil || errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("AllowInsecure: %v", err)
	}
}

func TestResponseLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(n))
		}
		for n > 0 {
			k := min(n, 4096)
			w.Write([]byte(strings.Repeat("a", k)))
			w.(http.Flusher).Flush()
			n -= k
		}
	}))
	defer srv.Close()
	for _, o := range []Options{{AllowInsecure: true}, {HTTPClient: srv.Client()}} {
		o, err := o.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		c := newHTTPClient(o)
		for _, tc := range []struct {
			query string
			ok    bool
		}{
			{"n=10", true},
			{"n=" + strconv.Itoa(MaxResponseBytes), true},
			{"n=" + strconv.Itoa(MaxResponseBytes) + "&chunked=1", true},
			{"n=" + strconv.Itoa(MaxResponseBytes+1), false},
			{"n=" + strconv.Itoa(MaxResponseBytes+1) + "&chunked=1", false},
			{"n=" + strconv.Itoa(10*MaxResponseBytes) + "&chunked=1", false},
		} {
			resp, err := c.Get(srv.URL + "/?" + tc.query)
			var body []byte
			if err == nil {
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			if tc.ok {
				if err != nil {
					t.Errorf("%s: %v", tc.query, err)
				}
				continue
			}
			if !errors.Is(err, ErrResponseTooLarge) || len(body) > MaxResponseBytes {
				t.Errorf("%s: %v after %d bytes, want ErrResponseTooLarge", tc.query, err, len(body))
			}
		}
	}
}

func TestRedirectPolicy(t *testing.T) {
	for _, insecure := range []bool{false, true} {
		o, _ := Options{AllowInsecure: insecure}.withDefaults()
		c := defaultHTTPClient(o)
		req := func(u string) *http.Request { r, _ := http.NewRequest("GET", u, nil); return r }
		via := []*http.Request{req("https://a.example.com/")}
		if err := c.CheckRedirect(req("https://b.example.com/"), via); err != nil {
			t.Errorf("https redirect: %v", err)
		}
		if err := c.CheckRedirect(req("http://b.example.com/"), via); (err == nil) != insecure {
			t.Errorf("insecure=%v: http redirect: %v", insecure, err)
		}
		five := []*http.Request{via[0], via[0], via[0], via[0], via[0]}
		if err := c.CheckRedirect(req("https://b.example.com/"), five); err == nil {
			t.Error("sixth redirect followed")
		}
	}
}

// TestWellKnownRedirect: handle resolution over HTTPS follows redirects.
func TestWellKnownRedirect(t *testing.T) {
	e, dids := handleEnv(t, Options{})
	e.net.set("alice.test", "/.well-known/atproto-did", http.StatusFound, []byte("https://hosting.example.com/alice"))
	e.net.set("hosting.example.com", "/alice", http.StatusOK, []byte(dids["alice"]))
	id, err := e.r.LookupHandle(ctx, "alice.test")
	if err != nil || id.DID != syntax.DID(dids["alice"]) {
		t.Fatalf("%v", err)
	}
	if e.net.count("hosting.example.com", "/alice") != 1 {
		t.Error("redirect not followed")
	}
}
