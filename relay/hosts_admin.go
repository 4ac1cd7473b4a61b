package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/reservoir-atproto/reservoir/store"
)

// RequestCrawl handles com.atproto.sync.requestCrawl (and notifyOfUpdate):
// hostname, a bare name or a service URL, asks to be crawled. A host already
// subscribed is left as it is (an offline one is retried at once); a banned
// one is refused with ErrHostBanned. Otherwise the name must resolve to
// public addresses (unless AllowInsecure) and the host must answer as an
// atproto service (ErrHostUnreachable); a new host counts against the daily
// quota (ErrNewHostQuota). Then it is stored as active and subscribed. An
// idle host (one that answered FutureCursor: its seqs restarted) resumes
// live, its old cursor forgotten.
func (m *Manager) RequestCrawl(ctx context.Context, hostname string) error {
	return m.crawl(ctx, hostname, false)
}

// AddHost is the admin's crawl request: the same as RequestCrawl without
// the daily quota or the check that the host answers (it is retried until
// it does), and still with the address check unless AllowInsecure.
func (m *Manager) AddHost(ctx context.Context, hostname string) (HostInfo, error) {
	if err := m.crawl(ctx, hostname, true); err != nil {
		return HostInfo{}, err
	}
	addr, _ := ParseHostAddr(hostname, m.opts.AllowInsecure)
	return m.Host(addr.Hostname)
}

func (m *Manager) crawl(ctx context.Context, raw string, admin bool) (err error) {
	result := "accepted"
	defer func() {
		if err != nil {
			result = crawlResult(err)
		}
		m.metrics.crawls.WithLabelValues(result).Inc()
	}()
	addr, err := ParseHostAddr(raw, m.opts.AllowInsecure)
	if err != nil {
		return err
	}
	if hs := m.lookup(addr.Hostname); hs != nil {
		switch hs.info().Status {
		case store.HostBanned:
			return fmt.Errorf("%w: %s", ErrHostBanned, addr.Hostname)
		case store.HostOffline:
			hs.kick()
			return nil
		case store.HostActive, store.HostThrottled:
			return nil
		}
	}
	checkCtx, cancel := context.WithTimeout(ctx, m.opts.CheckTimeout)
	defer cancel()
	if err := checkResolves(checkCtx, m.opts.Resolver, addr, m.opts.AllowInsecure); err != nil {
		return err
	}
	if !admin {
		if err := checkAnswers(checkCtx, m.opts.HTTPClient, addr); err != nil {
			return err
		}
	}
	return m.activate(ctx, addr, admin)
}

func crawlResult(err error) string {
	for _, e := range []struct {
		err  error
		name string
	}{
		{ErrInvalidHostname, "invalid"}, {ErrNonPublicHost, "non_public"}, {ErrHostUnreachable, "unreachable"},
		{ErrHostBanned, "banned"}, {ErrNewHostQuota, "quota"},
	} {
		if errors.Is(err, e.err) {
			return e.name
		}
	}
	return "error"
}

// activate stores a new host, or reactivates an idle one, and subscribes.
// Host creation and status changes are serialized by the persist lock, so
// two requests for one new host create it once.
func (m *Manager) activate(ctx context.Context, addr HostAddr, admin bool) error {
	m.persist.Lock()
	hs := m.lookup(addr.Hostname)
	if hs == nil {
		now := m.opts.Now()
		if !admin && !m.takeQuota(now) {
			m.persist.Unlock()
			return fmt.Errorf("%w: %d new hosts a day", ErrNewHostQuota, m.opts.NewHostsPerDay)
		}
		rec := &store.Host{Hostname: addr.Hostname, Status: store.HostActive, Cursor: store.NoCursor, NoSSL: addr.NoSSL, CreatedAt: now.UTC()}
		if err := m.db.PutHost(ctx, rec); err != nil {
			m.persist.Unlock()
			return fmt.Errorf("relay: adding host %s: %w", addr.Hostname, err)
		}
		hs = m.newHostState(*rec)
		m.mu.Lock()
		m.hosts[addr.Hostname] = hs
		m.mu.Unlock()
		m.persist.Unlock()
		m.log.Info("relay: new host", "host", addr.Hostname, "admin", admin)
		m.subscribe(hs)
		return nil
	}
	hs.mu.Lock()
	switch hs.rec.Status {
	case store.HostBanned:
		hs.mu.Unlock()
		m.persist.Unlock()
		return fmt.Errorf("%w: %s", ErrHostBanned, addr.Hostname)
	case store.HostIdle:
		hs.rec.Status = store.HostActive
		hs.rec.Cursor = store.NoCursor
		hs.rec.Failures = 0
		hs.cursor.reset(store.NoCursor)
		hs.submitted = store.NoCursor
		hs.connectedOnce = false
	}
	hs.mu.Unlock()
	m.persist.Unlock()
	if err := m.save(ctx, hs); err != nil {
		return err
	}
	m.subscribe(hs)
	return nil
}

// takeQuota counts a new host against the daily quota, if it has room.
func (m *Manager) takeQuota(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	cut := now.Add(-24 * time.Hour)
	i := 0
	for i < len(m.added) && !m.added[i].After(cut) {
		i++
	}
	m.added = m.added[i:]
	if len(m.added) >= m.opts.NewHostsPerDay {
		return false
	}
	m.added = append(m.added, now)
	return true
}

func (m *Manager) lookup(hostname string) *hostState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hosts[hostname]
}

// Ban bans a host: its subscription stops, its crawl requests are refused.
// A host the relay does not know yet is stored banned, so it never will.
func (m *Manager) Ban(ctx context.Context, hostname string) (HostInfo, error) {
	addr, err := ParseHostAddr(hostname, true)
	if err != nil {
		return HostInfo{}, err
	}
	m.persist.Lock()
	hs := m.lookup(addr.Hostname)
	if hs == nil {
		rec := &store.Host{Hostname: addr.Hostname, Status: store.HostBanned, Cursor: store.NoCursor, NoSSL: addr.NoSSL, CreatedAt: m.opts.Now().UTC()}
		err := m.db.PutHost(ctx, rec)
		if err == nil {
			hs = m.newHostState(*rec)
			m.mu.Lock()
			m.hosts[addr.Hostname] = hs
			m.mu.Unlock()
		}
		m.persist.Unlock()
		if err != nil {
			return HostInfo{}, fmt.Errorf("relay: banning %s: %w", addr.Hostname, err)
		}
		return hs.info(), nil
	}
	m.persist.Unlock()
	m.unsubscribe(hs)
	hs.mu.Lock()
	hs.rec.Status = store.HostBanned
	hs.throttled = false
	hs.mu.Unlock()
	if err := m.save(ctx, hs); err != nil {
		return HostInfo{}, err
	}
	m.log.Info("relay: host banned", "host", addr.Hostname)
	return hs.info(), nil
}

// Unban lifts a ban: the host is active again and subscribed from its
// stored cursor.
func (m *Manager) Unban(ctx context.Context, hostname string) (HostInfo, error) {
	hs, err := m.known(hostname)
	if err != nil {
		return HostInfo{}, err
	}
	hs.mu.Lock()
	wasBanned := hs.rec.Status == store.HostBanned
	if wasBanned {
		hs.rec.Status = store.HostActive
		hs.rec.Failures = 0
	}
	hs.mu.Unlock()
	if wasBanned {
		if err := m.save(ctx, hs); err != nil {
			return HostInfo{}, err
		}
		m.subscribe(hs)
		m.log.Info("relay: host unbanned", "host", hs.addr.Hostname)
	}
	return hs.info(), nil
}

// SetLimits changes a host's limits (zero: the default events per second,
// no account limit). They apply at once to its subscription: at
// MaxAccounts mirrored accounts (as last recounted), events of accounts
// the store does not hold are skipped.
func (m *Manager) SetLimits(ctx context.Context, hostname string, l store.HostLimits) (HostInfo, error) {
	if l.EventsPerSecond < 0 || l.MaxAccounts < 0 {
		return HostInfo{}, fmt.Errorf("relay: limits of %s: negative values", hostname)
	}
	hs, err := m.known(hostname)
	if err != nil {
		return HostInfo{}, err
	}
	hs.mu.Lock()
	hs.rec.Limits = l
	if l.MaxAccounts == 0 || hs.rec.AccountCount < l.MaxAccounts {
		hs.accountLimited = false
	}
	eps := m.eventsPerSecond(l)
	hs.limiter.SetLimit(limitOf(eps))
	hs.limiter.SetBurst(int(eps))
	hs.mu.Unlock()
	if err := m.save(ctx, hs); err != nil {
		return HostInfo{}, err
	}
	return hs.info(), nil
}

// known returns the state of a host named by the admin, or ErrHostNotFound.
func (m *Manager) known(hostname string) (*hostState, error) {
	addr, err := ParseHostAddr(hostname, true)
	if err != nil {
		return nil, err
	}
	hs := m.lookup(addr.Hostname)
	if hs == nil {
		return nil, fmt.Errorf("%w: %s", ErrHostNotFound, addr.Hostname)
	}
	return hs, nil
}
