package relay

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestParseHostAddr(t *testing.T) {
	type want struct {
		name  string
		noSSL bool
	}
	for _, c := range []struct {
		in       string
		secure   *want // without --allow-insecure-hosts; nil: refused
		insecure *want // with it; nil: refused
	}{
		{"pds.example.com", &want{"pds.example.com", false}, &want{"pds.example.com", false}},
		{"  PDS.Example.COM ", &want{"pds.example.com", false}, &want{"pds.example.com", false}},
		{"pds.example.com.", &want{"pds.example.com", false}, &want{"pds.example.com", false}},
		{"https://pds.example.com", &want{"pds.example.com", false}, &want{"pds.example.com", false}},
		{"https://pds.example.com/", &want{"pds.example.com", false}, &want{"pds.example.com", false}},
		{"wss://pds.example.com", &want{"pds.example.com", false}, &want{"pds.example.com", false}},
		{"HTTPS://PDS.example.com", &want{"pds.example.com", false}, &want{"pds.example.com", false}},
		{"http://pds.example.com", nil, &want{"pds.example.com", true}},
		{"ws://pds.example.com", nil, &want{"pds.example.com", true}},
		{"localhost", &want{"localhost", false}, &want{"localhost", false}},
		{"localhost:2583", &want{"localhost:2583", false}, &want{"localhost:2583", false}},
		{"http://localhost:2583", nil, &want{"localhost:2583", true}},
		{"pds.example.com:8080", nil, &want{"pds.example.com:8080", false}},
		{"pds.example.com:443", &want{"pds.example.com", false}, &want{"pds.example.com", false}},
		{"https://pds.example.com:443", &want{"pds.example.com", false}, &want{"pds.example.com", false}},
		{"http://pds.example.com:80", nil, &want{"pds.example.com", true}},
		{"http://pds.example.com:443", nil, &want{"pds.example.com:443", true}},
		{"127.0.0.1", nil, &want{"127.0.0.1", false}},
		{"http://127.0.0.1:2583", nil, &want{"127.0.0.1:2583", true}},
		{"[::1]:2583", nil, &want{"[::1]:2583", false}},
		{"pds.local", nil, &want{"pds.local", false}},
		{"pds.onion", nil, &want{"pds.onion", false}},
		{"", nil, nil},
		{"pds", nil, nil},
		{"ftp://pds.example.com", nil, nil},
		{"https://pds.example.com/xrpc", nil, nil},
		{"https://pds.example.com?x=1", nil, nil},
		{"https://pds.example.com#x", nil, nil},
		{"https://user@pds.example.com", nil, nil},
		{"pds.example.com/path", nil, nil},
		{"pds.example.com:0", nil, nil},
		{"pds.example.com:65536", nil, nil},
		{"pds.example.com:x", nil, nil},
		{"localhost:080", nil, nil},
		{"-pds.example.com", nil, nil},
		{"pds_1.example.com", nil, nil},
		{"pds.example.123", nil, nil},
		{"a b.example.com", nil, nil},
	} {
		for _, mode := range []struct {
			insecure bool
			want     *want
		}{{false, c.secure}, {true, c.insecure}} {
			got, err := ParseHostAddr(c.in, mode.insecure)
			switch {
			case mode.want == nil && err == nil:
				t.Errorf("%q (insecure %v): accepted as %+v", c.in, mode.insecure, got)
			case mode.want == nil && !errors.Is(err, ErrInvalidHostname):
				t.Errorf("%q (insecure %v): %v, want ErrInvalidHostname", c.in, mode.insecure, err)
			case mode.want != nil && err != nil:
				t.Errorf("%q (insecure %v): %v", c.in, mode.insecure, err)
			case mode.want != nil && (got.Hostname != mode.want.name || got.NoSSL != mode.want.noSSL):
				t.Errorf("%q (insecure %v): %+v, want %+v", c.in, mode.insecure, got, *mode.want)
			}
		}
	}
}

func TestHostAddrURLs(t *testing.T) {
	a := HostAddr{Hostname: "pds.example.com"}
	if a.baseURL() != "https://pds.example.com" || a.subscribeURL(-1) != "wss://pds.example.com/xrpc/com.atproto.sync.subscribeRepos" {
		t.Fatal(a.baseURL(), a.subscribeURL(-1))
	}
	b := HostAddr{Hostname: "localhost:2583", NoSSL: true}
	if b.baseURL() != "http://localhost:2583" || b.subscribeURL(0) != "ws://localhost:2583/xrpc/com.atproto.sync.subscribeRepos?cursor=0" {
		t.Fatal(b.baseURL(), b.subscribeURL(0))
	}
}

func TestPublicAddr(t *testing.T) {
	for s, want := range map[string]bool{
		"8.8.8.8": true, "1.1.1.1": true, "2606:4700:4700::1111": true, "93.184.216.34": true,
		"127.0.0.1": false, "127.8.9.1": false, "::1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false,
		"169.254.169.254": false, "fe80::1": false, "0.0.0.0": false, "::": false, "fc00::1": false, "fd12::1": false,
		"100.64.0.1": false, "224.0.0.1": false, "ff02::1": false, "::ffff:127.0.0.1": false, "::ffff:10.0.0.1": false,
		"::ffff:8.8.8.8": true, "0.1.2.3": false, "198.18.0.1": false, "255.255.255.255": false,
	} {
		if got := publicAddr(netip.MustParseAddr(s)); got != want {
			t.Errorf("publicAddr(%s) = %v, want %v", s, got, want)
		}
	}
}

// TestGuardedDialer: without --allow-insecure-hosts the dialer refuses a
// loopback address after resolution, whatever the name.
func TestGuardedDialer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	for _, host := range []string{"127.0.0.1", "localhost"} {
		c, err := guardedDialer(false, 0).DialContext(context.Background(), "tcp", net.JoinHostPort(host, port))
		if err == nil {
			c.Close()
			t.Fatalf("dialed %s", host)
		}
		if !errors.Is(err, ErrNonPublicHost) {
			t.Fatalf("%s: %v, want ErrNonPublicHost", host, err)
		}
	}
	c, err := guardedDialer(true, 0).DialContext(context.Background(), "tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatalf("insecure dialer: %v", err)
	}
	c.Close()
}

func TestCheckAnswers(t *testing.T) {
	ctx := context.Background()
	serve := func(h http.HandlerFunc) HostAddr {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return HostAddr{Hostname: srv.Listener.Addr().String(), NoSSL: true}
	}
	ok := serve(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/xrpc/_health" {
			t.Errorf("asked %s", r.URL.Path)
		}
	})
	if err := checkAnswers(ctx, http.DefaultClient, ok); err != nil {
		t.Fatal(err)
	}
	describeOnly := serve(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/xrpc/com.atproto.server.describeServer" {
			http.NotFound(w, r)
		}
	})
	if err := checkAnswers(ctx, http.DefaultClient, describeOnly); err != nil {
		t.Fatalf("a PDS without _health: %v", err)
	}
	broken := serve(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	if err := checkAnswers(ctx, http.DefaultClient, broken); !errors.Is(err, ErrHostUnreachable) {
		t.Fatalf("a host answering 502: %v", err)
	}
	relayHost := serve(func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Server", "atproto-relay") })
	if err := checkAnswers(ctx, http.DefaultClient, relayHost); !errors.Is(err, ErrHostUnreachable) {
		t.Fatalf("a relay: %v", err)
	}
	guarded := &http.Client{Transport: &http.Transport{DialContext: guardedDialer(false, 0).DialContext}}
	if err := checkAnswers(ctx, guarded, ok); !errors.Is(err, ErrNonPublicHost) {
		t.Fatalf("loopback through the guarded client: %v", err)
	}
}

func TestCheckResolves(t *testing.T) {
	ctx := context.Background()
	r := net.DefaultResolver
	if err := checkResolves(ctx, r, HostAddr{Hostname: "localhost:2583"}, false); !errors.Is(err, ErrNonPublicHost) {
		t.Fatalf("localhost, secure: %v", err)
	}
	if err := checkResolves(ctx, r, HostAddr{Hostname: "localhost:2583"}, true); err != nil {
		t.Fatalf("localhost, insecure: %v", err)
	}
	if err := checkResolves(ctx, r, HostAddr{Hostname: "10.0.0.1"}, false); !errors.Is(err, ErrNonPublicHost) {
		t.Fatalf("private IP: %v", err)
	}
	if err := checkResolves(ctx, r, HostAddr{Hostname: "[::1]:80"}, false); !errors.Is(err, ErrNonPublicHost) {
		t.Fatalf("::1: %v", err)
	}
	if err := checkResolves(ctx, r, HostAddr{Hostname: "8.8.8.8"}, false); err != nil {
		t.Fatalf("public IP: %v", err)
	}
	if err := checkResolves(ctx, r, HostAddr{Hostname: "no-such-host.invalid"}, true); !errors.Is(err, ErrHostUnreachable) {
		t.Fatalf("a name that does not resolve: %v", err)
	}
}
