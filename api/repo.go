package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/host"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/store"
	"github.com/reservoir-atproto/reservoir/xrpc"
)

// Body limits of the write procedures. A record is at most 1 MB of CBOR,
// which is at most ~2 MiB of JSON; applyWrites carries up to 200 writes.
const (
	maxRecordInput      = 4 << 20
	maxApplyWritesInput = 16 << 20
)

func (a *API) registerRepo(srv *xrpc.Server) {
	p := func(nsid string, limit int64, h xrpc.HandlerFunc) {
		srv.Handle(xrpc.Route{NSID: "com.atproto.repo." + nsid, Kind: xrpc.KindProcedure, MaxBodyBytes: limit}, a.auth.RequireAuth(h))
	}
	p("createRecord", maxRecordInput, a.createRecord)
	p("putRecord", maxRecordInput, a.putRecord)
	p("deleteRecord", 0, a.deleteRecord)
	p("applyWrites", maxApplyWritesInput, a.applyWrites)
	p("uploadBlob", -1, a.uploadBlob) // the host bounds the blob size
	p("importRepo", -1, a.importRepo) // the host bounds the CAR size
	srv.Query("com.atproto.repo.getRecord", a.auth.OptionalAuth(a.content("repo", a.repoGetRecord)))
	srv.Query("com.atproto.repo.listRecords", a.auth.OptionalAuth(a.content("repo", a.listRecords)))
	srv.Query("com.atproto.repo.describeRepo", a.auth.OptionalAuth(a.content("repo", a.describeRepo)))
}

// writer checks that the caller may write to repo (an at-identifier of a
// hosted account) and returns its DID.
func (a *API) writer(r *http.Request, repoID string) (string, error) {
	id, err := syntax.ParseAtIdentifier(repoID)
	if err != nil {
		return "", xrpc.InvalidRequestf("repo: %v", err)
	}
	did, err := a.resolveRepo(id)
	if err != nil {
		return "", err
	}
	c, _ := xrpc.CallerFrom(r.Context())
	if !c.IsSelfOrAdmin(did) {
		return "", xrpc.Forbidden("the credentials are not those of " + did)
	}
	// A deleted account is no repository any more (not merely inactive).
	if _, err := a.account(did); err != nil {
		return "", err
	}
	return did, nil
}

// hostError maps the host's errors to lexicon errors.
func hostError(did string, err error) error {
	var inv *xrpc.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &inv):
		return err
	case errors.Is(err, host.ErrRepoNotFound), errors.Is(err, host.ErrNotHosted):
		return xrpc.RepoNotFound(did).WithCause(err)
	case errors.Is(err, host.ErrNotActive):
		return xrpc.Forbidden("the account is not active").WithCause(err)
	case errors.Is(err, host.ErrInvalidSwap):
		return xrpc.InvalidSwap(err.Error())
	case errors.Is(err, host.ErrBlobNotFound):
		return xrpc.InvalidRequest(strings.TrimPrefix(err.Error(), "host: ")).WithCause(err)
	case errors.Is(err, host.ErrBlobTooLarge):
		return xrpc.NewError(http.StatusRequestEntityTooLarge, "BlobTooLarge", err.Error())
	case errors.Is(err, host.ErrInvalidRepo):
		return xrpc.InvalidRequest(err.Error()).WithCause(err)
	case errors.Is(err, repo.ErrRecordExists), errors.Is(err, repo.ErrInvalidRecord), errors.Is(err, repo.ErrInvalidOp),
		errors.Is(err, repo.ErrTooManyOps), errors.Is(err, repo.ErrTooLarge):
		return xrpc.InvalidRequest(strings.TrimPrefix(strings.TrimPrefix(err.Error(), "host: "), "repo: ")).WithCause(err)
	}
	return err
}

// recordInput is a record from JSON, checked and encoded as DAG-CBOR; its
// $type must name the collection.
func recordInput(collection string, raw json.RawMessage) ([]byte, error) {
	if len(raw) == 0 {
		return nil, xrpc.InvalidRequest("record is required")
	}
	rec, err := dagcbor.ParseRecordJSON(raw)
	if err != nil {
		return nil, xrpc.InvalidRequestf("record: %v", strings.TrimPrefix(err.Error(), "dagcbor: "))
	}
	if t, _ := rec["$type"].(string); t != collection {
		return nil, xrpc.InvalidRequestf("record: $type %q does not match the collection %s", rec["$type"], collection)
	}
	b, err := dagcbor.Marshal(rec)
	if err != nil {
		return nil, xrpc.InvalidRequestf("record: %v", err)
	}
	return b, nil
}

func optionalCID(name, s string) (cid.Cid, error) {
	if s == "" {
		return cid.Undef, nil
	}
	c, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, xrpc.InvalidRequestf("%s: invalid CID: %v", name, err)
	}
	return c, nil
}

func atURI(did, path string) string { return "at://" + did + "/" + path }

func commitMeta(res *host.WriteResult) map[string]any {
	return map[string]any{"cid": res.Commit.String(), "rev": res.Rev}
}

type createRecordInput struct {
	Repo       string          `json:"repo"`
	Collection string          `json:"collection"`
	RKey       string          `json:"rkey"`
	Validate   *bool           `json:"validate"`
	Record     json.RawMessage `json:"record"`
	SwapCommit string          `json:"swapCommit"`
}

func (a *API) createRecord(w http.ResponseWriter, r *http.Request) error {
	var in createRecordInput
	if err := xrpc.DecodeJSON(r, &in, maxRecordInput); err != nil {
		return err
	}
	did, err := a.writer(r, in.Repo)
	if err != nil {
		return err
	}
	if _, err := syntax.ParseNSID(in.Collection); err != nil {
		return xrpc.InvalidRequestf("collection: %v", err)
	}
	if in.RKey == "" {
		in.RKey = string(syntax.NewTIDNow(0))
	} else if _, err := syntax.ParseRecordKey(in.RKey); err != nil {
		return xrpc.InvalidRequestf("rkey: %v", err)
	}
	rec, err := recordInput(in.Collection, in.Record)
	if err != nil {
		return err
	}
	swap, err := optionalCID("swapCommit", in.SwapCommit)
	if err != nil {
		return err
	}
	path := in.Collection + "/" + in.RKey
	res, err := a.host.ApplyWrites(r.Context(), did, []host.Write{{Write: repo.Write{Action: repo.ActionCreate, Path: path, Record: rec}}}, swap)
	if err != nil {
		return hostError(did, err)
	}
	return xrpc.WriteJSON(w, http.StatusOK, map[string]any{
		"uri": atURI(did, path), "cid": dagcbor.SumCBOR(rec).String(), "commit": commitMeta(res), "validationStatus": "unknown",
	})
}

type putRecordInput struct {
	Repo       string          `json:"repo"`
	Collection string          `json:"collection"`
	RKey       string          `json:"rkey"`
	Validate   *bool           `json:"validate"`
	Record     json.RawMessage `json:"record"`
	SwapRecord json.RawMessage `json:"swapRecord"` // nullable: null means "must not exist"
	SwapCommit string          `json:"swapCommit"`
}

// swapRecordInput reads a nullable swapRecord: absent (no check), null (the
// record must not exist) or a CID.
func swapRecordInput(raw json.RawMessage) (c cid.Cid, set bool, err error) {
	if len(raw) == 0 {
		return cid.Undef, false, nil
	}
	if string(raw) == "null" {
		return cid.Undef, true, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return cid.Undef, false, xrpc.InvalidRequest("swapRecord: not a CID string")
	}
	c, err = optionalCID("swapRecord", s)
	return c, true, err
}

func (a *API) putRecord(w http.ResponseWriter, r *http.Request) error {
	var in putRecordInput
	if err := xrpc.DecodeJSON(r, &in, maxRecordInput); err != nil {
		return err
	}
	did, err := a.writer(r, in.Repo)
	if err != nil {
		return err
	}
	path, err := recordPath(in.Collection, in.RKey)
	if err != nil {
		return err
	}
	rec, err := recordInput(in.Collection, in.Record)
	if err != nil {
		return err
	}
	swapRec, swapSet, err := swapRecordInput(in.SwapRecord)
	if err != nil {
		return err
	}
	swap, err := optionalCID("swapCommit", in.SwapCommit)
	if err != nil {
		return err
	}
	res, err := a.host.ApplyWrites(r.Context(), did, []host.Write{{Write: repo.Write{Action: repo.ActionUpdate, Path: path, Record: rec}, SwapRecord: swapRec, SwapSet: swapSet}}, swap)
	if err != nil {
		return hostError(did, err)
	}
	out := map[string]any{"uri": atURI(did, path), "cid": dagcbor.SumCBOR(rec).String(), "validationStatus": "unknown"}
	if len(res.Ops) > 0 {
		out["commit"] = commitMeta(res)
	}
	return xrpc.WriteJSON(w, http.StatusOK, out)
}

func recordPath(collection, rkey string) (string, error) {
	if _, err := syntax.ParseNSID(collection); err != nil {
		return "", xrpc.InvalidRequestf("collection: %v", err)
	}
	if _, err := syntax.ParseRecordKey(rkey); err != nil {
		return "", xrpc.InvalidRequestf("rkey: %v", err)
	}
	return collection + "/" + rkey, nil
}

type deleteRecordInput struct {
	Repo       string          `json:"repo"`
	Collection string          `json:"collection"`
	RKey       string          `json:"rkey"`
	SwapRecord json.RawMessage `json:"swapRecord"`
	SwapCommit string          `json:"swapCommit"`
}

func (a *API) deleteRecord(w http.ResponseWriter, r *http.Request) error {
	var in deleteRecordInput
	if err := xrpc.DecodeJSON(r, &in, xrpc.DefaultMaxBodyBytes); err != nil {
		return err
	}
	did, err := a.writer(r, in.Repo)
	if err != nil {
		return err
	}
	path, err := recordPath(in.Collection, in.RKey)
	if err != nil {
		return err
	}
	swapRec, swapSet, err := swapRecordInput(in.SwapRecord)
	if err != nil {
		return err
	}
	swap, err := optionalCID("swapCommit", in.SwapCommit)
	if err != nil {
		return err
	}
	res, err := a.host.ApplyWrites(r.Context(), did, []host.Write{{Write: repo.Write{Action: repo.ActionDelete, Path: path}, SwapRecord: swapRec, SwapSet: swapSet}}, swap)
	if errors.Is(err, repo.ErrRecordNotFound) {
		return xrpc.WriteJSON(w, http.StatusOK, map[string]any{}) // deleting nothing changes nothing
	}
	if err != nil {
		return hostError(did, err)
	}
	return xrpc.WriteJSON(w, http.StatusOK, map[string]any{"commit": commitMeta(res)})
}

type applyWritesInput struct {
	Repo     string `json:"repo"`
	Validate *bool  `json:"validate"`
	Writes   []struct {
		Type       string          `json:"$type"`
		Collection string          `json:"collection"`
		RKey       string          `json:"rkey"`
		Value      json.RawMessage `json:"value"`
	} `json:"writes"`
	SwapCommit string `json:"swapCommit"`
}

func (a *API) applyWrites(w http.ResponseWriter, r *http.Request) error {
	var in applyWritesInput
	if err := xrpc.DecodeJSON(r, &in, maxApplyWritesInput); err != nil {
		return err
	}
	did, err := a.writer(r, in.Repo)
	if err != nil {
		return err
	}
	if len(in.Writes) > repo.MaxCommitOps {
		return xrpc.InvalidRequestf("writes: at most %d", repo.MaxCommitOps)
	}
	writes := make([]host.Write, len(in.Writes))
	results := make([]map[string]any, len(in.Writes))
	for i, wr := range in.Writes {
		rkey := wr.RKey
		var action repo.Action
		switch wr.Type {
		case "com.atproto.repo.applyWrites#create":
			action = repo.ActionCreate
			if rkey == "" {
				rkey = string(syntax.NewTIDNow(uint(i) & 0x3ff))
			}
		case "com.atproto.repo.applyWrites#update":
			action = repo.ActionUpdate
		case "com.atproto.repo.applyWrites#delete":
			action = repo.ActionDelete
		default:
			return xrpc.InvalidRequestf("writes[%d]: unknown $type %q", i, wr.Type)
		}
		path, err := recordPath(wr.Collection, rkey)
		if err != nil {
			return xrpc.InvalidRequestf("writes[%d]: %s", i, err.(*xrpc.Error).Message)
		}
		writes[i] = host.Write{Write: repo.Write{Action: action, Path: path}}
		results[i] = map[string]any{"$type": wr.Type + "Result"}
		if action != repo.ActionDelete {
			rec, err := recordInput(wr.Collection, wr.Value)
			if err != nil {
				return xrpc.InvalidRequestf("writes[%d]: %s", i, err.(*xrpc.Error).Message)
			}
			writes[i].Record = rec
			results[i]["uri"] = atURI(did, path)
			results[i]["cid"] = dagcbor.SumCBOR(rec).String()
			results[i]["validationStatus"] = "unknown"
		}
	}
	swap, err := optionalCID("swapCommit", in.SwapCommit)
	if err != nil {
		return err
	}
	res, err := a.host.ApplyWrites(r.Context(), did, writes, swap)
	if err != nil {
		return hostError(did, err)
	}
	return xrpc.WriteJSON(w, http.StatusOK, map[string]any{"commit": commitMeta(res), "results": results})
}

// targetAccount is the account an upload or import is for: the bearer
// token's own, or (for an admin) the `repo` query parameter.
func (a *API) targetAccount(r *http.Request) (string, error) {
	c, _ := xrpc.CallerFrom(r.Context())
	p, err := xrpc.ParamsFrom(r)
	if err != nil {
		return "", err
	}
	did, err := p.OptionalDID("repo")
	if err != nil {
		return "", err
	}
	switch {
	case did != "" && !c.IsSelfOrAdmin(string(did)):
		return "", xrpc.Forbidden("the credentials are not those of " + string(did))
	case did == "" && c.DID == "":
		return "", xrpc.InvalidRequest("repo: required with admin credentials")
	case did == "":
		did = syntax.DID(c.DID)
	}
	if _, err := a.account(string(did)); err != nil {
		return "", err
	}
	return string(did), nil
}

func (a *API) uploadBlob(w http.ResponseWriter, r *http.Request) error {
	did, err := a.targetAccount(r)
	if err != nil {
		return err
	}
	mime := r.Header.Get("Content-Type")
	if i := strings.IndexByte(mime, ';'); i >= 0 && !strings.HasPrefix(mime, "text/") {
		mime = strings.TrimSpace(mime[:i])
	}
	blob, err := a.host.UploadBlob(r.Context(), did, mime, r.Body)
	if err != nil {
		return hostError(did, err)
	}
	return xrpc.WriteJSON(w, http.StatusOK, map[string]any{"blob": map[string]any{
		"$type": "blob", "ref": map[string]any{"$link": blob.Ref.String()}, "mimeType": blob.MimeType, "size": blob.Size,
	}})
}

func (a *API) importRepo(w http.ResponseWriter, r *http.Request) error {
	did, err := a.targetAccount(r)
	if err != nil {
		return err
	}
	if err := a.host.ImportRepo(r.Context(), did, r.Body); err != nil {
		return hostError(did, err)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// readAccount resolves the repo parameter of the JSON reads and gates it.
func (a *API) readAccount(r *http.Request, p xrpc.Params) (*store.Account, error) {
	id, err := p.AtIdentifier("repo")
	if err != nil {
		return nil, err
	}
	did, err := a.resolveRepo(id)
	if err != nil {
		return nil, err
	}
	return a.available(r, did)
}

func (a *API) repoGetRecord(w http.ResponseWriter, r *http.Request) error {
	p, err := xrpc.ParamsFrom(r)
	if err != nil {
		return err
	}
	acct, err := a.readAccount(r, p)
	if err != nil {
		return err
	}
	coll, err := p.NSID("collection")
	if err != nil {
		return err
	}
	rkey, err := p.RecordKey("rkey")
	if err != nil {
		return err
	}
	want, err := p.OptionalCID("cid")
	if err != nil {
		return err
	}
	path := string(coll) + "/" + string(rkey)
	c, data, err := a.repos.Record(acct, path)
	if errors.Is(err, store.ErrNotFound) || (err == nil && want.Defined() && want != c) {
		return xrpc.RecordNotFound(path)
	}
	if err != nil {
		return err
	}
	value, err := recordJSON(data)
	if err != nil {
		return err
	}
	return xrpc.WriteJSON(w, http.StatusOK, map[string]any{"uri": atURI(acct.DID, path), "cid": c.String(), "value": value})
}

// recordJSON converts a stored record to its JSON form.
func recordJSON(data []byte) (json.RawMessage, error) {
	v, err := dagcbor.Unmarshal(data)
	if err != nil {
		return nil, fmt.Errorf("api: stored record: %w", err)
	}
	j, err := dagcbor.ToJSON(v)
	if err != nil {
		return nil, fmt.Errorf("api: stored record: %w", err)
	}
	return json.RawMessage(j), nil
}

func (a *API) listRecords(w http.ResponseWriter, r *http.Request) error {
	p, err := xrpc.ParamsFrom(r)
	if err != nil {
		return err
	}
	acct, err := a.readAccount(r, p)
	if err != nil {
		return err
	}
	coll, err := p.NSID("collection")
	if err != nil {
		return err
	}
	limit, err := p.Int("limit", 50, 1, 100)
	if err != nil {
		return err
	}
	cursor, err := p.String("cursor", false)
	if err != nil {
		return err
	}
	reverse, err := p.Bool("reverse", false)
	if err != nil {
		return err
	}
	// Newest first by default, as the reference PDS lists (rkeys are
	// usually TIDs); reverse=true lists oldest first.
	entries, err := a.db.Records(acct.UID, string(coll), cursor, int(limit), !reverse)
	if err != nil {
		return err
	}
	records := make([]map[string]any, 0, len(entries))
	for _, e := range entries {
		c, data, err := a.repos.Record(acct, string(coll)+"/"+e.RKey)
		if err != nil {
			return fmt.Errorf("api: record %s/%s: %w", coll, e.RKey, err)
		}
		value, err := recordJSON(data)
		if err != nil {
			return err
		}
		records = append(records, map[string]any{"uri": atURI(acct.DID, string(coll)+"/"+e.RKey), "cid": c.String(), "value": value})
	}
	out := map[string]any{"records": records}
	if int64(len(entries)) == limit {
		out["cursor"] = entries[len(entries)-1].RKey
	}
	return xrpc.WriteJSON(w, http.StatusOK, out)
}

func (a *API) describeRepo(w http.ResponseWriter, r *http.Request) error {
	p, err := xrpc.ParamsFrom(r)
	if err != nil {
		return err
	}
	acct, err := a.readAccount(r, p)
	if err != nil {
		return err
	}
	_, names, err := a.db.Collections(acct.UID)
	if err != nil {
		return err
	}
	if names == nil {
		names = []string{}
	}
	doc, err := a.didDocument(acct)
	if err != nil {
		return err
	}
	handle := acct.Handle
	if handle == "" {
		handle = "handle.invalid"
	}
	return xrpc.WriteJSON(w, http.StatusOK, map[string]any{
		"handle": handle, "did": acct.DID, "didDoc": doc, "collections": names, "handleIsCorrect": acct.Handle != "",
	})
}
