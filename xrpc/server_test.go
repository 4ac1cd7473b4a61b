package xrpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func okJSON(w http.ResponseWriter, r *http.Request) error {
	return WriteJSON(w, http.StatusOK, map[string]string{"method": r.Method})
}

func newTestServer() *Server {
	s := NewServer(Options{Version: "0.1.0"})
	s.Query("com.atproto.sync.getLatestCommit", okJSON)
	s.Procedure("com.atproto.sync.requestCrawl", okJSON)
	s.Subscription("com.atproto.sync.subscribeRepos", okJSON)
	return s
}

func TestRouting(t *testing.T) {
	s := newTestServer()
	for _, tc := range []struct {
		method, path string
		status       int
		name         string // error name, "" for success
		allow        string
	}{
		{"GET", "/xrpc/com.atproto.sync.getLatestCommit", 200, "", ""},
		{"HEAD", "/xrpc/com.atproto.sync.getLatestCommit", 200, "", ""},
		{"POST", "/xrpc/com.atproto.sync.getLatestCommit", 405, "InvalidRequest", "GET, HEAD"},
		{"PUT", "/xrpc/com.atproto.sync.getLatestCommit", 405, "InvalidRequest", "GET, HEAD"},
		{"DELETE", "/xrpc/com.atproto.sync.getLatestCommit", 405, "InvalidRequest", "GET, HEAD"},
		{"POST", "/xrpc/com.atproto.sync.requestCrawl", 200, "", ""},
		{"GET", "/xrpc/com.atproto.sync.requestCrawl", 405, "InvalidRequest", "POST"},
		{"HEAD", "/xrpc/com.atproto.sync.requestCrawl", 405, "InvalidRequest", "POST"},
		{"GET", "/xrpc/com.atproto.sync.subscribeRepos", 200, "", ""},
		{"POST", "/xrpc/com.atproto.sync.subscribeRepos", 405, "InvalidRequest", "GET"},
		{"HEAD", "/xrpc/com.atproto.sync.subscribeRepos", 405, "InvalidRequest", "GET"},
		{"GET", "/xrpc/com.atproto.sync.getRepo", 501, "MethodNotImplemented", ""},
		{"POST", "/xrpc/com.atproto.sync.getRepo", 501, "MethodNotImplemented", ""},
		{"GET", "/xrpc/", 501, "MethodNotImplemented", ""},
		{"GET", "/xrpc/not-an-nsid", 501, "MethodNotImplemented", ""},
		{"GET", "/xrpc/com.atproto.sync.getLatestCommit/extra", 501, "MethodNotImplemented", ""},
		{"GET", "/xrpc/COM.ATPROTO.SYNC.GETLATESTCOMMIT", 501, "MethodNotImplemented", ""},
		{"GET", "/xrpc", 404, "NotFound", ""},
		{"GET", "/other", 404, "NotFound", ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			w := serve(s, tc.method, tc.path, nil, nil)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, tc.status, w.Body)
			}
			if got := w.Header().Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
			// The recorder keeps HEAD bodies; a real server drops them
			// (TestHeadOverHTTP).
			switch {
			case tc.name != "":
				wantError(t, w, tc.status, tc.name)
			default:
				var got map[string]string
				if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got["method"] != tc.method {
					t.Errorf("body %s: handler did not run for %s", w.Body, tc.method)
				}
			}
		})
	}
}

func TestUnknownMethodBody(t *testing.T) {
	w := serve(newTestServer(), "GET", "/xrpc/com.example.nope", nil, nil)
	if got := w.Body.String(); got != `{"error":"MethodNotImplemented","message":"Method Not Implemented"}` {
		t.Errorf("body %s", got)
	}
}

func TestWrongMethodMessage(t *testing.T) {
	w := serve(newTestServer(), "POST", "/xrpc/com.atproto.sync.getLatestCommit", nil, nil)
	if msg := wantError(t, w, 405, "InvalidRequest"); msg != "Incorrect HTTP method (POST) expected GET" {
		t.Errorf("message %q", msg)
	}
}

func TestHeadOverHTTP(t *testing.T) {
	ts := httptest.NewServer(newTestServer())
	defer ts.Close()
	resp, err := http.Head(ts.URL + "/xrpc/com.atproto.sync.getLatestCommit")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(body) != 0 {
		t.Errorf("HEAD: status %d, %d body bytes", resp.StatusCode, len(body))
	}
	if ct := resp.Header.Get("Content-Type"); ct != ContentTypeJSON {
		t.Errorf("HEAD Content-Type %q", ct)
	}
	// Content-Length is the GET body's length.
	if resp.ContentLength != int64(len(`{"method":"HEAD"}`)) {
		t.Errorf("HEAD Content-Length %d", resp.ContentLength)
	}
}

func TestHandlePanicsOnProgrammingErrors(t *testing.T) {
	for name, register := range map[string]func(s *Server){
		"invalid NSID": func(s *Server) { s.Query("getRepo", okJSON) },
		"empty NSID":   func(s *Server) { s.Query("", okJSON) },
		"duplicate": func(s *Server) {
			s.Query("com.example.a", okJSON)
			s.Procedure("com.example.a", okJSON)
		},
		"nil handler": func(s *Server) { s.Query("com.example.a", nil) },
		"bad kind":    func(s *Server) { s.Handle(Route{NSID: "com.example.a"}, okJSON) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if v := recover(); v == nil {
					t.Error("no panic")
				} else if !strings.HasPrefix(fmt.Sprint(v), "xrpc: ") {
					t.Errorf("panic %q does not say where", v)
				}
			}()
			register(NewServer(Options{}))
		})
	}
}

func TestHealth(t *testing.T) {
	var failing error
	log, logs := newLogger()
	s := NewServer(Options{Version: "1.2.3", Logger: log, Health: func(context.Context) error { return failing }})

	w := serve(s, "GET", "/xrpc/_health", nil, nil)
	if w.Code != 200 || w.Body.String() != `{"version":"1.2.3"}` {
		t.Errorf("healthy: %d %s", w.Code, w.Body)
	}
	if w := serve(s, "HEAD", "/xrpc/_health", nil, nil); w.Code != 200 {
		t.Errorf("HEAD: %d", w.Code)
	}
	w = serve(s, "POST", "/xrpc/_health", nil, nil)
	wantError(t, w, 405, "InvalidRequest")
	if w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("Allow %q", w.Header().Get("Allow"))
	}

	failing = errors.New("pebble: disk full")
	w = serve(s, "GET", "/xrpc/_health", nil, nil)
	if w.Code != 503 {
		t.Errorf("failing: status %d", w.Code)
	}
	var body map[string]string
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body["version"] != "1.2.3" || body["error"] != "ServiceUnavailable" || strings.Contains(w.Body.String(), "disk") {
		t.Errorf("failing: body %s", w.Body)
	}
	if !strings.Contains(logs.String(), "pebble: disk full") {
		t.Errorf("health failure not logged: %s", logs)
	}
}

func TestHealthWithoutCheck(t *testing.T) {
	w := serve(NewServer(Options{}), "GET", "/xrpc/_health", nil, nil)
	if w.Code != 200 || w.Body.String() != `{"version":""}` {
		t.Errorf("%d %s", w.Code, w.Body)
	}
}

// The server is one handler among others in the process's mux.
func TestMountedInParentMux(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(Options{Metrics: m, Version: "v"})
	s.Query("com.atproto.sync.listRepos", okJSON)
	auth := &Auth{AdminPassword: "hunter2"}

	mux := http.NewServeMux()
	mux.Handle(PathPrefix, s)
	mux.Handle("/admin/", s.Endpoint("admin", auth.RequireAdmin(func(w http.ResponseWriter, r *http.Request) error {
		return WriteJSON(w, 200, map[string]string{"path": r.URL.Path})
	})))
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	if w := serve(mux, "GET", "/xrpc/com.atproto.sync.listRepos", nil, nil); w.Code != 200 {
		t.Errorf("xrpc: %d", w.Code)
	}
	if w := serve(mux, "GET", "/xrpc/_health", nil, nil); w.Code != 200 {
		t.Errorf("health: %d", w.Code)
	}
	w := serve(mux, "GET", "/admin/hosts", nil, nil)
	wantError(t, w, 401, "AuthenticationRequired")
	r := httptest.NewRequest("GET", "/admin/hosts", nil)
	r.SetBasicAuth("admin", "hunter2")
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	if w.Code != 200 || w.Body.String() != `{"path":"/admin/hosts"}` {
		t.Errorf("admin: %d %s", w.Code, w.Body)
	}
	w = serve(mux, "GET", "/metrics", nil, nil)
	for _, want := range []string{
		`xrpc_requests_total{code="200",nsid="com.atproto.sync.listRepos"} 1`,
		`xrpc_requests_total{code="401",nsid="admin"} 1`,
		`xrpc_requests_total{code="200",nsid="admin"} 1`,
		`xrpc_requests_total{code="200",nsid="_health"} 1`,
	} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// Registration may race with serving without data races; a method is
// served once registered.
func TestRegisterWhileServing(t *testing.T) {
	s := NewServer(Options{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				s.Query(fmt.Sprintf("com.example.m%dx%d", i, j), okJSON)
			}
		}()
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				w := serve(s, "GET", fmt.Sprintf("/xrpc/com.example.m0x%d", j), nil, nil)
				if w.Code != 200 && w.Code != 501 {
					t.Errorf("status %d", w.Code)
				}
			}
		}()
	}
	wg.Wait()
	for i := range 4 {
		for j := range 50 {
			if w := serve(s, "GET", fmt.Sprintf("/xrpc/com.example.m%dx%d", i, j), nil, nil); w.Code != 200 {
				t.Fatalf("m%dx%d: %d", i, j, w.Code)
			}
		}
	}
}

func TestRouteBodyLimit(t *testing.T) {
	read := func(w http.ResponseWriter, r *http.Request) error {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return fmt.Errorf("importing: %w", err)
		}
		return WriteJSON(w, 200, map[string]int{"n": len(b)})
	}
	s := NewServer(Options{MaxBodyBytes: 10})
	s.Procedure("com.example.default", read)
	s.Handle(Route{NSID: "com.example.big", Kind: KindProcedure, MaxBodyBytes: 20}, read)
	s.Handle(Route{NSID: "com.example.unlimited", Kind: KindProcedure, MaxBodyBytes: -1}, read)

	for _, tc := range []struct {
		nsid   string
		size   int
		status int
	}{
		{"com.example.default", 10, 200},
		{"com.example.default", 11, 413},
		{"com.example.big", 20, 200},
		{"com.example.big", 21, 413},
		{"com.example.unlimited", 5000, 200},
	} {
		// io.MultiReader hides the length: the limit is found while reading.
		body := io.MultiReader(strings.NewReader(strings.Repeat("x", tc.size)))
		w := serve(s, "POST", "/xrpc/"+tc.nsid, body, nil)
		if w.Code != tc.status {
			t.Errorf("%s with %d bytes: status %d, want %d", tc.nsid, tc.size, w.Code, tc.status)
		}
		if tc.status == 413 {
			wantError(t, w, 413, "PayloadTooLarge")
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindQuery: "query", KindProcedure: "procedure", KindSubscription: "subscription", 9: "Kind(9)"} {
		if k.String() != want {
			t.Errorf("%d: %q", k, k.String())
		}
	}
}
