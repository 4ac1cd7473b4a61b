package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The host notifier (--relays): this host asks each relay to crawl it with
// com.atproto.sync.requestCrawl,
//
//   - at start-up;
//   - again when it gets a new event after having been quiet: at most once
//     per crawlInterval (the reference PDS's 20 minutes) a relay that was
//     asked; an event inside that window is remembered and the relay asked
//     when the window ends;
//   - a failed request is retried with exponential backoff (1s doubling up
//     to crawlInterval), logged, and never blocks writes: the notifier runs
//     on its own goroutine and only polls the store's last seq.
//
// notifyOfUpdate is the deprecated older name of the same request (relays
// treat it as requestCrawl for the named host). "A relay that asks for it"
// is read as: a relay that does not implement requestCrawl (answers 404 or
// 501) is sent notifyOfUpdate instead, from then on.
//
// The hostname sent is the host (and port, when it has one) of
// --public-url. A bare hostname means TLS to a relay, so an http:// public
// URL (a private network, tests) is sent whole, scheme included, as
// requestCrawl allows a service URL.

const (
	// crawlInterval is how often, at most, a relay is asked again.
	crawlInterval = 20 * time.Minute
	// crawlPoll is how often the notifier looks for new events.
	crawlPoll = 5 * time.Second
	// crawlMinBackoff is the first wait after a failed request.
	crawlMinBackoff = time.Second
)

// relayCrawler asks relays to crawl this host.
type relayCrawler struct {
	relays     []string // service roots, http(s)
	publicURL  string
	lastSeq    func() int64
	interval   time.Duration // at most one request per relay per interval, unless it failed
	poll       time.Duration // default crawlPoll
	minBackoff time.Duration // default crawlMinBackoff; it doubles up to interval
	client     *http.Client
	log        *slog.Logger
}

// relayBase turns a relay given as an http(s) or ws(s) URL into its http(s)
// service root.
func relayBase(s string) (string, error) {
	scheme, rest, ok := strings.Cut(strings.TrimSuffix(s, "/"), "://")
	switch {
	case !ok || rest == "" || strings.ContainsAny(rest, "/?#"):
		return "", fmt.Errorf("relay %q: want the URL of a service root", s)
	case scheme == "https" || scheme == "wss":
		return "https://" + rest, nil
	case scheme == "http" || scheme == "ws":
		return "http://" + rest, nil
	}
	return "", fmt.Errorf("relay %q: scheme %q is not http(s) or ws(s)", s, scheme)
}

// crawlHostname is the hostname a crawl request names this host by: the
// host and port of publicURL, with the scheme only when it is http.
func crawlHostname(publicURL string) string {
	u, err := url.Parse(publicURL)
	if err != nil || u.Host == "" {
		return publicURL
	}
	host := strings.ToLower(u.Host)
	if u.Scheme == "http" {
		return "http://" + host
	}
	return strings.TrimSuffix(host, ":443")
}

// crawlTarget is what the notifier knows of one relay.
type crawlTarget struct {
	url     string
	due     bool      // a request is owed (start-up, or events since the last one)
	lastOK  time.Time // the last request the relay accepted
	next    time.Time // no request before (backoff after a failure)
	backoff time.Duration
	legacy  bool // the relay knows only notifyOfUpdate
}

// run notifies the relays until ctx ends.
func (c *relayCrawler) run(ctx context.Context) {
	poll, minBackoff := c.poll, c.minBackoff
	if poll <= 0 {
		poll = crawlPoll
	}
	if minBackoff <= 0 {
		minBackoff = crawlMinBackoff
	}
	hostname := crawlHostname(c.publicURL)
	targets := make([]*crawlTarget, len(c.relays))
	for i, r := range c.relays {
		targets[i] = &crawlTarget{url: r, due: true}
	}
	seen := c.lastSeq()
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if seq := c.lastSeq(); seq != seen {
			seen = seq
			for _, tg := range targets {
				tg.due = true
			}
		}
		now := time.Now()
		for _, tg := range targets {
			if !tg.due || now.Before(tg.next) || (!tg.lastOK.IsZero() && now.Sub(tg.lastOK) < c.interval) {
				continue
			}
			if err := c.request(ctx, tg, hostname); err != nil {
				if ctx.Err() != nil {
					return
				}
				tg.backoff = min(max(2*tg.backoff, minBackoff), c.interval)
				tg.next = time.Now().Add(tg.backoff)
				c.log.Warn("asking a relay to crawl this host failed", "relay", tg.url, "hostname", hostname, "retry_in", tg.backoff, "err", err)
				continue
			}
			tg.due, tg.lastOK, tg.backoff, tg.next = false, time.Now(), 0, time.Time{}
			c.log.Info("asked a relay to crawl this host", "relay", tg.url, "hostname", hostname)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// errNotImplemented: the relay does not know the method.
var errNotImplemented = errors.New("method not implemented")

// request sends requestCrawl (or, to a relay that knows only it,
// notifyOfUpdate).
func (c *relayCrawler) request(ctx context.Context, tg *crawlTarget, hostname string) error {
	if !tg.legacy {
		err := c.call(ctx, tg.url, "com.atproto.sync.requestCrawl", hostname)
		if !errors.Is(err, errNotImplemented) {
			return err
		}
		tg.legacy = true
	}
	err := c.call(ctx, tg.url, "com.atproto.sync.notifyOfUpdate", hostname)
	if errors.Is(err, errNotImplemented) {
		tg.legacy = false // neither: try requestCrawl again next time
	}
	return err
}

func (c *relayCrawler) call(ctx context.Context, relay, method, hostname string) error {
	body, _ := json.Marshal(map[string]string{"hostname": hostname})
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, relay+"/xrpc/"+method, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusNotFound, http.StatusNotImplemented:
		return fmt.Errorf("%s: %w: %s %s", method, errNotImplemented, resp.Status, bytes.TrimSpace(msg))
	}
	return fmt.Errorf("%s: %s: %s", method, resp.Status, bytes.TrimSpace(msg))
}
