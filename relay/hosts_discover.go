package relay

import (
	"sync"
	"time"
)

// Hosts found through DID documents: when a mirrored account's document
// names a PDS the relay does not crawl (the account moved there), the
// ingest tells the manager (IngestOptions.DiscoverHost → Discover), which
// crawls that host as a public requestCrawl would: the same hostname and
// address checks, the check that it answers, bans, and the daily quota of
// new hosts. The account is then followed to its new host without an
// operator (a new host is backfilled, which fetches the account's
// repository from there).

const (
	// discoverQueue bounds the hosts waiting for their crawl; beyond it a
	// discovery is dropped (the next event of a moved account finds it
	// again).
	discoverQueue = 64
	// discoverRetry is how long a host whose crawl failed (refused,
	// unreachable, over the quota) is not tried again; discoverMemory
	// bounds the hosts remembered so.
	discoverRetry  = 10 * time.Minute
	discoverMemory = 10_000
)

// discoverer is the manager's queue of discovered hosts.
type discoverer struct {
	ch chan HostAddr

	mu      sync.Mutex
	pending map[string]bool      // queued or being crawled
	failed  map[string]time.Time // not before then
}

func newDiscoverer() *discoverer {
	return &discoverer{ch: make(chan HostAddr, discoverQueue), pending: map[string]bool{}, failed: map[string]time.Time{}}
}

// Discover asks for a crawl of the PDS at endpoint (a service URL from a
// DID document), unless the relay already knows that host. It never
// blocks: the crawl runs on the manager's own goroutine, and a discovery
// beyond the queue's bound, or of a host whose crawl failed in the last
// ten minutes, is dropped.
func (m *Manager) Discover(endpoint string) {
	addr, err := ParseHostAddr(endpoint, m.opts.AllowInsecure)
	if err != nil {
		m.metrics.crawls.WithLabelValues(crawlResult(err)).Inc()
		m.log.Debug("relay: a PDS named by a DID document is not a host we crawl", "pds", endpoint, "err", err)
		return
	}
	if hs := m.lookup(addr.Hostname); hs != nil {
		return // known: subscribed, banned, offline (retried by itself) or idle
	}
	d := m.discover
	now := m.opts.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pending[addr.Hostname] || now.Before(d.failed[addr.Hostname]) {
		return
	}
	select {
	case d.ch <- addr:
		d.pending[addr.Hostname] = true
	default:
	}
}

// discoverLoop crawls discovered hosts until the manager stops.
func (m *Manager) discoverLoop() {
	defer m.loops.Done()
	d := m.discover
	for {
		select {
		case <-m.ctx.Done():
			return
		case addr := <-d.ch:
			raw := addr.baseURL()
			err := m.crawl(m.ctx, raw, false)
			d.mu.Lock()
			delete(d.pending, addr.Hostname)
			if err != nil {
				if len(d.failed) >= discoverMemory {
					clear(d.failed)
				}
				d.failed[addr.Hostname] = m.opts.Now().Add(discoverRetry)
			}
			d.mu.Unlock()
			if err != nil {
				m.log.Info("relay: a host named by a DID document was not crawled", "host", addr.Hostname, "err", err)
			} else {
				m.log.Info("relay: crawling a host named by a DID document", "host", addr.Hostname)
			}
		}
	}
}
