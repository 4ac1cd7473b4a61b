package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Backfiller fetches one repository of a host whole, verifies it and stores
// it (Ingest.Backfill). The account's live events wait meanwhile, and those
// the fetched state covers are dropped, so a backfill and the host's live
// events interleave without loss.
type Backfiller interface {
	Backfill(ctx context.Context, hostname, did string) error
}

// maxListReposBytes bounds one listRepos page (1000 entries of a few
// hundred bytes).
const maxListReposBytes = 4 << 20

// maxListFailures is how many failed listRepos calls in a row end a
// backfill run (it resumes from its stored position when the host is
// subscribed again: the next start, unban or crawl request of an idle host).
const maxListFailures = 10

// backfillPage is how many repositories one listRepos call asks for.
const backfillPage = 1000

// needsBackfill reports whether the host's repositories still have to be
// fetched.
func (m *Manager) needsBackfill(hs *hostState) bool {
	return m.opts.Backfiller != nil && !hs.rec.BackfillDone
}

// backfill fetches every repository the host lists (listRepos, page by
// page from the stored position), BackfillWorkers at a time and at most
// BackfillReposPerSecond, while the subscription follows its live events.
// The position is stored after each page, so a backfill cut short (a
// restart, a ban) resumes where it was; it ends with BackfillDone. It runs
// with the subscription and ends with it.
func (m *Manager) backfill(ctx context.Context, hs *hostState) {
	log := m.log.With("host", hs.addr.Hostname)
	limiter := rate.NewLimiter(rate.Limit(m.opts.BackfillReposPerSecond), m.opts.BackfillWorkers)
	hs.mu.Lock()
	cursor := hs.rec.BackfillCursor
	hs.mu.Unlock()
	log.Info("relay: backfilling host", "from", cursor)
	failures := int64(0)
	for ctx.Err() == nil {
		repos, next, err := listRepos(ctx, m.opts.HTTPClient, hs.addr, cursor)
		if err != nil {
			failures++
			if failures > maxListFailures {
				log.Warn("relay: backfill: giving up until the host is subscribed again", "err", err)
				return
			}
			wait := m.backoff(failures)
			log.Warn("relay: backfill: listing repositories", "err", err, "retry_in", wait)
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			continue
		}
		failures = 0
		m.backfillPage(ctx, hs, limiter, repos)
		if ctx.Err() != nil {
			return // this page again on resumption
		}
		done := next == "" || next == cursor || len(repos) == 0
		hs.mu.Lock()
		hs.rec.BackfillCursor, hs.rec.BackfillDone = next, done
		hs.mu.Unlock()
		if err := m.save(ctx, hs); err != nil && ctx.Err() == nil {
			log.Warn("relay: backfill: storing the position", "err", err)
		}
		if done {
			log.Info("relay: host backfilled")
			return
		}
		cursor = next
	}
}

// backfillPage fetches the active repositories of one page with
// BackfillWorkers goroutines.
func (m *Manager) backfillPage(ctx context.Context, hs *hostState, limiter *rate.Limiter, repos []listedRepo) {
	work := make(chan string)
	var wg sync.WaitGroup
	for range m.opts.BackfillWorkers {
		wg.Go(func() {
			for did := range work {
				if err := m.opts.Backfiller.Backfill(ctx, hs.addr.Hostname, did); err != nil {
					if ctx.Err() == nil {
						m.metrics.backfills.WithLabelValues("failed").Inc()
						m.log.Info("relay: backfill of a repository failed", "host", hs.addr.Hostname, "did", did, "err", err)
					}
					continue
				}
				m.metrics.backfills.WithLabelValues("ok").Inc()
			}
		})
	}
	for _, r := range repos {
		if r.Active != nil && !*r.Active {
			m.metrics.backfills.WithLabelValues("inactive").Inc()
			continue // its #account events tell its status; there is no content to fetch
		}
		if limiter.Wait(ctx) != nil {
			break
		}
		select {
		case work <- r.DID:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
}

// listedRepo is an entry of com.atproto.sync.listRepos.
type listedRepo struct {
	DID    string `json:"did"`
	Active *bool  `json:"active"`
}

// listRepos asks the host for one page of its repositories.
func listRepos(ctx context.Context, client *http.Client, a HostAddr, cursor string) ([]listedRepo, string, error) {
	q := url.Values{"limit": {fmt.Sprint(backfillPage)}}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.baseURL()+"/xrpc/com.atproto.sync.listRepos?"+q.Encode(), nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxListReposBytes+1))
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("listRepos answered %s", resp.Status)
	}
	if len(body) > maxListReposBytes {
		return nil, "", errors.New("listRepos page too large")
	}
	var out struct {
		Cursor string       `json:"cursor"`
		Repos  []listedRepo `json:"repos"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, "", fmt.Errorf("listRepos: %w", err)
	}
	return out.Repos, out.Cursor, nil
}

var _ Backfiller = (*Ingest)(nil)
