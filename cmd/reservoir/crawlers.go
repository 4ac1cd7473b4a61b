package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// crawlInterval is how often, at most, the relays of --relays are asked
// again to crawl this host (only when it committed events since): the
// reference PDS's 20 minutes.
const crawlInterval = 20 * time.Minute

// relayCrawler asks relays to crawl this host (com.atproto.sync.requestCrawl
// with its public URL, which carries the scheme and port a relay needs on a
// private network).
type relayCrawler struct {
	relays    []string // service roots, http(s)
	publicURL string
	lastSeq   func() int64
	interval  time.Duration
	client    *http.Client
	log       *slog.Logger
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

// run asks every relay at once, then every interval those that failed and,
// when events were committed since, all of them, until ctx ends.
func (c *relayCrawler) run(ctx context.Context) {
	pending := map[string]bool{}
	for _, r := range c.relays {
		pending[r] = true
	}
	seen := int64(-1)
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		if seq := c.lastSeq(); seq != seen {
			seen = seq
			for _, r := range c.relays {
				pending[r] = true
			}
		}
		for r := range pending {
			if err := c.request(ctx, r); err != nil {
				c.log.Warn("requestCrawl to a relay failed", "relay", r, "err", err)
				continue
			}
			delete(pending, r)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *relayCrawler) request(ctx context.Context, relay string) error {
	body, _ := json.Marshal(map[string]string{"hostname": c.publicURL})
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, relay+"/xrpc/com.atproto.sync.requestCrawl", bytes.NewReader(body))
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
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}
