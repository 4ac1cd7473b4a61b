package api

import (
	"errors"
	"net/http"

	"github.com/reservoir-atproto/reservoir/host"
	"github.com/reservoir-atproto/reservoir/store"
	"github.com/reservoir-atproto/reservoir/xrpc"
)

func (a *API) registerServer(srv *xrpc.Server) {
	srv.Procedure("com.atproto.server.createAccount", a.auth.RequireAdmin(a.createAccount))
}

type createAccountInput struct {
	Handle     string `json:"handle"`
	DID        string `json:"did"`
	SigningKey string `json:"signingKey"`
}

// createAccount makes a hosted account (admin only): a new did:plc, or with
// did and signingKey (a multibase private key) an adopted identity. The
// bearer token is returned as accessJwt and refreshJwt.
func (a *API) createAccount(w http.ResponseWriter, r *http.Request) error {
	var in createAccountInput
	if err := xrpc.DecodeJSON(r, &in, xrpc.DefaultMaxBodyBytes); err != nil {
		return err
	}
	if in.Handle == "" {
		return xrpc.InvalidRequest("handle is required")
	}
	created, err := a.host.CreateAccount(r.Context(), host.CreateAccountInput{Handle: in.Handle, DID: in.DID, SigningKey: in.SigningKey})
	switch {
	case errors.Is(err, host.ErrInvalidHandle):
		return xrpc.InvalidHandle(err.Error())
	case errors.Is(err, host.ErrHandleTaken):
		return xrpc.HandleNotAvailable(in.Handle)
	case errors.Is(err, host.ErrBadKey):
		return xrpc.InvalidRequest("signingKey: not a multibase private key")
	case errors.Is(err, store.ErrExists):
		return xrpc.InvalidRequest("an account with this DID exists")
	case errors.Is(err, host.ErrNoDIDCreator):
		return xrpc.InvalidRequest("this service registers no DIDs: give did and signingKey")
	case err != nil:
		return err
	}
	acct, err := a.db.Account(created.DID)
	if err != nil {
		return err
	}
	doc, err := a.didDocument(acct)
	if err != nil {
		return err
	}
	return xrpc.WriteJSON(w, http.StatusOK, map[string]any{
		"did": created.DID, "handle": created.Handle, "accessJwt": created.Token, "refreshJwt": created.Token, "didDoc": doc,
	})
}

// didDocument describes a hosted account as its DID document says it:
// handle, signing key and this service as its PDS. A mirrored account gets
// only its id (its document is its directory's to serve).
func (a *API) didDocument(acct *store.Account) (map[string]any, error) {
	doc := map[string]any{
		"@context": []string{"https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"},
		"id":       acct.DID,
	}
	if !acct.Hosted || a.host == nil {
		return doc, nil
	}
	if acct.Handle != "" {
		doc["alsoKnownAs"] = []string{"at://" + acct.Handle}
	}
	key, err := a.host.PublicKey(acct)
	if err != nil {
		return nil, err
	}
	doc["verificationMethod"] = []map[string]any{{
		"id": acct.DID + "#atproto", "type": "Multikey", "controller": acct.DID, "publicKeyMultibase": key.Multibase(),
	}}
	if a.opts.PublicURL != "" {
		doc["service"] = []map[string]any{{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": a.opts.PublicURL}}
	}
	return doc, nil
}
