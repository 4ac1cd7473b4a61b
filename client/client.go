package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Defaults of the Client fields left zero.
const (
	DefaultUserAgent    = "reservoir-client"
	DefaultMaxRetries   = 4
	DefaultTimeout      = 30 * time.Second
	DefaultMinBackoff   = 500 * time.Millisecond
	DefaultMaxBackoff   = 30 * time.Second
	DefaultMaxRetryWait = 2 * time.Minute
	DefaultMaxJSONBytes = 16 << 20
	// DefaultMaxCARBytes bounds CARs read into memory (getBlocks,
	// getRecord, and the verified repository helpers).
	DefaultMaxCARBytes = 1 << 30
)

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// Client calls the com.atproto.sync endpoints of one service: a PDS, a
// relay, or reservoir. The zero value is not usable: BaseURL is required
// (New checks and normalizes it). Every other zero field takes the default
// named in its comment. Set the fields before the first call; a Client is
// then safe for concurrent use.
type Client struct {
	// BaseURL is the service root, "https://host[:port]" (New accepts ws://
	// and wss:// too). The XRPC path is added to it.
	BaseURL string
	// HTTPClient sends the requests. Default: a client without an overall
	// timeout (Timeout below bounds each wait instead), following redirects
	// (the reference relay answers getRepo with a 302 to the PDS).
	HTTPClient *http.Client
	// UserAgent is sent with every request. Default DefaultUserAgent.
	UserAgent string
	// MaxRetries is how many times an idempotent GET is retried after a
	// network error, a 429 or a 5xx other than 501. Default
	// DefaultMaxRetries; negative: never retry.
	MaxRetries int
	// Timeout bounds each attempt's wait for the response headers and then
	// every wait for more body bytes (an idle timeout), so a long download
	// that keeps moving is never cut. Default DefaultTimeout.
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the exponential backoff between
	// retries (with jitter). Defaults DefaultMinBackoff, DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// MaxRetryWait is the longest wait a server may ask for (Retry-After,
	// RateLimit-Reset) that the client honours; a longer one ends the
	// retries with the *APIError, whose RetryAfter says how long. Default
	// DefaultMaxRetryWait.
	MaxRetryWait time.Duration
	// MaxJSONBytes bounds a JSON response body. Default DefaultMaxJSONBytes.
	MaxJSONBytes int64
	// MaxCARBytes bounds the CARs the client reads into memory. Default
	// DefaultMaxCARBytes.
	MaxCARBytes int64
	// Header holds extra headers sent with every request (an
	// Authorization for admin access, say).
	Header http.Header

	// sleep waits between retries; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

// New returns a Client for the service at base: an http://, https://, ws://
// or wss:// URL of the service root (ws becomes http, wss https). A path
// that names an XRPC method (".../xrpc/NSID") is dropped, so a pasted
// endpoint URL works too.
func New(base string) (*Client, error) {
	u, err := ServiceURL(base)
	if err != nil {
		return nil, err
	}
	return &Client{BaseURL: u}, nil
}

// ServiceURL normalizes a service URL to "http(s)://host[:port][/prefix]"
// without a trailing slash: ws:// becomes http://, wss:// https://, and a
// trailing "/xrpc/..." is dropped.
func ServiceURL(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrBadURL, s, err)
	}
	switch u.Scheme {
	case "http", "https":
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return "", fmt.Errorf("%w: %q: the scheme must be https, http, wss or ws", ErrBadURL, s)
	}
	if u.Host == "" || u.Opaque != "" {
		return "", fmt.Errorf("%w: %q: no host", ErrBadURL, s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%w: %q: a service URL has no query or fragment", ErrBadURL, s)
	}
	if i := strings.Index(u.Path, "/xrpc/"); i >= 0 {
		u.Path = u.Path[:i]
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}

func (c *Client) timeout() time.Duration    { return orDefault(c.Timeout, DefaultTimeout) }
func (c *Client) minBackoff() time.Duration { return orDefault(c.MinBackoff, DefaultMinBackoff) }
func (c *Client) maxBackoff() time.Duration { return orDefault(c.MaxBackoff, DefaultMaxBackoff) }
func (c *Client) maxRetryWait() time.Duration {
	return orDefault(c.MaxRetryWait, DefaultMaxRetryWait)
}
func (c *Client) maxJSON() int64 { return orDefault(c.MaxJSONBytes, DefaultMaxJSONBytes) }
func (c *Client) maxCAR() int64  { return orDefault(c.MaxCARBytes, DefaultMaxCARBytes) }

func (c *Client) maxRetries() int {
	switch {
	case c.MaxRetries < 0:
		return 0
	case c.MaxRetries == 0:
		return DefaultMaxRetries
	}
	return c.MaxRetries
}

func orDefault[T int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// request is one XRPC call.
type request struct {
	method string // GET or POST
	nsid   string
	query  url.Values
	body   []byte // JSON input of a procedure
	accept string
}

// do performs r, retrying a GET on network errors, 429 and 5xx (not 501).
// On success the caller owns resp.Body, which enforces the idle timeout.
// A non-2xx answer is returned as a *APIError.
func (c *Client) do(ctx context.Context, r *request) (*http.Response, error) {
	if c.BaseURL == "" {
		return nil, fmt.Errorf("%w: Client.BaseURL is empty", ErrBadURL)
	}
	target := c.BaseURL + "/xrpc/" + r.nsid
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	retries := 0
	if r.method == http.MethodGet {
		retries = c.maxRetries()
	}
	for attempt := 0; ; attempt++ {
		resp, err := c.attempt(ctx, r, target)
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("client: %s: %w", r.nsid, ctx.Err())
		}
		wait, retry := c.retryWait(err, attempt)
		if !retry || attempt >= retries {
			return nil, err
		}
		if err := c.wait(ctx, wait); err != nil {
			return nil, fmt.Errorf("client: %s: %w", r.nsid, err)
		}
	}
}

// attempt sends one request under the watchdog of Timeout.
func (c *Client) attempt(ctx context.Context, r *request, target string) (*http.Response, error) {
	actx, cancel := context.WithCancel(ctx)
	w := newWatchdog(c.timeout(), cancel)
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(actx, r.method, target, body)
	if err != nil {
		w.stop()
		return nil, fmt.Errorf("client: %s: %w", r.nsid, err)
	}
	for k, v := range c.Header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", cmpOr(c.UserAgent, DefaultUserAgent))
	if r.accept != "" {
		req.Header.Set("Accept", r.accept)
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		w.stop()
		if w.fired() {
			return nil, fmt.Errorf("client: %s: %w after %v waiting for a response", r.nsid, ErrTimeout, c.timeout())
		}
		return nil, &netError{nsid: r.nsid, err: err}
	}
	if resp.StatusCode/100 == 2 {
		w.reset()
		resp.Body = &watchedBody{rc: resp.Body, w: w, nsid: r.nsid}
		return resp, nil
	}
	defer w.stop()
	defer resp.Body.Close()
	return nil, c.apiError(r.nsid, resp)
}

// apiError builds the *APIError of a non-2xx response.
func (c *Client) apiError(nsid string, resp *http.Response) *APIError {
	e := &APIError{Method: nsid, Status: resp.StatusCode}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var body struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(data, &body) == nil && body.Error != "" {
		e.Name, e.Message = body.Error, body.Message
	} else {
		e.Name = statusName(resp.StatusCode)
		e.Message = strings.TrimSpace(string(data[:min(len(data), 200)]))
		if strings.ContainsRune(e.Message, '\n') || !isPrintable(e.Message) {
			e.Message = ""
		}
	}
	e.RetryAfter = serverWait(resp.Header, resp.StatusCode, time.Now())
	return e
}

// statusName is the generic error name of a status, as the reference
// implementation uses when there is no lexicon name.
func statusName(status int) string {
	switch status {
	case 400:
		return "InvalidRequest"
	case 401:
		return "AuthenticationRequired"
	case 403:
		return "Forbidden"
	case 404:
		return "XRPCNotSupported"
	case 413:
		return "PayloadTooLarge"
	case 429:
		return "RateLimitExceeded"
	case 500:
		return "InternalServerError"
	case 501:
		return "MethodNotImplemented"
	case 502:
		return "UpstreamFailure"
	case 503:
		return "NotEnoughResources"
	case 504:
		return "UpstreamTimeout"
	}
	return "HTTP" + fmt.Sprint(status)
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return false
		}
	}
	return true
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// netError is a request that got no HTTP response.
type netError struct {
	nsid string
	err  error
}

func (e *netError) Error() string { return "client: " + e.nsid + ": " + e.err.Error() }
func (e *netError) Unwrap() error { return e.err }

// getJSON calls a query and decodes its JSON answer into out.
func (c *Client) getJSON(ctx context.Context, nsid string, q url.Values, out any) error {
	resp, err := c.do(ctx, &request{method: http.MethodGet, nsid: nsid, query: q, accept: "application/json"})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return c.decodeJSON(nsid, resp.Body, out)
}

func (c *Client) decodeJSON(nsid string, body io.Reader, out any) error {
	limit := c.maxJSON()
	data, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return fmt.Errorf("client: %s: reading the response: %w", nsid, err)
	}
	if int64(len(data)) > limit {
		return fmt.Errorf("%w: %s: more than %d bytes", ErrResponseTooLarge, nsid, limit)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return badResponse(nsid, "%v", err)
	}
	return nil
}

// watchdog cancels a request when Timeout passes without progress.
type watchdog struct {
	t       *time.Timer
	d       time.Duration
	cancel  context.CancelFunc
	expired atomic.Bool
}

func newWatchdog(d time.Duration, cancel context.CancelFunc) *watchdog {
	w := &watchdog{d: d, cancel: cancel}
	w.t = time.AfterFunc(d, func() {
		w.expired.Store(true)
		cancel()
	})
	return w
}

func (w *watchdog) reset()      { w.t.Reset(w.d) }
func (w *watchdog) fired() bool { return w.expired.Load() }
func (w *watchdog) stop() {
	w.t.Stop()
	w.cancel()
}

// watchedBody restarts the watchdog on every read and releases the request
// on Close.
type watchedBody struct {
	rc   io.ReadCloser
	w    *watchdog
	nsid string
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && b.w.fired() {
		return n, fmt.Errorf("client: %s: %w: no data for %v", b.nsid, ErrTimeout, b.w.d)
	}
	if n > 0 {
		b.w.reset()
	}
	return n, err
}

func (b *watchedBody) Close() error {
	err := b.rc.Close()
	b.w.stop()
	return err
}
