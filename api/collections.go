package api

import (
	"net/http"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/xrpc"
)

// reposPage is the output of com.atproto.sync.listReposByCollection.
type reposPage struct {
	Cursor string       `json:"cursor,omitempty"`
	Repos  []listedRepo `json:"repos"`
}

type listedRepo struct {
	DID string `json:"did"`
}

// listReposByCollection lists the repositories with records in a
// collection, from the store's exact index, in UID order. A page scans up to
// limit index entries and shows those whose account is active (takendown,
// suspended and deactivated repositories are hidden while the status lasts);
// the cursor is the UID of the last entry scanned, hidden or not, so a walk
// never skips or repeats a repository however the index changes meanwhile.
// A page shorter than limit, possibly empty, can still carry a cursor; the
// last page has none.
func (a *API) listReposByCollection(w http.ResponseWriter, r *http.Request) error {
	p, err := xrpc.ParamsFrom(r)
	if err != nil {
		return err
	}
	coll, err := p.NSID("collection")
	if err != nil {
		return err
	}
	limit, err := p.Int("limit", 500, 1, 2000)
	if err != nil {
		return err
	}
	after, err := uidCursor(p)
	if err != nil {
		return err
	}
	entries, err := a.db.CollectionRepos(string(coll), after, int(limit))
	if err != nil {
		return err
	}
	out := reposPage{Repos: make([]listedRepo, 0, len(entries))}
	for _, e := range entries {
		if e.Status.Active() {
			out.Repos = append(out.Repos, listedRepo{DID: e.DID})
		}
	}
	if len(entries) == int(limit) {
		out.Cursor = formatUID(entries[len(entries)-1].UID)
	}
	return xrpc.WriteJSON(w, http.StatusOK, out)
}

// collectionsPage is the output of GET /admin/collections.
type collectionsPage struct {
	Cursor      string            `json:"cursor,omitempty"`
	Collections []collectionRepos `json:"collections"`
}

type collectionRepos struct {
	Collection string `json:"collection"`
	Repos      uint64 `json:"repos"`
}

// adminCollections answers GET /admin/collections: how many repositories
// have records in each collection, sorted by NSID, from counters the store
// keeps with the index (no scan of the index itself). Parameters: limit
// (1–10000, default 1000), cursor (the last NSID of the previous page),
// prefix (only NSIDs starting with it, e.g. "app.bsky."). Repositories hidden
// while taken down, suspended or deactivated are counted; deleted ones are
// not.
func (a *API) adminCollections(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return xrpc.MethodNotAllowed(r.Method, http.MethodGet)
	}
	p, err := xrpc.ParamsFrom(r)
	if err != nil {
		return err
	}
	limit, err := p.Int("limit", 1000, 1, 10000)
	if err != nil {
		return err
	}
	after, err := p.String("cursor", false)
	if err != nil {
		return err
	}
	if after != "" {
		if _, err := syntax.ParseNSID(after); err != nil {
			return xrpc.InvalidRequest("cursor: not a cursor this service issued")
		}
	}
	prefix, err := p.String("prefix", false)
	if err != nil {
		return err
	}
	if strings.ContainsFunc(prefix, func(c rune) bool { return c > 0x7e || c < 0x21 }) {
		return xrpc.InvalidRequest("prefix: NSIDs are printable ASCII")
	}
	counts, err := a.db.CollectionCounts(prefix, after, int(limit))
	if err != nil {
		return err
	}
	out := collectionsPage{Collections: make([]collectionRepos, 0, len(counts))}
	for _, c := range counts {
		out.Collections = append(out.Collections, collectionRepos{Collection: c.Collection, Repos: c.Repos})
	}
	if len(counts) == int(limit) {
		out.Cursor = counts[len(counts)-1].Collection
	}
	return xrpc.WriteJSON(w, http.StatusOK, out)
}
