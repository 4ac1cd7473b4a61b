package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/car"
	"github.com/reservoir-atproto/reservoir/host"
	"github.com/reservoir-atproto/reservoir/mst"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
	"github.com/reservoir-atproto/reservoir/xrpc"
)

// maxGetBlocks bounds the CIDs of one getBlocks request.
const maxGetBlocks = 1000

func (a *API) registerSync(srv *xrpc.Server) {
	q := func(nsid string, h xrpc.HandlerFunc) { srv.Query("com.atproto.sync."+nsid, a.auth.OptionalAuth(h)) }
	q("getBlob", a.content("did", a.getBlob))
	q("getBlocks", a.content("did", a.getBlocks))
	q("getCheckout", a.content("did", a.getCheckout))
	q("getHead", a.getHead)
	q("getLatestCommit", a.getLatestCommit)
	q("getRecord", a.content("did", a.syncGetRecord))
	q("getRepo", a.content("did", a.getRepo))
	q("getRepoStatus", a.getRepoStatus)
	q("listBlobs", a.content("did", a.listBlobs))
	q("listRepos", a.listRepos)
	q("listReposByCollection", a.listReposByCollection)
}

func (a *API) getBlob(w http.ResponseWriter, r *http.Request) error {
	p, acct, err := a.gatedRepo(r)
	if err != nil {
		return err
	}
	c, err := p.CID("cid")
	if err != nil {
		return err
	}
	if a.host == nil {
		return xrpc.BlobNotFound(c.String())
	}
	blob, meta, err := a.host.OpenBlob(acct, c)
	if errors.Is(err, host.ErrBlobNotFound) {
		return xrpc.BlobNotFound(c.String())
	}
	if err != nil {
		return err
	}
	defer blob.Close()
	h := w.Header()
	mime := meta.MimeType
	if mime == "" {
		mime = "application/octet-stream"
	}
	h.Set("Content-Type", mime)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", c.String()))
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("ETag", `"`+c.String()+`"`)
	// ServeContent answers ranges, conditional requests and HEAD.
	http.ServeContent(w, r, "", meta.Updated, blob)
	return nil
}

func (a *API) getBlocks(w http.ResponseWriter, r *http.Request) error {
	p, acct, err := a.gatedRepo(r)
	if err != nil {
		return err
	}
	cids, err := p.CIDs("cids")
	if err != nil {
		return err
	}
	if len(cids) == 0 {
		return xrpc.InvalidRequest("cids: at least one CID is required")
	}
	if len(cids) > maxGetBlocks {
		return xrpc.InvalidRequestf("cids: at most %d per request", maxGetBlocks)
	}
	cids = uniqueCIDs(cids) // a CAR holds each block once
	var missing *repostore.MissingBlocksError
	blocks, err := a.repos.GetBlocks(acct, cids)
	if errors.As(err, &missing) {
		names := make([]string, len(missing.CIDs))
		for i, c := range missing.CIDs {
			names[i] = c.String()
		}
		return xrpc.BlockNotFound(names...)
	}
	if err != nil {
		return err
	}
	cw, err := xrpc.CARResponse(w)
	if err != nil {
		return err
	}
	for i, c := range cids {
		if err := cw.WriteBlock(c, blocks[i]); err != nil {
			return err
		}
	}
	return cw.Flush()
}

// uniqueCIDs drops repeated CIDs, keeping the first of each in place.
func uniqueCIDs(cids []cid.Cid) []cid.Cid {
	seen := make(map[cid.Cid]bool, len(cids))
	out := cids[:0]
	for _, c := range cids {
		if !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

func (a *API) getCheckout(w http.ResponseWriter, r *http.Request) error {
	p, acct, err := a.gatedRepo(r)
	if err != nil {
		return err
	}
	at, err := p.OptionalCID("commit")
	if err != nil {
		return err
	}
	if at.Defined() && at != acct.Head.Commit {
		return a.writeCheckout(w, acct, at)
	}
	return a.writeRepo(w, acct, "")
}

// writeCheckout streams the repository as it was at an earlier commit
// (the removed `commit` parameter, honoured inside the history window): the
// commit, then its MST nodes and records in the spec's streamable order.
func (a *API) writeCheckout(w http.ResponseWriter, acct *store.Account, at cid.Cid) error {
	bg := a.repos.Blocks(acct.UID)
	commitBytes, err := bg.GetBlock(at)
	if err != nil {
		return xrpc.InvalidRequestf("commit %s is not available: not a commit of this repository, or older than the history window", at)
	}
	commit, err := repo.DecodeCommit(commitBytes)
	if err != nil || string(commit.DID) != acct.DID {
		return xrpc.InvalidRequestf("commit %s is not a commit of %s", at, acct.DID)
	}
	tree, err := mst.Load(bg, commit.Data)
	if err != nil {
		return xrpc.InvalidRequestf("commit %s is not available: its tree is older than the history window", at)
	}
	cw, err := xrpc.CARResponse(w, at)
	if err != nil {
		return err
	}
	if err := cw.WriteBlock(at, commitBytes); err != nil {
		return err
	}
	err = tree.WalkBlocks(cw.WriteBlock, func(c cid.Cid) error {
		data, err := bg.GetBlock(c)
		if err != nil {
			return err
		}
		return cw.WriteBlock(c, data)
	})
	if err != nil {
		return err
	}
	return cw.Flush()
}

func (a *API) getRepo(w http.ResponseWriter, r *http.Request) error {
	p, acct, err := a.gatedRepo(r)
	if err != nil {
		return err
	}
	since, err := p.OptionalTID("since")
	if err != nil {
		return err
	}
	return a.writeRepo(w, acct, string(since))
}

// writeRepo streams the repository CAR (all live blocks, or those after
// since) in constant memory.
func (a *API) writeRepo(w http.ResponseWriter, acct *store.Account, since string) error {
	if !acct.Head.Defined() {
		return xrpc.RepoNotFound(acct.DID).WithCause(repostore.ErrNoHead)
	}
	cw, err := a.repos.StreamRepo(acct, since, func(root cid.Cid) (*car.Writer, error) {
		return xrpc.CARResponse(w, root)
	})
	if errors.Is(err, repostore.ErrNoHead) {
		return xrpc.RepoNotFound(acct.DID).WithCause(err)
	}
	if err != nil {
		return err
	}
	return cw.Flush()
}

func (a *API) getHead(w http.ResponseWriter, r *http.Request) error {
	_, acct, err := a.gatedRepo(r)
	if err != nil {
		return err
	}
	if !acct.Head.Defined() {
		return xrpc.HeadNotFound(acct.DID)
	}
	return xrpc.WriteJSON(w, http.StatusOK, map[string]any{"root": acct.Head.Commit.String()})
}

func (a *API) getLatestCommit(w http.ResponseWriter, r *http.Request) error {
	_, acct, err := a.gatedRepo(r)
	if err != nil {
		return err
	}
	if !acct.Head.Defined() {
		return xrpc.RepoNotFound(acct.DID).WithCause(repostore.ErrNoHead)
	}
	return xrpc.WriteJSON(w, http.StatusOK, map[string]any{"cid": acct.Head.Commit.String(), "rev": acct.Head.Rev})
}

// syncGetRecord answers with a proof CAR: of the record's presence, or of
// its absence when the repository exists but the record does not (as the
// reference PDS does). The removed `commit` parameter is still honoured for
// commits inside the history window.
func (a *API) syncGetRecord(w http.ResponseWriter, r *http.Request) error {
	p, acct, err := a.gatedRepo(r)
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
	at, err := p.OptionalCID("commit")
	if err != nil {
		return err
	}
	if !acct.Head.Defined() {
		return xrpc.RepoNotFound(acct.DID).WithCause(repostore.ErrNoHead)
	}
	if !at.Defined() {
		at = acct.Head.Commit
	}
	path := string(coll) + "/" + string(rkey)
	cw, err := xrpc.CARResponse(w, at)
	if err != nil {
		return err
	}
	_, err = repo.RecordProof(a.repos.Blocks(acct.UID), at, path, func(c cid.Cid, data []byte) error {
		if c == at {
			commit, err := repo.DecodeCommit(data)
			if err != nil {
				return err
			}
			if string(commit.DID) != acct.DID {
				return xrpc.InvalidRequestf("commit %s is not a commit of %s", at, acct.DID)
			}
		}
		return cw.WriteBlock(c, data)
	})
	// An earlier commit may be gone (the repository's blocks answer
	// mst.ErrNotFound) or name a block that is no commit: the caller's
	// mistake, not ours.
	switch {
	case at == acct.Head.Commit:
	case errors.Is(err, mst.ErrNotFound), errors.Is(err, store.ErrNotFound):
		return xrpc.InvalidRequestf("commit %s is not available: not a commit of this repository, or older than the history window", at)
	case errors.Is(err, repo.ErrMalformedCommit):
		return xrpc.InvalidRequestf("commit %s is not a commit of %s", at, acct.DID)
	}
	if err != nil {
		return err
	}
	return cw.Flush()
}

func (a *API) getRepoStatus(w http.ResponseWriter, r *http.Request) error {
	p, err := xrpc.ParamsFrom(r)
	if err != nil {
		return err
	}
	did, err := p.DID("did")
	if err != nil {
		return err
	}
	acct, err := a.db.Account(string(did))
	if errors.Is(err, store.ErrNotFound) {
		return xrpc.RepoNotFound(string(did))
	}
	if err != nil {
		return err
	}
	out := map[string]any{"did": acct.DID, "active": acct.Status.Active()}
	if acct.Status != store.StatusActive {
		out["status"] = string(acct.Status)
	}
	if acct.Status.Active() && acct.Head.Defined() {
		out["rev"] = acct.Head.Rev
	}
	return xrpc.WriteJSON(w, http.StatusOK, out)
}

func (a *API) listBlobs(w http.ResponseWriter, r *http.Request) error {
	p, acct, err := a.gatedRepo(r)
	if err != nil {
		return err
	}
	since, err := p.OptionalTID("since")
	if err != nil {
		return err
	}
	limit, err := p.Int("limit", 500, 1, 1000)
	if err != nil {
		return err
	}
	after, err := p.OptionalCID("cursor")
	if err != nil {
		return err
	}
	cids := []string{}
	var last cid.Cid
	err = a.db.Blobs(acct.UID, after, func(m *store.BlobMeta) error {
		last = m.CID
		if m.Refs == 0 || (since != "" && m.Rev <= string(since)) {
			return nil
		}
		cids = append(cids, m.CID.String())
		if int64(len(cids)) == limit {
			return store.ErrStop
		}
		return nil
	})
	if err != nil {
		return err
	}
	out := map[string]any{"cids": cids}
	if int64(len(cids)) == limit {
		out["cursor"] = last.String()
	}
	return xrpc.WriteJSON(w, http.StatusOK, out)
}

func (a *API) listRepos(w http.ResponseWriter, r *http.Request) error {
	p, err := xrpc.ParamsFrom(r)
	if err != nil {
		return err
	}
	limit, err := p.Int("limit", 500, 1, 1000)
	if err != nil {
		return err
	}
	after, err := uidCursor(p)
	if err != nil {
		return err
	}
	accts, err := a.db.Accounts(after, int(limit))
	if err != nil {
		return err
	}
	repos := []map[string]any{}
	for _, acct := range accts {
		if !acct.Head.Defined() {
			continue // no commit yet (or deleted): nothing to list
		}
		item := map[string]any{"did": acct.DID, "head": acct.Head.Commit.String(), "rev": acct.Head.Rev, "active": acct.Status.Active()}
		if acct.Status != store.StatusActive {
			item["status"] = string(acct.Status)
		}
		repos = append(repos, item)
	}
	out := map[string]any{"repos": repos}
	if int64(len(accts)) == limit {
		out["cursor"] = formatUID(accts[len(accts)-1].UID)
	}
	return xrpc.WriteJSON(w, http.StatusOK, out)
}
