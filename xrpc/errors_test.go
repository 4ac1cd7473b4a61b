package xrpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The status and name of every constructor, as decided in sync-spec §10
// and the contract (404 for the *NotFound names, 403 for inactive repos,
// 401 for auth) and spec:xrpc for the generic ones.
var constructorTable = []struct {
	err    *Error
	status int
	name   string
}{
	{RepoNotFound("did:plc:abc"), 404, "RepoNotFound"},
	{RecordNotFound("app.bsky.feed.post/3k"), 404, "RecordNotFound"},
	{BlobNotFound("bafkrei"), 404, "BlobNotFound"},
	{BlockNotFound("bafy1", "bafy2"), 404, "BlockNotFound"},
	{HeadNotFound("did:plc:abc"), 404, "HeadNotFound"},
	{HostNotFound("pds.example.com"), 404, "HostNotFound"},
	{RepoTakendown("did:plc:abc"), 403, "RepoTakendown"},
	{RepoSuspended("did:plc:abc"), 403, "RepoSuspended"},
	{RepoDeactivated("did:plc:abc"), 403, "RepoDeactivated"},
	{HostBanned("bad.example.com"), 403, "HostBanned"},
	{InvalidRequest("bad"), 400, "InvalidRequest"},
	{InvalidRequestf("bad %d", 1), 400, "InvalidRequest"},
	{InvalidSwap("swap"), 400, "InvalidSwap"},
	{FutureCursor(), 400, "FutureCursor"},
	{ConsumerTooSlow(), 400, "ConsumerTooSlow"},
	{InvalidHandle("no"), 400, "InvalidHandle"},
	{HandleNotAvailable("a.example.com"), 400, "HandleNotAvailable"},
	{UnsupportedDomain("no"), 400, "UnsupportedDomain"},
	{UnresolvableDid("did:plc:abc"), 400, "UnresolvableDid"},
	{IncompatibleDidDoc("no"), 400, "IncompatibleDidDoc"},
	{AuthRequired("who"), 401, "AuthenticationRequired"},
	{Forbidden("no"), 403, "Forbidden"},
	{MethodNotAllowed("PUT", "GET", "HEAD"), 405, "InvalidRequest"},
	{PayloadTooLarge(10), 413, "PayloadTooLarge"},
	{UnsupportedMediaType("text/plain"), 415, "UnsupportedMediaType"},
	{RateLimitExceeded(time.Second), 429, "RateLimitExceeded"},
	{Internal(errors.New("disk on fire")), 500, "InternalServerError"},
	{MethodNotImplemented(), 501, "MethodNotImplemented"},
	{UpstreamFailure("pds down"), 502, "UpstreamFailure"},
	{NotEnoughResources("busy"), 503, "NotEnoughResources"},
	{UpstreamTimeout("slow"), 504, "UpstreamTimeout"},
}

func TestConstructorsStatusAndName(t *testing.T) {
	for _, tc := range constructorTable {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err.Status != tc.status || tc.err.Name != tc.name {
				t.Fatalf("got %d %s, want %d %s", tc.err.Status, tc.err.Name, tc.status, tc.name)
			}
			// Served, the response says the same.
			w := runHandler(t, Options{}, func(http.ResponseWriter, *http.Request) error { return tc.err })
			wantError(t, w, tc.status, tc.name)
		})
	}
}

func TestConstructorMessages(t *testing.T) {
	for _, tc := range []struct {
		err  *Error
		want string
	}{
		{RepoNotFound("did:plc:abc"), "Could not find repo: did:plc:abc"},
		{RepoTakendown("did:plc:abc"), "Repo has been takendown: did:plc:abc"},
		{BlockNotFound("bafy1", "bafy2"), "Could not find blocks: bafy1, bafy2"},
		{MethodNotAllowed("POST", "GET", "HEAD"), "Incorrect HTTP method (POST) expected GET"},
		{MethodNotAllowed("POST"), "Incorrect HTTP method (POST)"},
		{PayloadTooLarge(1024), "Request body is larger than 1024 bytes"},
		{Internal(errors.New("secret")), "Internal Server Error"},
		{MethodNotImplemented(), "Method Not Implemented"},
		{InvalidRequestf("limit %d", 5), "limit 5"},
	} {
		if tc.err.Message != tc.want {
			t.Errorf("%s: message %q, want %q", tc.err.Name, tc.err.Message, tc.want)
		}
	}
}

func TestErrorHeaders(t *testing.T) {
	for _, tc := range []struct {
		err          *Error
		header, want string
	}{
		{AuthRequired("x"), "Www-Authenticate", `Bearer realm="xrpc"`},
		{MethodNotAllowed("PUT", "GET", "HEAD"), "Allow", "GET, HEAD"},
		{RateLimitExceeded(30 * time.Second), "Retry-After", "30"},
		{RateLimitExceeded(1500 * time.Millisecond), "Retry-After", "2"}, // rounded up
		{RateLimitExceeded(0), "Retry-After", "1"},                       // never 0
		{RateLimitExceeded(-time.Second), "Retry-After", "1"},
	} {
		w := runHandler(t, Options{}, func(http.ResponseWriter, *http.Request) error { return tc.err })
		if got := w.Header().Get(tc.header); got != tc.want {
			t.Errorf("%s: %s %q, want %q", tc.err.Name, tc.header, got, tc.want)
		}
	}
	w := runHandler(t, Options{}, func(http.ResponseWriter, *http.Request) error { return AuthRequired("x") })
	if got := w.Header().Values("Www-Authenticate"); len(got) != 2 || !strings.HasPrefix(got[1], "Basic ") {
		t.Errorf("WWW-Authenticate %q, want a Bearer and a Basic challenge", got)
	}
}

func TestErrorMethods(t *testing.T) {
	cause := errors.New("pebble: closed")
	base := RepoNotFound("did:plc:abc")
	e := base.WithCause(cause)
	if base.Cause != nil {
		t.Error("WithCause changed the original")
	}
	if !errors.Is(e, cause) {
		t.Error("errors.Is does not reach the cause")
	}
	if got, want := e.Error(), "xrpc: 404 RepoNotFound: Could not find repo: did:plc:abc: pebble: closed"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	wrapped := fmt.Errorf("host: getRepo: %w", e)
	var xe *Error
	if !errors.As(wrapped, &xe) || xe.Name != "RepoNotFound" {
		t.Error("errors.As does not find a wrapped *Error")
	}
}

func TestWrappedErrorKeepsStatus(t *testing.T) {
	w := runHandler(t, Options{}, func(http.ResponseWriter, *http.Request) error {
		return fmt.Errorf("host: %w", RepoTakendown("did:plc:abc"))
	})
	if msg := wantError(t, w, 403, "RepoTakendown"); msg != "Repo has been takendown: did:plc:abc" {
		t.Errorf("message %q", msg)
	}
}

func TestInternalErrorNeverLeaksCause(t *testing.T) {
	const secret = "open /var/lib/reservoir/secret.key: permission denied"
	for name, err := range map[string]error{
		"plain":          errors.New(secret),
		"wrapped":        fmt.Errorf("store: %w", errors.New(secret)),
		"Internal":       Internal(errors.New(secret)),
		"5xx with cause": NotEnoughResources("busy").WithCause(errors.New(secret)),
	} {
		t.Run(name, func(t *testing.T) {
			log, logs := newLogger()
			w := runHandler(t, Options{Logger: log}, func(http.ResponseWriter, *http.Request) error { return err })
			if strings.Contains(w.Body.String(), "secret") || strings.Contains(w.Body.String(), "permission") {
				t.Fatalf("body leaks the cause: %s", w.Body)
			}
			if name != "5xx with cause" {
				if w.Body.String() != `{"error":"InternalServerError","message":"Internal Server Error"}` {
					t.Errorf("body %s", w.Body)
				}
				wantError(t, w, 500, "InternalServerError")
			}
			recs := logs.records(t)
			if len(recs) != 1 || recs[0]["level"] != "ERROR" || !strings.Contains(fmt.Sprint(recs[0]["cause"]), secret) {
				t.Errorf("want one ERROR line with the cause, got %v", recs)
			}
			if recs[0]["nsid"] != "com.example.test" {
				t.Errorf("log nsid %v", recs[0]["nsid"])
			}
		})
	}
}

func TestClientErrorsAreNotLogged(t *testing.T) {
	log, logs := newLogger()
	runHandler(t, Options{Logger: log}, func(http.ResponseWriter, *http.Request) error {
		return RepoNotFound("did:plc:abc")
	})
	if s := logs.String(); s != "" {
		t.Errorf("4xx logged: %s", s)
	}
}

func TestOddErrorsBecome500(t *testing.T) {
	var typedNil *Error
	for name, err := range map[string]error{
		"typed nil":      typedNil,
		"status 0":       &Error{Name: "Weird", Message: "no status"},
		"status 302":     NewError(302, "Found", "elsewhere"),
		"status 200":     NewError(200, "OK", "fine?"),
		"status 600":     NewError(600, "Beyond", "no"),
		"deadline":       context.DeadlineExceeded,
		"canceled alone": context.Canceled, // the client is still there
	} {
		t.Run(name, func(t *testing.T) {
			w := runHandler(t, Options{}, func(http.ResponseWriter, *http.Request) error { return err })
			wantError(t, w, 500, "InternalServerError")
		})
	}
}

func TestErrorDefaults(t *testing.T) {
	for _, tc := range []struct {
		status int
		name   string
	}{
		{400, "InvalidRequest"}, {401, "AuthenticationRequired"}, {403, "Forbidden"},
		{404, "XRPCNotSupported"}, {406, "NotAcceptable"}, {413, "PayloadTooLarge"},
		{415, "UnsupportedMediaType"}, {429, "RateLimitExceeded"}, {500, "InternalServerError"},
		{501, "MethodNotImplemented"}, {502, "UpstreamFailure"}, {503, "NotEnoughResources"},
		{504, "UpstreamTimeout"}, {418, "InvalidRequest"}, {507, "InternalServerError"},
	} {
		w := runHandler(t, Options{}, func(http.ResponseWriter, *http.Request) error {
			return &Error{Status: tc.status}
		})
		msg := wantError(t, w, tc.status, tc.name)
		if msg != http.StatusText(tc.status) {
			t.Errorf("%d: message %q, want the status text", tc.status, msg)
		}
	}
}

func TestErrorDropsContentHeaders(t *testing.T) {
	w := runHandler(t, Options{}, func(w http.ResponseWriter, r *http.Request) error {
		h := w.Header()
		h.Set("Content-Type", "image/png")
		h.Set("Content-Disposition", `attachment; filename="x"`)
		h.Set("Content-Length", "99999")
		h.Set("X-Request-Id", "kept")
		return BlobNotFound("bafkrei")
	})
	wantError(t, w, 404, "BlobNotFound")
	if w.Header().Get("Content-Disposition") != "" {
		t.Error("Content-Disposition of the blob went out with the error")
	}
	if got := w.Header().Get("Content-Length"); got != fmt.Sprint(w.Body.Len()) {
		t.Errorf("Content-Length %q for a %d-byte body", got, w.Body.Len())
	}
	if w.Header().Get("X-Request-Id") != "kept" {
		t.Error("an unrelated header was dropped")
	}
}

func TestPanicRecovered(t *testing.T) {
	log, logs := newLogger()
	w := runHandler(t, Options{Logger: log}, func(http.ResponseWriter, *http.Request) error {
		var m map[string]int
		m["boom"] = 1 // a nil-map panic
		return nil
	})
	if w.Body.String() != `{"error":"InternalServerError","message":"Internal Server Error"}` {
		t.Errorf("body %s", w.Body)
	}
	wantError(t, w, 500, "InternalServerError")
	recs := logs.records(t)
	if len(recs) != 1 {
		t.Fatalf("%d log lines, want 1: %v", len(recs), recs)
	}
	cause, _ := recs[0]["cause"].(string)
	stack, _ := recs[0]["stack"].(string)
	if !strings.Contains(cause, "assignment to entry in nil map") {
		t.Errorf("cause %q", cause)
	}
	if !strings.Contains(stack, "TestPanicRecovered") {
		t.Errorf("stack does not show the panicking function: %q", stack)
	}
}

func TestPanicValueNotError(t *testing.T) {
	w := runHandler(t, Options{}, func(http.ResponseWriter, *http.Request) error { panic(42) })
	wantError(t, w, 500, "InternalServerError")
}

// A handler that fails after its response started cannot send an error
// body; the connection is cut so the client sees a broken transfer.
func TestFailureAfterResponseStartedAbortsConnection(t *testing.T) {
	for name, h := range map[string]HandlerFunc{
		"error": func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Content-Type", ContentTypeCAR)
			w.Write([]byte("partial"))
			http.NewResponseController(w).Flush()
			return errors.New("store: block missing mid-stream")
		},
		"panic": func(w http.ResponseWriter, r *http.Request) error {
			w.Write([]byte("partial"))
			http.NewResponseController(w).Flush()
			panic("mid-stream")
		},
		"abort": func(w http.ResponseWriter, r *http.Request) error {
			w.Write([]byte("partial"))
			http.NewResponseController(w).Flush()
			panic(http.ErrAbortHandler)
		},
	} {
		t.Run(name, func(t *testing.T) {
			log, logs := newLogger()
			s := NewServer(Options{Logger: log})
			s.Query("com.example.test", h)
			ts := httptest.NewServer(s)
			defer ts.Close()
			resp, err := http.Get(ts.URL + "/xrpc/com.example.test")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			body, err := io.ReadAll(resp.Body)
			if err == nil {
				t.Fatalf("read %q without error: the client took a truncated body for a whole one", body)
			}
			if string(body) != "partial" {
				t.Errorf("body %q", body)
			}
			if name != "abort" && !strings.Contains(logs.String(), "after the response started") {
				t.Errorf("not logged: %s", logs)
			}
		})
	}
}

func TestAbortBeforeResponse(t *testing.T) {
	s := NewServer(Options{})
	s.Query("com.example.test", func(http.ResponseWriter, *http.Request) error { return http.ErrAbortHandler })
	ts := httptest.NewServer(s)
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/xrpc/com.example.test")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got a response (%d) from an aborted handler", resp.StatusCode)
	}
}

// A client that goes away is not an error worth an ERROR line.
func TestClientGoneIsNotLoggedAsError(t *testing.T) {
	log, logs := newLogger()
	s := NewServer(Options{Logger: log})
	s.Query("com.example.test", func(w http.ResponseWriter, r *http.Request) error {
		<-r.Context().Done()
		return fmt.Errorf("store: reading: %w", r.Context().Err())
	})
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequest(http.MethodGet, "/xrpc/com.example.test", nil).WithContext(ctx)
	cancel()
	s.ServeHTTP(httptest.NewRecorder(), r)
	for _, rec := range logs.records(t) {
		if rec["level"] == "ERROR" {
			t.Errorf("logged as error: %v", rec)
		}
	}
}

// The adapter's writer passes Hijack through, for websocket upgrades.
func TestSubscriptionHijack(t *testing.T) {
	s := NewServer(Options{})
	s.Subscription("com.example.subscribe", func(w http.ResponseWriter, r *http.Request) error {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return err
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\nhello")
		return brw.Flush()
	})
	ts := httptest.NewServer(s)
	defer ts.Close()
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /xrpc/com.example.subscribe HTTP/1.1\r\nHost: x\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n")
	got, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(got), "HTTP/1.1 101 ") || !strings.HasSuffix(string(got), "\r\n\r\nhello") {
		t.Errorf("raw response %q", got)
	}
}

// http.ResponseController reaches the real connection through Unwrap.
func TestResponseControllerThroughAdapter(t *testing.T) {
	s := NewServer(Options{})
	s.Query("com.example.test", func(w http.ResponseWriter, r *http.Request) error {
		if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			return err
		}
		return WriteJSON(w, 200, map[string]bool{"ok": true})
	})
	ts := httptest.NewServer(s)
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/xrpc/com.example.test")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("status %d: SetWriteDeadline did not reach the connection", resp.StatusCode)
	}
}

func TestFlushThroughAdapter(t *testing.T) {
	w := runHandler(t, Options{}, func(w http.ResponseWriter, r *http.Request) error {
		w.Write([]byte("x"))
		return http.NewResponseController(w).Flush()
	})
	if !w.Flushed || w.Body.String() != "x" {
		t.Errorf("flushed=%v body=%q", w.Flushed, w.Body)
	}
}
