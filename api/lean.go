package api

import (
	"errors"
	"net/http"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/store"
	"github.com/reservoir-atproto/reservoir/xrpc"
)

// A lean relay (Options.LeanMirrors, serve --archive=false) keeps only the
// state of the accounts it mirrors: getLatestCommit, getHead,
// getRepoStatus, listRepos and listReposByCollection answer from it, but
// their content (blocks, records, blobs) is not here. A read of content of
// a mirrored account is redirected (302 Found) to the same path and query
// at the account's PDS, as the reference relay does for getRepo, after
// our availability gate: an account taken down here answers RepoTakendown
// rather than a way around the takedown. Hosted accounts are served as
// always.

// content wraps the handler of a content read whose account is named by
// param ("did" for com.atproto.sync, "repo" for com.atproto.repo).
func (a *API) content(param string, h xrpc.HandlerFunc) xrpc.HandlerFunc {
	if !a.opts.LeanMirrors {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := syntax.ParseAtIdentifier(r.URL.Query().Get(param))
		if err != nil {
			return h(w, r) // the handler answers the bad parameter
		}
		did, err := a.resolveRepo(id)
		if err != nil {
			return h(w, r)
		}
		acct, err := a.db.Account(did)
		if err != nil || acct.Hosted {
			return h(w, r)
		}
		if _, err := a.available(r, did); err != nil {
			return err
		}
		return a.redirectToPDS(w, r, acct)
	}
}

// redirectToPDS answers 302 to the same request at the mirrored account's
// host (https, or http for a host crawled without TLS).
func (a *API) redirectToPDS(w http.ResponseWriter, r *http.Request, acct *store.Account) error {
	if acct.Host == "" {
		return xrpc.RepoNotFound(acct.DID)
	}
	scheme := "https://"
	h, err := a.db.Host(acct.Host)
	switch {
	case err == nil && h.NoSSL:
		scheme = "http://"
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return err
	}
	loc := scheme + acct.Host + r.URL.Path
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	http.Redirect(w, r, loc, http.StatusFound)
	return nil
}
