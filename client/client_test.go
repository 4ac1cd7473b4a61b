package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

func TestServiceURL(t *testing.T) {
	good := map[string]string{
		"https://bsky.network":     "https://bsky.network",
		"wss://bsky.network/":      "https://bsky.network",
		"ws://localhost:2480":      "http://localhost:2480",
		"http://127.0.0.1:2480///": "http://127.0.0.1:2480",
		"wss://relay.example/xrpc/com.atproto.sync.subscribeRepos": "https://relay.example",
		"https://proxy.example/pds/":                               "https://proxy.example/pds",
	}
	for in, want := range good {
		if got, err := ServiceURL(in); err != nil || got != want {
			t.Errorf("ServiceURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "bsky.network", "ftp://x", "https://", "https://x?cursor=1", "https://x#f", "mailto:a@b"} {
		if _, err := ServiceURL(in); !errors.Is(err, ErrBadURL) {
			t.Errorf("ServiceURL(%q): %v", in, err)
		}
	}
}

// fakeXRPC answers /xrpc/<nsid> with the handler's status, headers and body
// for the n-th request (from 0) and records the requests.
type fakeXRPC struct {
	mu       sync.Mutex
	requests []*http.Request
	url      string
}

func newFakeXRPC(t *testing.T, h func(n int, w http.ResponseWriter, r *http.Request)) *fakeXRPC {
	f := &fakeXRPC{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		n := len(f.requests)
		f.requests = append(f.requests, r)
		f.mu.Unlock()
		h(n, w, r)
	}))
	t.Cleanup(ts.Close)
	f.url = ts.URL
	return f
}

func (f *fakeXRPC) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

func jsonAnswer(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// recordingClient is a client on url whose waits are recorded, not slept.
func recordingClient(t *testing.T, url string) (*Client, *[]time.Duration) {
	c, err := New(url)
	if err != nil {
		t.Fatal(err)
	}
	var waits []time.Duration
	c.sleep = func(_ context.Context, d time.Duration) error {
		waits = append(waits, d)
		return nil
	}
	return c, &waits
}

const latestOK = `{"cid":"bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm","rev":"3l2uygzaf5v2b"}`

func TestRetryHonoursRetryAfter(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name    string
		headers map[string]string
		status  int
		min     time.Duration // the wait asked for
	}{
		{"Retry-After seconds", map[string]string{"Retry-After": "7"}, 429, 7 * time.Second},
		{"Retry-After date", map[string]string{"Retry-After": now.Add(20 * time.Second).UTC().Format(http.TimeFormat)}, 503, 18 * time.Second},
		{"RateLimit-Reset unix", map[string]string{"RateLimit-Reset": strconv.FormatInt(now.Add(12*time.Second).Unix(), 10), "RateLimit-Remaining": "0"}, 429, 10 * time.Second},
		{"RateLimit-Reset delta", map[string]string{"RateLimit-Reset": "9"}, 429, 9 * time.Second},
		{"no header: backoff", nil, 502, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeXRPC(t, func(n int, w http.ResponseWriter, r *http.Request) {
				if n == 0 {
					for k, v := range tc.headers {
						w.Header().Set(k, v)
					}
					jsonAnswer(w, tc.status, `{"error":"RateLimitExceeded","message":"slow down"}`)
					return
				}
				jsonAnswer(w, 200, latestOK)
			})
			c, waits := recordingClient(t, f.url)
			lc, err := c.GetLatestCommit(context.Background(), "did:plc:abc")
			if err != nil || lc.Rev != "3l2uygzaf5v2b" {
				t.Fatalf("%+v %v", lc, err)
			}
			if f.count() != 2 || len(*waits) != 1 {
				t.Fatalf("%d requests, waits %v", f.count(), *waits)
			}
			w := (*waits)[0]
			if w < tc.min || w > tc.min+2*time.Second+DefaultMinBackoff {
				t.Errorf("waited %v, want about %v", w, tc.min)
			}
		})
	}
}

// TestRetryRealWait lets the client really sleep through a Retry-After of
// one second.
func TestRetryRealWait(t *testing.T) {
	f := newFakeXRPC(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 0 {
			w.Header().Set("Retry-After", "1")
			jsonAnswer(w, 429, `{"error":"RateLimitExceeded"}`)
			return
		}
		jsonAnswer(w, 200, latestOK)
	})
	c := &Client{BaseURL: f.url, MinBackoff: time.Millisecond}
	start := time.Now()
	if _, err := c.GetLatestCommit(context.Background(), "did:plc:abc"); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < time.Second {
		t.Errorf("answered after %v, before the second Retry-After asked for", el)
	}
}

func TestRetryPolicy(t *testing.T) {
	cases := []struct {
		name     string
		status   int
		headers  map[string]string
		requests int // made before giving up, with MaxRetries 3
		sentinel error
	}{
		{"400 is final", 400, nil, 1, ErrInvalidRequest},
		{"404 is final", 404, nil, 1, nil},
		{"501 is final", 501, nil, 1, ErrMethodNotSupported},
		{"500 retried", 500, nil, 4, nil},
		{"429 retried", 429, nil, 4, ErrRateLimited},
		{"Retry-After too long", 429, map[string]string{"Retry-After": "3600"}, 1, ErrRateLimited},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeXRPC(t, func(n int, w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.headers {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
			})
			c, _ := recordingClient(t, f.url)
			c.MaxRetries = 3
			_, err := c.GetLatestCommit(context.Background(), "did:plc:abc")
			var ae *APIError
			if !errors.As(err, &ae) || ae.Status != tc.status || ae.Method != NSIDGetLatestCommit {
				t.Fatalf("error %v", err)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Errorf("%v does not match %v", err, tc.sentinel)
			}
			if f.count() != tc.requests {
				t.Errorf("%d requests, want %d", f.count(), tc.requests)
			}
			if tc.headers["Retry-After"] == "3600" && ae.RetryAfter != time.Hour {
				t.Errorf("RetryAfter %v", ae.RetryAfter)
			}
		})
	}
	t.Run("POST not retried", func(t *testing.T) {
		f := newFakeXRPC(t, func(n int, w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
		c, _ := recordingClient(t, f.url)
		if err := c.RequestCrawl(context.Background(), "pds.example.com"); !errors.As(err, new(*APIError)) || f.count() != 1 {
			t.Fatalf("%v after %d requests", err, f.count())
		}
	})
	t.Run("network error retried", func(t *testing.T) {
		f := newFakeXRPC(t, func(n int, w http.ResponseWriter, r *http.Request) {
			if n < 2 {
				conn, _, _ := w.(http.Hijacker).Hijack()
				conn.Close()
				return
			}
			jsonAnswer(w, 200, latestOK)
		})
		c, waits := recordingClient(t, f.url)
		if _, err := c.GetLatestCommit(context.Background(), "did:plc:abc"); err != nil || f.count() != 3 || len(*waits) != 2 {
			t.Fatalf("%v after %d requests and waits %v", err, f.count(), *waits)
		}
	})
	t.Run("backoff grows and is capped", func(t *testing.T) {
		c := &Client{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
		for attempt, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
			want *= time.Millisecond
			for range 20 {
				if d := c.backoff(attempt); d < want/2 || d > want {
					t.Fatalf("attempt %d: %v outside [%v, %v]", attempt, d, want/2, want)
				}
			}
		}
	})
	t.Run("cancel while waiting", func(t *testing.T) {
		f := newFakeXRPC(t, func(n int, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(429)
		})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if _, err := (&Client{BaseURL: f.url}).GetLatestCommit(ctx, "did:plc:abc"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%v", err)
		}
	})
}

func TestTimeouts(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	f := newFakeXRPC(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/xrpc/" + NSIDGetLatestCommit: // no headers in time
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case "/xrpc/" + NSIDGetRepo: // headers, some bytes, then silence
			w.Header().Set("Content-Type", carMIME)
			w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	})
	c, _ := recordingClient(t, f.url)
	c.Timeout = 100 * time.Millisecond
	c.MaxRetries = 1
	if _, err := c.GetLatestCommit(context.Background(), "did:plc:abc"); !errors.Is(err, ErrTimeout) || f.count() != 2 {
		t.Fatalf("no answer: %v after %d requests", err, f.count())
	}
	body, err := c.GetRepo(context.Background(), "did:plc:abc", "")
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	data, err := io.ReadAll(body)
	if !errors.Is(err, ErrTimeout) || string(data) != "partial" {
		t.Fatalf("stalled body: %q %v", data, err)
	}
}

// TestTypedErrors maps each lexicon error of com.atproto.sync to its
// sentinel, under both the reference PDS's status (400) and reservoir's.
func TestTypedErrors(t *testing.T) {
	cases := []struct {
		name        string
		status      int
		sentinel    error
		notFound    bool
		unavailable bool
	}{
		{"RepoNotFound", 404, ErrRepoNotFound, true, false},
		{"RepoNotFound", 400, ErrRepoNotFound, true, false},
		{"RecordNotFound", 404, ErrRecordNotFound, true, false},
		{"BlobNotFound", 404, ErrBlobNotFound, true, false},
		{"BlockNotFound", 404, ErrBlockNotFound, true, false},
		{"HeadNotFound", 404, ErrHeadNotFound, true, false},
		{"HostNotFound", 404, ErrHostNotFound, true, false},
		{"RepoTakendown", 403, ErrRepoTakendown, false, true},
		{"RepoTakendown", 400, ErrRepoTakendown, false, true},
		{"RepoSuspended", 403, ErrRepoSuspended, false, true},
		{"RepoDeactivated", 403, ErrRepoDeactivated, false, true},
		{"RepoDeleted", 403, nil, false, true},  // the reference relay's
		{"RepoInactive", 403, nil, false, true}, // the reference relay's
		{"RepoNotSynchronized", 404, nil, true, false},
		{"HostBanned", 403, ErrHostBanned, false, false},
		{"FutureCursor", 400, ErrFutureCursor, false, false},
		{"ConsumerTooSlow", 400, ErrConsumerTooSlow, false, false},
		{"InvalidRequest", 400, ErrInvalidRequest, false, false},
		{"AuthenticationRequired", 401, ErrAuthRequired, false, false},
	}
	all := []error{ErrRepoNotFound, ErrRecordNotFound, ErrBlobNotFound, ErrBlockNotFound, ErrHeadNotFound, ErrHostNotFound,
		ErrHostBanned, ErrRepoTakendown, ErrRepoSuspended, ErrRepoDeactivated, ErrInvalidRequest, ErrAuthRequired,
		ErrMethodNotSupported, ErrRateLimited, ErrFutureCursor, ErrConsumerTooSlow}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s_%d", tc.name, tc.status), func(t *testing.T) {
			f := newFakeXRPC(t, func(n int, w http.ResponseWriter, r *http.Request) {
				jsonAnswer(w, tc.status, `{"error":"`+tc.name+`","message":"about did:plc:abc"}`)
			})
			c, _ := recordingClient(t, f.url)
			_, err := c.GetRepoStatus(context.Background(), "did:plc:abc")
			var ae *APIError
			if !errors.As(err, &ae) || ae.Name != tc.name || ae.Status != tc.status || ae.Message != "about did:plc:abc" {
				t.Fatalf("error %#v", err)
			}
			for _, s := range all {
				if errors.Is(err, s) != (s == tc.sentinel) {
					t.Errorf("errors.Is(%s, %v) = %v", tc.name, s, !(s == tc.sentinel))
				}
			}
			if IsNotFound(err) != tc.notFound || IsRepoUnavailable(err) != tc.unavailable {
				t.Errorf("IsNotFound %v, IsRepoUnavailable %v", IsNotFound(err), IsRepoUnavailable(err))
			}
			want := fmt.Sprintf("client: com.atproto.sync.getRepoStatus: %d %s: about did:plc:abc", tc.status, tc.name)
			if err.Error() != want {
				t.Errorf("message %q, want %q", err, want)
			}
		})
	}
	t.Run("no JSON body", func(t *testing.T) {
		f := newFakeXRPC(t, func(n int, w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(404)
			io.WriteString(w, "404 page not found\n")
		})
		_, err := (&Client{BaseURL: f.url}).GetRepoStatus(context.Background(), "did:plc:abc")
		var ae *APIError
		if !errors.As(err, &ae) || ae.Name != "XRPCNotSupported" || ae.Message != "404 page not found" || !IsNotFound(err) {
			t.Fatalf("%#v", err)
		}
	})
}

func TestBadResponses(t *testing.T) {
	cases := map[string]struct {
		body string
		call func(c *Client) error
		want error
	}{
		"latest commit without rev": {`{"cid":"bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"}`,
			func(c *Client) error { _, err := c.GetLatestCommit(context.Background(), "did:plc:abc"); return err }, ErrBadResponse},
		"latest commit bad cid": {`{"cid":"nope","rev":"3l2uygzaf5v2b"}`,
			func(c *Client) error { _, err := c.GetLatestCommit(context.Background(), "did:plc:abc"); return err }, ErrBadResponse},
		"status without active": {`{"did":"did:plc:abc"}`,
			func(c *Client) error { _, err := c.GetRepoStatus(context.Background(), "did:plc:abc"); return err }, ErrBadResponse},
		"repos with a bad DID": {`{"repos":[{"did":"alice","head":"bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm","rev":""}]}`,
			func(c *Client) error { _, err := c.ListRepos(context.Background(), "", 0); return err }, ErrBadResponse},
		"blobs without cids": {`{"cursor":"x"}`,
			func(c *Client) error {
				_, err := c.ListBlobs(context.Background(), "did:plc:abc", "", "", 0)
				return err
			}, ErrBadResponse},
		"hosts without hostname": {`{"hosts":[{"seq":1}]}`,
			func(c *Client) error { _, err := c.ListHosts(context.Background(), "", 0); return err }, ErrBadResponse},
		"not JSON": {`<html>`,
			func(c *Client) error { _, err := c.GetHead(context.Background(), "did:plc:abc"); return err }, ErrBadResponse},
		"too large": {`{"root":"` + strings.Repeat("b", 300) + `"}`,
			func(c *Client) error { _, err := c.GetHead(context.Background(), "did:plc:abc"); return err }, ErrResponseTooLarge},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFakeXRPC(t, func(n int, w http.ResponseWriter, r *http.Request) { jsonAnswer(w, 200, tc.body) })
			c := &Client{BaseURL: f.url, MaxJSONBytes: 200}
			if err := tc.call(c); !errors.Is(err, tc.want) {
				t.Fatalf("%v, want %v", err, tc.want)
			}
		})
	}
	// Bad arguments fail before any request.
	f := newFakeXRPC(t, func(n int, w http.ResponseWriter, r *http.Request) { t.Error("a request was made") })
	c := &Client{BaseURL: f.url}
	for _, err := range []error{
		func() error { _, err := c.GetRepo(context.Background(), "alice", ""); return err }(),
		func() error { _, err := c.GetRepo(context.Background(), "did:plc:abc", "yesterday"); return err }(),
		func() error {
			_, err := c.GetRecord(context.Background(), "did:plc:abc", "not an nsid", "x", nil)
			return err
		}(),
		func() error { _, err := c.GetBlob(context.Background(), "did:plc:abc", cid.Undef); return err }(),
		func() error { _, err := c.GetBlocks(context.Background(), "did:plc:abc", nil); return err }(),
		func() error { _, err := c.ListReposByCollection(context.Background(), "", "", 0); return err }(),
	} {
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%v, want ErrInvalidArgument", err)
		}
	}
}

func TestGetBlobChecksCID(t *testing.T) {
	data := []byte("the blob's bytes")
	c := dagcbor.SumRaw(data)
	f := newFakeXRPC(t, func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if r.URL.Query().Get("cid") != c.String() || r.URL.Query().Get("did") != "did:plc:abc" {
			w.WriteHeader(400)
			return
		}
		if n == 0 {
			w.Write(data)
		} else {
			w.Write([]byte("something else"))
		}
	})
	cl := &Client{BaseURL: f.url}
	read := func() ([]byte, error) {
		b, err := cl.GetBlob(context.Background(), "did:plc:abc", c)
		if err != nil {
			return nil, err
		}
		defer b.Close()
		if b.MimeType != "text/plain" || b.CID != c {
			t.Errorf("blob %+v", b)
		}
		return io.ReadAll(b)
	}
	if got, err := read(); err != nil || string(got) != string(data) {
		t.Fatalf("good blob: %q %v", got, err)
	}
	if _, err := read(); !errors.Is(err, ErrBlobMismatch) {
		t.Fatalf("wrong bytes: %v", err)
	}
}

func TestIteratorsFollowCursors(t *testing.T) {
	// Three pages of hosts, the relay shape (seq -1 when unknown), then the
	// end; and a server that repeats a cursor.
	f := newFakeXRPC(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path + "?" + r.URL.Query().Get("cursor") {
		case "/xrpc/com.atproto.sync.listHosts?":
			jsonAnswer(w, 200, `{"cursor":"2","hosts":[{"hostname":"a.example","seq":10,"accountCount":3,"status":"active"},{"hostname":"b.example","seq":-1,"status":"idle"}]}`)
		case "/xrpc/com.atproto.sync.listHosts?2":
			jsonAnswer(w, 200, `{"cursor":"3","hosts":[]}`)
		case "/xrpc/com.atproto.sync.listHosts?3":
			jsonAnswer(w, 200, `{"hosts":[{"hostname":"c.example","seq":5,"accountCount":1,"status":"banned"}]}`)
		case "/xrpc/com.atproto.sync.listRepos?", "/xrpc/com.atproto.sync.listRepos?again":
			jsonAnswer(w, 200, `{"cursor":"again","repos":[{"did":"did:plc:abc","head":"bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm","rev":"3l2uygzaf5v2b"}]}`)
		default:
			w.WriteHeader(500)
		}
	})
	c, _ := recordingClient(t, f.url)
	var hosts []Host
	for h, err := range c.AllHosts(context.Background(), 2) {
		if err != nil {
			t.Fatal(err)
		}
		hosts = append(hosts, h)
	}
	want := []Host{{"a.example", 10, 3, "active"}, {"b.example", -1, 0, "idle"}, {"c.example", 5, 1, "banned"}}
	if !slices.Equal(hosts, want) {
		t.Errorf("hosts %+v, want %+v", hosts, want)
	}
	if got := f.requests[0].URL.Query().Get("limit"); got != "2" {
		t.Errorf("limit %q", got)
	}
	var n int
	var last error
	for _, err := range c.AllRepos(context.Background(), 0) {
		if err != nil {
			last = err
			break
		}
		n++
	}
	if n != 2 || !errors.Is(last, ErrCursorLoop) {
		t.Errorf("repeating cursor: %d repos, then %v", n, last)
	}
	// Breaking out of the loop stops the requests.
	before := f.count()
	for range c.AllHosts(context.Background(), 2) {
		break
	}
	if f.count() != before+1 {
		t.Errorf("%d requests for a loop broken after the first item", f.count()-before)
	}
}
