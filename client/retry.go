package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// retryableStatus: 429 and the temporary 5xx (spec:xrpc; 501 means "not
// implemented here" and is final).
func retryableStatus(status int) bool {
	switch status {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// retryWait says whether err deserves another attempt and after how long:
// the exponential backoff of attempt, or what the server asked for if
// longer. A server that asks for more than MaxRetryWait is not retried.
func (c *Client) retryWait(err error, attempt int) (time.Duration, bool) {
	var ae *APIError
	var ne *netError
	switch {
	case errors.As(err, &ae):
		if !retryableStatus(ae.Status) {
			return 0, false
		}
		if ae.RetryAfter > c.maxRetryWait() {
			return 0, false
		}
		return max(c.backoff(attempt), ae.RetryAfter), true
	case errors.As(err, &ne), errors.Is(err, ErrTimeout):
		return c.backoff(attempt), true
	}
	return 0, false
}

// backoff is MinBackoff·2^attempt, capped at MaxBackoff, with "equal
// jitter": between half of it and all of it.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.minBackoff()
	for range attempt {
		d *= 2
		if d >= c.maxBackoff() {
			break
		}
	}
	d = min(d, c.maxBackoff())
	half := d / 2
	return half + rand.N(half+1)
}

func (c *Client) wait(ctx context.Context, d time.Duration) error {
	if c.sleep != nil {
		return c.sleep(ctx, d)
	}
	return sleepCtx(ctx, d)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// serverWait reads how long the server asked the client to wait:
// Retry-After (delay-seconds or an HTTP date), or, on a 429 without it,
// RateLimit-Reset. The reference PDS sends RateLimit-Reset as a Unix time in
// seconds; the IETF draft sends delay-seconds. Values above 10^9 are taken
// as Unix times. Zero when the headers say nothing usable.
func serverWait(h http.Header, status int, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
			return secondsWait(secs)
		}
		if t, err := http.ParseTime(v); err == nil {
			return clampWait(t.Sub(now))
		}
	}
	if status != http.StatusTooManyRequests {
		return 0
	}
	if v := strings.TrimSpace(h.Get("RateLimit-Reset")); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			if n > 1_000_000_000 {
				return clampWait(time.Unix(n, 0).Sub(now))
			}
			return secondsWait(n)
		}
	}
	return 0
}

func secondsWait(n int64) time.Duration {
	if n > maxWaitSeconds {
		n = maxWaitSeconds
	}
	return clampWait(time.Duration(n) * time.Second)
}

const maxWaitSeconds = 365 * 24 * 3600

// clampWait keeps a wait within [0, 1 year]: negative (a reset in the past)
// is no wait, and absurd values cannot overflow.
func clampWait(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return min(d, maxWaitSeconds*time.Second)
}
