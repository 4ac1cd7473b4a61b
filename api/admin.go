package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/host"
	"github.com/reservoir-atproto/reservoir/store"
	"github.com/reservoir-atproto/reservoir/xrpc"
)

func (a *API) registerAdmin(srv *xrpc.Server) {
	srv.Procedure("com.atproto.admin.updateSubjectStatus", a.auth.RequireAdmin(a.updateSubjectStatus))
	srv.Query("com.atproto.admin.getSubjectStatus", a.auth.RequireAdmin(a.getSubjectStatus))
}

type statusAttr struct {
	Applied bool   `json:"applied"`
	Ref     string `json:"ref,omitempty"`
}

type subjectStatusInput struct {
	Subject struct {
		Type string `json:"$type"`
		DID  string `json:"did"`
	} `json:"subject"`
	Takedown    *statusAttr `json:"takedown"`
	Deactivated *statusAttr `json:"deactivated"`
}

// updateSubjectStatus applies or lifts a takedown (or deactivation) of a
// repository (com.atproto.admin.defs#repoRef subjects only).
func (a *API) updateSubjectStatus(w http.ResponseWriter, r *http.Request) error {
	var in subjectStatusInput
	if err := xrpc.DecodeJSON(r, &in, xrpc.DefaultMaxBodyBytes); err != nil {
		return err
	}
	if in.Subject.Type != "com.atproto.admin.defs#repoRef" {
		return xrpc.InvalidRequestf("subject: only com.atproto.admin.defs#repoRef is supported, not %q", in.Subject.Type)
	}
	if _, err := syntax.ParseDID(in.Subject.DID); err != nil {
		return xrpc.InvalidRequestf("subject.did: %v", err)
	}
	status := store.Status("")
	switch {
	case in.Takedown != nil && in.Takedown.Applied:
		status = store.StatusTakendown
	case in.Deactivated != nil && in.Deactivated.Applied:
		status = store.StatusDeactivated
	case in.Takedown == nil && in.Deactivated == nil:
		return xrpc.InvalidRequest("takedown or deactivated is required")
	}
	if err := a.setStatus(r, in.Subject.DID, status); err != nil {
		return err
	}
	// The output schema has subject and takedown only (no deactivated).
	out := map[string]any{"subject": map[string]any{"$type": in.Subject.Type, "did": in.Subject.DID}}
	if in.Takedown != nil {
		out["takedown"] = in.Takedown
	}
	return xrpc.WriteJSON(w, http.StatusOK, out)
}

func (a *API) getSubjectStatus(w http.ResponseWriter, r *http.Request) error {
	p, err := xrpc.ParamsFrom(r)
	if err != nil {
		return err
	}
	did, err := p.DID("did")
	if err != nil {
		return err
	}
	acct, err := a.account(string(did))
	if err != nil {
		return err
	}
	return xrpc.WriteJSON(w, http.StatusOK, map[string]any{
		"subject":     map[string]any{"$type": "com.atproto.admin.defs#repoRef", "did": acct.DID},
		"takedown":    statusAttr{Applied: acct.Status == store.StatusTakendown},
		"deactivated": statusAttr{Applied: acct.Status == store.StatusDeactivated},
	})
}

func (a *API) setStatus(r *http.Request, did string, status store.Status) error {
	if _, err := a.account(did); err != nil {
		return err
	}
	err := a.host.SetStatus(r.Context(), did, status)
	if errors.Is(err, host.ErrNotHosted) {
		return a.setMirroredStatus(r, did, status)
	}
	return hostError(did, err)
}

// AdminHandler serves the /admin/ routes of the contract (mount it under
// /admin/ behind admin auth):
//
//	POST   /admin/accounts/{did}/takedown|suspend|deactivate|reactivate
//	DELETE /admin/accounts/{did}
//	GET    /admin/collections       repositories per collection (collections.go)
func (a *API) AdminHandler() xrpc.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if r.URL.Path == "/admin/collections" {
			return a.adminCollections(w, r)
		}
		rest, ok := strings.CutPrefix(r.URL.Path, "/admin/accounts/")
		if !ok {
			return xrpc.NewError(http.StatusNotFound, "NotFound", "no such admin route")
		}
		did, action, _ := strings.Cut(rest, "/")
		if _, err := syntax.ParseDID(did); err != nil {
			return xrpc.InvalidRequestf("did: %v", err)
		}
		var err error
		switch {
		case r.Method == http.MethodDelete && action == "":
			var acct *store.Account
			if acct, err = a.account(did); err == nil {
				if !acct.Hosted {
					// Only its host deletes a mirrored account (the relay
					// follows with the host's #account); here it can be
					// taken down, which stops serving it and ingesting it.
					return xrpc.InvalidRequestf("%s is mirrored from %s, not hosted here: its host deletes it; take it down here with POST /admin/accounts/%s/takedown", did, acct.Host, did)
				}
				err = hostError(did, a.host.DeleteAccount(r.Context(), did))
			}
		case r.Method == http.MethodPost:
			statuses := map[string]store.Status{"takedown": store.StatusTakendown, "suspend": store.StatusSuspended, "deactivate": store.StatusDeactivated, "reactivate": store.StatusActive}
			st, known := statuses[action]
			if !known {
				return xrpc.NewError(http.StatusNotFound, "NotFound", "no such admin action: "+action)
			}
			err = a.setStatus(r, did, st)
		default:
			return xrpc.MethodNotAllowed(r.Method, http.MethodPost, http.MethodDelete)
		}
		if err != nil {
			return err
		}
		acct, err := a.db.Account(did)
		if err != nil {
			return err
		}
		return xrpc.WriteJSON(w, http.StatusOK, map[string]any{"did": did, "active": acct.Status.Active(), "status": string(acct.Status)})
	}
}
