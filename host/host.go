package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"

	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
)

// DIDCreator registers a new DID for an account (a did:plc genesis
// operation in practice) and returns it.
type DIDCreator interface {
	CreateDID(ctx context.Context, handle string, signingKey, rotationKey atcrypto.PrivateKey, pdsEndpoint string) (string, error)
}

// Options configures a Host.
type Options struct {
	DB    *store.DB
	Repos *repostore.Repos
	// DIDs registers new DIDs; nil means accounts can only adopt a DID.
	DIDs DIDCreator
	// PublicURL is this service's URL, the PDS endpoint of new DIDs.
	PublicURL string
	Logger    *slog.Logger
	Now       func() time.Time
	Clock     *repo.RevClock
	// Blobs keeps uploaded blob bytes; nil refuses uploads.
	Blobs store.BlobStore
	// MaxBlobSize bounds one upload. Default 100 MiB.
	MaxBlobSize int64
	// BlobGrace is how long an unreferenced blob is kept. Default 1h.
	BlobGrace time.Duration
	// MaxImportSize bounds an importRepo CAR, which is verified in memory.
	// Default 1 GiB.
	MaxImportSize int64
}

// Host applies changes to hosted repositories. It is safe for concurrent use.
type Host struct {
	db    *store.DB
	repos *repostore.Repos
	opts  Options
	log   *slog.Logger
	locks keyedMutex
}

// New returns a Host.
func New(opts Options) *Host {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Clock == nil {
		opts.Clock = repo.NewRevClock(0)
	}
	if opts.MaxBlobSize <= 0 {
		opts.MaxBlobSize = 100 << 20
	}
	if opts.MaxImportSize <= 0 {
		opts.MaxImportSize = 1 << 30
	}
	if opts.BlobGrace <= 0 {
		opts.BlobGrace = time.Hour
	}
	if opts.Repos == nil {
		opts.Repos = &repostore.Repos{DB: opts.DB}
	}
	return &Host{db: opts.DB, repos: opts.Repos, opts: opts, log: opts.Logger, locks: keyedMutex{m: map[string]*keyLock{}}}
}

// Errors the XRPC layer maps to lexicon errors.
var (
	ErrRepoNotFound  = errors.New("repository not found")
	ErrNotHosted     = errors.New("repository is not hosted here")
	ErrNotActive     = errors.New("account is not active")
	ErrInvalidSwap   = errors.New("swap does not match")
	ErrInvalidHandle = errors.New("invalid handle")
	ErrHandleTaken   = errors.New("handle not available")
	ErrBadKey        = errors.New("invalid signing key")
	ErrNoDIDCreator  = errors.New("no DID directory configured")
)

// account reads a hosted account.
func (h *Host) account(did string) (*store.Account, error) {
	a, err := h.db.Account(did)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("host: %s: %w", did, ErrRepoNotFound)
	}
	if err != nil {
		return nil, err
	}
	if !a.Hosted {
		return nil, fmt.Errorf("host: %s: %w", did, ErrNotHosted)
	}
	return a, nil
}

// keyedMutex holds one mutex per key while anyone holds or waits for it, so
// memory follows the number of repositories being written, not all of them.
type keyedMutex struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	refs int
}

// Lock locks key and returns its unlock function.
func (k *keyedMutex) Lock(key string) func() {
	k.mu.Lock()
	l := k.m[key]
	if l == nil {
		l = &keyLock{}
		k.m[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
