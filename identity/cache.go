package identity

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// cache is a bounded LRU of lookup results (values and failures alike) with
// per-entry expiry, in front of a fetch function. Concurrent gets of one key
// that miss share one fetch (a flight). Flights run detached from any one
// caller: a caller whose context ends stops waiting, but the fetch goes on,
// bounded by its own timeout, and its result is cached for the others.
//
// No I/O happens under mu; fetch runs in the flight's goroutine.
type cache[K comparable, V any] struct {
	now     func() time.Time
	timeout time.Duration
	fetch   func(ctx context.Context, key K) (V, error)
	ttl     func(V, error) time.Duration

	mu struct {
		sync.Mutex
		lru     *simplelru.LRU[K, entry[V]]
		flights map[K]*flight[V]
	}
	hits, misses, coalesced, errors, evictions atomic.Uint64
}

type entry[V any] struct {
	val     V
	err     error
	fetched time.Time // when the fetch that produced it started
	expires time.Time
}

type flight[V any] struct {
	started time.Time
	done    chan struct{} // closed once val and err are set
	val     V
	err     error
}

func newCache[K comparable, V any](size int, timeout time.Duration, now func() time.Time,
	fetch func(context.Context, K) (V, error), ttl func(V, error) time.Duration) (*cache[K, V], error) {
	c := &cache[K, V]{now: now, timeout: timeout, fetch: fetch, ttl: ttl}
	lru, err := simplelru.NewLRU[K, entry[V]](size, nil)
	if err != nil {
		return nil, fmt.Errorf("identity: cache of %d entries: %w", size, err)
	}
	c.mu.lru = lru
	c.mu.flights = make(map[K]*flight[V])
	return c, nil
}

// get returns the cached result for key if it has not expired and was
// fetched at or after notBefore; otherwise it joins a flight for key started
// at or after notBefore, or starts one. The zero notBefore accepts any
// unexpired entry.
func (c *cache[K, V]) get(ctx context.Context, key K, notBefore time.Time) (V, error) {
	now := c.now()
	c.mu.Lock()
	if e, ok := c.mu.lru.Get(key); ok && now.Before(e.expires) && !e.fetched.Before(notBefore) {
		c.mu.Unlock()
		c.hits.Add(1)
		return e.val, e.err
	}
	f, ok := c.mu.flights[key]
	if ok && !f.started.Before(notBefore) {
		c.coalesced.Add(1)
	} else {
		f = &flight[V]{started: now, done: make(chan struct{})}
		c.mu.flights[key] = f
		c.misses.Add(1)
		go c.run(context.WithoutCancel(ctx), key, f)
	}
	c.mu.Unlock()

	select {
	case <-f.done:
		return f.val, f.err
	case <-ctx.Done():
		var zero V
		return zero, fmt.Errorf("identity: waiting for %v: %w", key, context.Cause(ctx))
	}
}

// run fetches key and publishes the result to the flight's waiters, and to
// the cache if the flight is still the current one for key (Purge, or a
// newer flight, unregisters it: its result may predate what they know).
func (c *cache[K, V]) run(ctx context.Context, key K, f *flight[V]) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	f.val, f.err = c.fetch(ctx, key)
	cancel()
	if f.err != nil {
		c.errors.Add(1)
	}
	e := entry[V]{val: f.val, err: f.err, fetched: f.started, expires: c.now().Add(c.ttl(f.val, f.err))}
	c.mu.Lock()
	if c.mu.flights[key] == f {
		delete(c.mu.flights, key)
		if c.mu.lru.Add(key, e) {
			c.evictions.Add(1)
		}
	}
	c.mu.Unlock()
	close(f.done)
}

// peek returns the unexpired entry for key without fetching or counting.
func (c *cache[K, V]) peek(key K) (entry[V], bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.mu.lru.Peek(key)
	if !ok || !now.Before(e.expires) {
		return entry[V]{}, false
	}
	return e, true
}

// remove drops key's entry and unregisters its flight, so the next get
// fetches afresh. It returns the entry that was cached, expired or not.
func (c *cache[K, V]) remove(key K) (entry[V], bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.mu.flights, key)
	e, ok := c.mu.lru.Peek(key)
	if ok {
		c.mu.lru.Remove(key)
	}
	return e, ok
}

func (c *cache[K, V]) stats() CacheStats {
	c.mu.Lock()
	n := c.mu.lru.Len()
	c.mu.Unlock()
	return CacheStats{
		Hits:      c.hits.Load(),
		Misses:    c.misses.Load(),
		Coalesced: c.coalesced.Load(),
		Errors:    c.errors.Load(),
		Evictions: c.evictions.Load(),
		Entries:   n,
	}
}
