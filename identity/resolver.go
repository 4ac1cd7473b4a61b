package identity

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	indigo "github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Resolver resolves DIDs and handles through one shared, bounded cache. It is
// safe for concurrent use; make one per process and share it.
type Resolver struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	client  *http.Client
	dir     *indigo.BaseDirectory // the network engine: did:plc, did:web, handle well-known
	dids    *cache[syntax.DID, *Identity]
	handles *cache[syntax.Handle, syntax.DID]
	purges  atomic.Uint64
}

// New returns a Resolver with opts, defaults filled in. It fails only on
// invalid options (a malformed PLCURL, a negative duration or size).
func New(opts Options) (*Resolver, error) {
	return newResolver(opts, time.Now)
}

// newResolver is New with the clock the caches use (tests inject one).
func newResolver(opts Options, now func() time.Time) (*Resolver, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Resolver{opts: o, log: o.Logger, now: now, client: newHTTPClient(o)}
	r.dir = &indigo.BaseDirectory{
		PLCURL:     o.PLCURL,
		HTTPClient: *r.client,
		UserAgent:  o.UserAgent,
	}
	r.dids, err = newCache(o.CacheSize, o.Timeout, now, r.fetchDID, r.identityTTL)
	if err != nil {
		return nil, err
	}
	r.handles, err = newCache(o.CacheSize, o.Timeout, now, r.fetchHandle, func(_ syntax.DID, err error) time.Duration {
		if err != nil {
			return o.ErrorTTL
		}
		return o.TTL
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Resolver) identityTTL(id *Identity, err error) time.Duration {
	switch {
	case err != nil:
		return r.opts.ErrorTTL
	case id.Handle.IsInvalidHandle() && id.DeclaredHandle != "" && !r.opts.SkipHandleVerification:
		return r.opts.InvalidHandleTTL
	}
	return r.opts.TTL
}

// LookupDID returns the identity of did, from the cache or the network.
// Failures are cached too, for ErrorTTL. The returned Identity may lack a
// signing key or PDS endpoint; SigningKey and PDSEndpoint turn those into
// errors.
func (r *Resolver) LookupDID(ctx context.Context, did syntax.DID) (*Identity, error) {
	return r.lookupDID(ctx, did, time.Time{})
}

func (r *Resolver) lookupDID(ctx context.Context, did syntax.DID, notBefore time.Time) (*Identity, error) {
	if m := didMethod(did); m != "plc" && m != "web" {
		return nil, fmt.Errorf("identity: %q: %w", did, ErrUnsupportedDIDMethod)
	}
	return r.dids.get(ctx, did, notBefore)
}

// didMethod is did.Method() without its allocation (a hot path).
func didMethod(did syntax.DID) string {
	rest, ok := strings.CutPrefix(string(did), "did:")
	if !ok {
		return ""
	}
	m, _, _ := strings.Cut(rest, ":")
	return m
}

// LookupHandle resolves a handle to a DID, looks the DID up, and checks that
// its document claims the handle back. The returned Identity's Handle is h
// (normalized to lower case).
func (r *Resolver) LookupHandle(ctx context.Context, h syntax.Handle) (*Identity, error) {
	h = h.Normalize()
	if h.IsInvalidHandle() {
		return nil, fmt.Errorf("identity: %w", ErrInvalidHandle)
	}
	if !h.AllowedTLD() {
		return nil, fmt.Errorf("identity: %s: %w", h, ErrHandleReservedTLD)
	}
	did, err := r.handles.get(ctx, h, time.Time{})
	if err != nil {
		return nil, err
	}
	id, err := r.LookupDID(ctx, did)
	if err != nil {
		return nil, fmt.Errorf("identity: handle %s resolves to %s: %w", h, did, err)
	}
	if id.DeclaredHandle != h {
		return nil, fmt.Errorf("identity: handle %s resolves to %s, whose document claims %q: %w", h, did, id.DeclaredHandle, ErrHandleMismatch)
	}
	if id.Handle != h {
		// Verified just now, both ways, though the cached identity is not
		// (it was cached before the handle resolved, or without checking).
		verified := *id
		verified.Handle = h
		return &verified, nil
	}
	return id, nil
}

// Purge drops what the cache knows about did: its identity, the handle
// mappings that identity named, and any lookup of it in flight (whose
// result will not be cached). The next lookup goes to the network. Call it
// on #identity events.
func (r *Resolver) Purge(did syntax.DID) {
	r.purges.Add(1)
	e, ok := r.dids.remove(did)
	if !ok || e.val == nil {
		return
	}
	if h := e.val.Handle; !h.IsInvalidHandle() {
		r.handles.remove(h)
	}
	if h := e.val.DeclaredHandle; h != "" {
		r.handles.remove(h)
	}
}

// SigningKey returns the #atproto key of did, for verifying commits.
func (r *Resolver) SigningKey(ctx context.Context, did syntax.DID) (atcrypto.PublicKey, error) {
	return signingKey(r.LookupDID(ctx, did))
}

// RefreshSigningKey is SigningKey from a document fetched no longer than
// RefreshInterval ago: call it once after a signature fails to verify with
// the cached key, then retry the verification once. Concurrent refreshes of
// one DID share one request, and a document fetched within RefreshInterval
// is not fetched again.
func (r *Resolver) RefreshSigningKey(ctx context.Context, did syntax.DID) (atcrypto.PublicKey, error) {
	return signingKey(r.lookupDID(ctx, did, r.now().Add(-r.opts.RefreshInterval)))
}

func signingKey(id *Identity, err error) (atcrypto.PublicKey, error) {
	if err != nil {
		return nil, err
	}
	if id.SigningKey == nil {
		return nil, fmt.Errorf("identity: %s: %w: %w", id.DID, ErrNoSigningKey, id.keyErr)
	}
	return id.SigningKey, nil
}

// PDSEndpoint returns the #atproto_pds origin of did.
func (r *Resolver) PDSEndpoint(ctx context.Context, did syntax.DID) (string, error) {
	id, err := r.LookupDID(ctx, did)
	if err != nil {
		return "", err
	}
	if id.PDSEndpoint == "" {
		return "", fmt.Errorf("identity: %s: %w: %w", did, ErrNoPDS, id.pdsErr)
	}
	return id.PDSEndpoint, nil
}

// Stats are counters of a Resolver since New, and its cache sizes.
type Stats struct {
	DIDs    CacheStats // identity lookups (LookupDID, SigningKey, ...)
	Handles CacheStats // handle-to-DID resolutions (LookupHandle, handle checks)
	Purges  uint64     // Purge calls
}

// CacheStats count the lookups of one cache.
type CacheStats struct {
	Hits      uint64 // answered from the cache, failures included
	Misses    uint64 // started a network lookup
	Coalesced uint64 // waited for a network lookup another caller had started
	Errors    uint64 // network lookups that failed
	Evictions uint64 // entries dropped to stay within CacheSize
	Entries   int    // entries held now, expired ones not yet dropped included
}

// Stats returns a snapshot of the counters.
func (r *Resolver) Stats() Stats {
	return Stats{DIDs: r.dids.stats(), Handles: r.handles.stats(), Purges: r.purges.Load()}
}
