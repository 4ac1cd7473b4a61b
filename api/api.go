package api

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/events"
	"github.com/reservoir-atproto/reservoir/host"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
	"github.com/reservoir-atproto/reservoir/xrpc"
)

// Options configures the API.
type Options struct {
	DB    *store.DB
	Repos *repostore.Repos
	Host  *host.Host
	Auth  *xrpc.Auth
	// PublicURL is this service's URL (for DID documents of hosted accounts).
	PublicURL string
	Logger    *slog.Logger
	Now       func() time.Time

	// Firehose serves com.atproto.sync.subscribeRepos; nil answers 501.
	Firehose *events.Firehose
	// Mirrors changes the status of mirrored accounts (the admin's
	// takedown routes); nil refuses them (mirror.go).
	Mirrors MirroredStatus
	// LeanMirrors (serve --archive=false): mirrored accounts have no
	// content here; its reads redirect to their PDS (lean.go).
	LeanMirrors bool
}

// API serves the endpoints. It keeps no state of its own.
type API struct {
	db    *store.DB
	repos *repostore.Repos
	host  *host.Host
	auth  *xrpc.Auth
	opts  Options
	log   *slog.Logger
}

// New returns the API.
func New(opts Options) *API {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Repos == nil {
		opts.Repos = &repostore.Repos{DB: opts.DB}
	}
	if opts.Auth == nil {
		opts.Auth = &xrpc.Auth{}
	}
	return &API{db: opts.DB, repos: opts.Repos, host: opts.Host, auth: opts.Auth, opts: opts, log: opts.Logger}
}

// Register adds every endpoint to srv.
func (a *API) Register(srv *xrpc.Server) {
	a.registerSync(srv)
	a.registerSubscribe(srv)
	a.registerRepo(srv)
	a.registerServer(srv)
	a.registerAdmin(srv)
}

// account returns the account for a DID, or RepoNotFound (also for a
// deleted account, which no longer exists as a repository).
func (a *API) account(did string) (*store.Account, error) {
	acct, err := a.db.Account(did)
	if errors.Is(err, store.ErrNotFound) || (err == nil && acct.Status == store.StatusDeleted) {
		return nil, xrpc.RepoNotFound(did)
	}
	if err != nil {
		return nil, err
	}
	return acct, nil
}

// available is the availability gate of repository reads.
func (a *API) available(r *http.Request, did string) (*store.Account, error) {
	acct, err := a.account(did)
	if err != nil {
		return nil, err
	}
	if acct.Status.Active() {
		return acct, nil
	}
	if c, ok := xrpc.CallerFrom(r.Context()); ok && c.IsSelfOrAdmin(did) {
		return acct, nil
	}
	return nil, statusError(acct)
}

// statusError is the lexicon error of an inactive account.
func statusError(acct *store.Account) error {
	switch acct.Status {
	case store.StatusTakendown:
		return xrpc.RepoTakendown(acct.DID)
	case store.StatusSuspended:
		return xrpc.RepoSuspended(acct.DID)
	case store.StatusDeactivated:
		return xrpc.RepoDeactivated(acct.DID)
	}
	return xrpc.RepoNotFound(acct.DID)
}

// gatedRepo parses the query parameters, reads the did parameter and gates
// the repository: how every repository read starts.
func (a *API) gatedRepo(r *http.Request) (xrpc.Params, *store.Account, error) {
	p, err := xrpc.ParamsFrom(r)
	if err != nil {
		return p, nil, err
	}
	acct, err := a.repoParam(r, p)
	return p, acct, err
}

// repoParam reads the did parameter and gates the repository.
func (a *API) repoParam(r *http.Request, p xrpc.Params) (*store.Account, error) {
	did, err := p.DID("did")
	if err != nil {
		return nil, err
	}
	return a.available(r, string(did))
}

// resolveRepo turns an at-identifier (DID or handle of an account held
// here) into a DID.
func (a *API) resolveRepo(id syntax.AtIdentifier) (string, error) {
	if did, err := id.AsDID(); err == nil {
		return string(did), nil
	}
	h, err := id.AsHandle()
	if err != nil {
		return "", xrpc.InvalidRequestf("repo: %v", err)
	}
	did, err := a.db.DIDForHandle(string(h.Normalize()))
	if err != nil {
		return "", xrpc.RepoNotFound(string(h))
	}
	return did, nil
}

// uidCursor parses an opaque cursor holding a UID ("" is the start).
func uidCursor(p xrpc.Params) (uint64, error) {
	s, err := p.String("cursor", false)
	if err != nil || s == "" {
		return 0, err
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, xrpc.InvalidRequest("cursor: not a cursor this service issued")
	}
	return n, nil
}

func formatUID(uid uint64) string { return strconv.FormatUint(uid, 10) }
