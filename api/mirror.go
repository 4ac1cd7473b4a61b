package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/reservoir-atproto/reservoir/relay"
	"github.com/reservoir-atproto/reservoir/store"
	"github.com/reservoir-atproto/reservoir/xrpc"
)

// MirroredStatus is what the admin's status routes need of the relay for
// accounts it mirrors (*relay.Ingest): our own takedown or suspension of
// one, and its reversal, applied in order with the account's upstream
// events.
type MirroredStatus interface {
	SetStatus(ctx context.Context, did string, status store.Status) error
}

var _ MirroredStatus = (*relay.Ingest)(nil)

// setMirroredStatus changes our status of a mirrored account.
func (a *API) setMirroredStatus(r *http.Request, did string, status store.Status) error {
	if a.opts.Mirrors == nil {
		return xrpc.InvalidRequest("status changes of mirrored repositories need the relay")
	}
	err := a.opts.Mirrors.SetStatus(r.Context(), did, status)
	switch {
	case errors.Is(err, relay.ErrStatusNotOurs):
		return xrpc.InvalidRequestf("%s is mirrored: only a takedown, a suspension or their reversal is the relay's to set (deactivation is the account's own, on its PDS)", did)
	case errors.Is(err, relay.ErrNotMirrored):
		return xrpc.RepoNotFound(did)
	}
	return err
}
