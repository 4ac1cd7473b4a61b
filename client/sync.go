package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/car"
	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/repo"
)

// The NSIDs of com.atproto.sync.
const (
	NSIDGetBlob               = "com.atproto.sync.getBlob"
	NSIDGetBlocks             = "com.atproto.sync.getBlocks"
	NSIDGetCheckout           = "com.atproto.sync.getCheckout"
	NSIDGetHead               = "com.atproto.sync.getHead"
	NSIDGetHostStatus         = "com.atproto.sync.getHostStatus"
	NSIDGetLatestCommit       = "com.atproto.sync.getLatestCommit"
	NSIDGetRecord             = "com.atproto.sync.getRecord"
	NSIDGetRepo               = "com.atproto.sync.getRepo"
	NSIDGetRepoStatus         = "com.atproto.sync.getRepoStatus"
	NSIDListBlobs             = "com.atproto.sync.listBlobs"
	NSIDListHosts             = "com.atproto.sync.listHosts"
	NSIDListRepos             = "com.atproto.sync.listRepos"
	NSIDListReposByCollection = "com.atproto.sync.listReposByCollection"
	NSIDRequestCrawl          = "com.atproto.sync.requestCrawl"
	NSIDSubscribeRepos        = "com.atproto.sync.subscribeRepos"
)

const carMIME = "application/vnd.ipld.car"

// LatestCommit is the answer of getLatestCommit.
type LatestCommit struct {
	CID cid.Cid
	Rev syntax.TID
}

// RepoStatus is the answer of getRepoStatus. Status is set when the
// repository is not active (takendown, suspended, deleted, deactivated,
// desynchronized, throttled, or a value this client does not know); Rev
// when the host reports one.
type RepoStatus struct {
	DID    syntax.DID
	Active bool
	Status string
	Rev    string
}

// RepoEntry is one repository of listRepos. Active is true when the host
// did not say (older hosts omit the field). Rev may be "" when the host
// does not know it.
type RepoEntry struct {
	DID    syntax.DID
	Head   cid.Cid
	Rev    string
	Active bool
	Status string
}

// Host is one host of a relay (listHosts, getHostStatus). Seq is the last
// upstream seq the relay processed (-1 or 0 when it has none), Status one
// of active, idle, offline, throttled, banned (an open set).
type Host struct {
	Hostname     string
	Seq          int64
	AccountCount int64
	Status       string
}

// Page is one page of a listing and the cursor of the next ("" at the end).
type Page[T any] struct {
	Items  []T
	Cursor string
}

// checkDID validates a DID argument before any request.
func checkDID(method, did string) error {
	if _, err := syntax.ParseDID(did); err != nil {
		return fmt.Errorf("%w: %s: did %q: %v", ErrInvalidArgument, method, did, err)
	}
	return nil
}

// GetLatestCommit returns the CID and rev of the repository's current
// commit.
func (c *Client) GetLatestCommit(ctx context.Context, did string) (*LatestCommit, error) {
	if err := checkDID(NSIDGetLatestCommit, did); err != nil {
		return nil, err
	}
	var out struct {
		CID string `json:"cid"`
		Rev string `json:"rev"`
	}
	if err := c.getJSON(ctx, NSIDGetLatestCommit, url.Values{"did": {did}}, &out); err != nil {
		return nil, err
	}
	cc, err := parseCID(NSIDGetLatestCommit, "cid", out.CID)
	if err != nil {
		return nil, err
	}
	rev, err := syntax.ParseTID(out.Rev)
	if err != nil {
		return nil, badResponse(NSIDGetLatestCommit, "rev %q: %v", out.Rev, err)
	}
	return &LatestCommit{CID: cc, Rev: rev}, nil
}

// GetHead returns the CID of the repository's current commit (deprecated
// endpoint; prefer GetLatestCommit).
func (c *Client) GetHead(ctx context.Context, did string) (cid.Cid, error) {
	if err := checkDID(NSIDGetHead, did); err != nil {
		return cid.Undef, err
	}
	var out struct {
		Root string `json:"root"`
	}
	if err := c.getJSON(ctx, NSIDGetHead, url.Values{"did": {did}}, &out); err != nil {
		return cid.Undef, err
	}
	return parseCID(NSIDGetHead, "root", out.Root)
}

// GetRepoStatus returns the hosting status of the repository.
func (c *Client) GetRepoStatus(ctx context.Context, did string) (*RepoStatus, error) {
	if err := checkDID(NSIDGetRepoStatus, did); err != nil {
		return nil, err
	}
	var out struct {
		DID    string `json:"did"`
		Active *bool  `json:"active"`
		Status string `json:"status"`
		Rev    string `json:"rev"`
	}
	if err := c.getJSON(ctx, NSIDGetRepoStatus, url.Values{"did": {did}}, &out); err != nil {
		return nil, err
	}
	d, err := syntax.ParseDID(out.DID)
	if err != nil {
		return nil, badResponse(NSIDGetRepoStatus, "did %q: %v", out.DID, err)
	}
	if out.Active == nil {
		return nil, badResponse(NSIDGetRepoStatus, "the required field active is missing")
	}
	return &RepoStatus{DID: d, Active: *out.Active, Status: out.Status, Rev: out.Rev}, nil
}

// ListRepos returns one page of the repositories the host holds. limit 0
// asks for the lexicon's maximum (1000).
func (c *Client) ListRepos(ctx context.Context, cursor string, limit int) (*Page[RepoEntry], error) {
	var out struct {
		Cursor string `json:"cursor"`
		Repos  []struct {
			DID    string `json:"did"`
			Head   string `json:"head"`
			Rev    string `json:"rev"`
			Active *bool  `json:"active"`
			Status string `json:"status"`
		} `json:"repos"`
	}
	if err := c.getJSON(ctx, NSIDListRepos, pageQuery(nil, cursor, limit, 1000), &out); err != nil {
		return nil, err
	}
	if out.Repos == nil {
		return nil, badResponse(NSIDListRepos, "the required field repos is missing")
	}
	page := &Page[RepoEntry]{Cursor: out.Cursor, Items: make([]RepoEntry, 0, len(out.Repos))}
	for i, r := range out.Repos {
		d, err := syntax.ParseDID(r.DID)
		if err != nil {
			return nil, badResponse(NSIDListRepos, "repos[%d].did %q: %v", i, r.DID, err)
		}
		head, err := parseCID(NSIDListRepos, fmt.Sprintf("repos[%d].head", i), r.Head)
		if err != nil {
			return nil, err
		}
		e := RepoEntry{DID: d, Head: head, Rev: r.Rev, Active: r.Active == nil || *r.Active, Status: r.Status}
		page.Items = append(page.Items, e)
	}
	return page, nil
}

// ListReposByCollection returns one page of the DIDs of repositories with
// records in collection (an NSID). limit 0 asks for the lexicon's maximum
// (2000).
func (c *Client) ListReposByCollection(ctx context.Context, collection, cursor string, limit int) (*Page[syntax.DID], error) {
	if _, err := syntax.ParseNSID(collection); err != nil {
		return nil, fmt.Errorf("%w: %s: collection %q: %v", ErrInvalidArgument, NSIDListReposByCollection, collection, err)
	}
	var out struct {
		Cursor string `json:"cursor"`
		Repos  []struct {
			DID string `json:"did"`
		} `json:"repos"`
	}
	q := pageQuery(url.Values{"collection": {collection}}, cursor, limit, 2000)
	if err := c.getJSON(ctx, NSIDListReposByCollection, q, &out); err != nil {
		return nil, err
	}
	if out.Repos == nil {
		return nil, badResponse(NSIDListReposByCollection, "the required field repos is missing")
	}
	page := &Page[syntax.DID]{Cursor: out.Cursor, Items: make([]syntax.DID, 0, len(out.Repos))}
	for i, r := range out.Repos {
		d, err := syntax.ParseDID(r.DID)
		if err != nil {
			return nil, badResponse(NSIDListReposByCollection, "repos[%d].did %q: %v", i, r.DID, err)
		}
		page.Items = append(page.Items, d)
	}
	return page, nil
}

// ListBlobs returns one page of the CIDs of the blobs the repository's
// records reference; since, if set, keeps the blobs of records written after
// that rev. limit 0 asks for the lexicon's maximum (1000).
func (c *Client) ListBlobs(ctx context.Context, did, since, cursor string, limit int) (*Page[cid.Cid], error) {
	if err := checkDID(NSIDListBlobs, did); err != nil {
		return nil, err
	}
	q := url.Values{"did": {did}}
	if since != "" {
		q.Set("since", since)
	}
	var out struct {
		Cursor string   `json:"cursor"`
		CIDs   []string `json:"cids"`
	}
	if err := c.getJSON(ctx, NSIDListBlobs, pageQuery(q, cursor, limit, 1000), &out); err != nil {
		return nil, err
	}
	if out.CIDs == nil {
		return nil, badResponse(NSIDListBlobs, "the required field cids is missing")
	}
	page := &Page[cid.Cid]{Cursor: out.Cursor, Items: make([]cid.Cid, 0, len(out.CIDs))}
	for i, s := range out.CIDs {
		cc, err := parseCID(NSIDListBlobs, fmt.Sprintf("cids[%d]", i), s)
		if err != nil {
			return nil, err
		}
		page.Items = append(page.Items, cc)
	}
	return page, nil
}

// ListHosts returns one page of the hosts a relay knows. limit 0 asks for
// the lexicon's maximum (1000).
func (c *Client) ListHosts(ctx context.Context, cursor string, limit int) (*Page[Host], error) {
	var out struct {
		Cursor string     `json:"cursor"`
		Hosts  []hostJSON `json:"hosts"`
	}
	if err := c.getJSON(ctx, NSIDListHosts, pageQuery(nil, cursor, limit, 1000), &out); err != nil {
		return nil, err
	}
	if out.Hosts == nil {
		return nil, badResponse(NSIDListHosts, "the required field hosts is missing")
	}
	page := &Page[Host]{Cursor: out.Cursor, Items: make([]Host, 0, len(out.Hosts))}
	for i, h := range out.Hosts {
		if h.Hostname == "" {
			return nil, badResponse(NSIDListHosts, "hosts[%d]: the required field hostname is missing", i)
		}
		page.Items = append(page.Items, h.host())
	}
	return page, nil
}

type hostJSON struct {
	Hostname     string `json:"hostname"`
	Seq          int64  `json:"seq"`
	AccountCount int64  `json:"accountCount"`
	Status       string `json:"status"`
}

func (h hostJSON) host() Host {
	return Host{Hostname: h.Hostname, Seq: h.Seq, AccountCount: h.AccountCount, Status: h.Status}
}

// GetHostStatus returns what a relay knows of one host.
func (c *Client) GetHostStatus(ctx context.Context, hostname string) (*Host, error) {
	if hostname == "" {
		return nil, fmt.Errorf("%w: %s: empty hostname", ErrInvalidArgument, NSIDGetHostStatus)
	}
	var out hostJSON
	if err := c.getJSON(ctx, NSIDGetHostStatus, url.Values{"hostname": {hostname}}, &out); err != nil {
		return nil, err
	}
	if out.Hostname == "" {
		return nil, badResponse(NSIDGetHostStatus, "the required field hostname is missing")
	}
	h := out.host()
	return &h, nil
}

// RequestCrawl asks a relay to crawl the host hostname (not retried: it is
// a procedure).
func (c *Client) RequestCrawl(ctx context.Context, hostname string) error {
	if hostname == "" {
		return fmt.Errorf("%w: %s: empty hostname", ErrInvalidArgument, NSIDRequestCrawl)
	}
	body, err := json.Marshal(map[string]string{"hostname": hostname})
	if err != nil {
		return err
	}
	resp, err := c.do(ctx, &request{method: http.MethodPost, nsid: NSIDRequestCrawl, body: body})
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	return resp.Body.Close()
}

// GetRepo streams the repository CAR: every block of the current
// repository, or with since (a rev) only the blocks written after it. The
// caller must close the reader; its blocks are not checked here (read it
// with car.NewReader, or save it and use OpenRepoCAR and Verify).
func (c *Client) GetRepo(ctx context.Context, did, since string) (io.ReadCloser, error) {
	if err := checkDID(NSIDGetRepo, did); err != nil {
		return nil, err
	}
	q := url.Values{"did": {did}}
	if since != "" {
		if _, err := syntax.ParseTID(since); err != nil {
			return nil, fmt.Errorf("%w: %s: since %q: %v", ErrInvalidArgument, NSIDGetRepo, since, err)
		}
		q.Set("since", since)
	}
	resp, err := c.do(ctx, &request{method: http.MethodGet, nsid: NSIDGetRepo, query: q, accept: carMIME})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// GetCheckout streams the whole repository CAR (deprecated endpoint; prefer
// GetRepo).
func (c *Client) GetCheckout(ctx context.Context, did string) (io.ReadCloser, error) {
	if err := checkDID(NSIDGetCheckout, did); err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, &request{method: http.MethodGet, nsid: NSIDGetCheckout, query: url.Values{"did": {did}}, accept: carMIME})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// GetBlocks returns the blocks of the repository with the given CIDs, each
// checked against its CID. Every CID asked for must be in the answer.
func (c *Client) GetBlocks(ctx context.Context, did string, cids []cid.Cid) (map[cid.Cid][]byte, error) {
	if err := checkDID(NSIDGetBlocks, did); err != nil {
		return nil, err
	}
	if len(cids) == 0 {
		return nil, fmt.Errorf("%w: %s: no CIDs", ErrInvalidArgument, NSIDGetBlocks)
	}
	q := url.Values{"did": {did}}
	for _, cc := range cids {
		q.Add("cids", cc.String())
	}
	resp, err := c.do(ctx, &request{method: http.MethodGet, nsid: NSIDGetBlocks, query: q, accept: carMIME})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	_, blocks, err := car.ReadAll(resp.Body, &car.Options{MaxTotal: c.maxCAR()})
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", NSIDGetBlocks, err)
	}
	for _, cc := range cids {
		if _, ok := blocks[cc]; !ok {
			return nil, badResponse(NSIDGetBlocks, "block %s is missing from the answer", cc)
		}
	}
	return blocks, nil
}

// RecordProof is a getRecord answer, checked: the CAR proves that the
// record is present (RecordCID set, Record its DAG-CBOR) or absent under
// the signed commit.
type RecordProof struct {
	CAR       []byte
	Commit    *repo.Commit
	CommitCID cid.Cid
	RecordCID cid.Cid // cid.Undef: the proof shows the record is absent
	Record    []byte
	// SignatureVerified is true when a key was given and the commit's
	// signature matched it.
	SignatureVerified bool
}

// Exists reports whether the proof shows the record present.
func (p *RecordProof) Exists() bool { return p.RecordCID.Defined() }

// Value decodes the record into the generic data model.
func (p *RecordProof) Value() (map[string]any, error) { return dagcbor.UnmarshalRecord(p.Record) }

// GetRecord fetches the proof of a record at collection/rkey and checks it:
// the first root is a commit of did (signed by key, when key is not nil),
// and the proof blocks alone show the record present or absent. When the
// proof shows it absent, the error wraps ErrRecordNotFound and the proof is
// returned with it; a host that answers RecordNotFound gives an *APIError
// that matches the same sentinel.
func (c *Client) GetRecord(ctx context.Context, did, collection, rkey string, key atcrypto.PublicKey) (*RecordProof, error) {
	d, err := syntax.ParseDID(did)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: did %q: %v", ErrInvalidArgument, NSIDGetRecord, did, err)
	}
	if _, err := syntax.ParseNSID(collection); err != nil {
		return nil, fmt.Errorf("%w: %s: collection %q: %v", ErrInvalidArgument, NSIDGetRecord, collection, err)
	}
	if _, err := syntax.ParseRecordKey(rkey); err != nil {
		return nil, fmt.Errorf("%w: %s: rkey %q: %v", ErrInvalidArgument, NSIDGetRecord, rkey, err)
	}
	q := url.Values{"did": {did}, "collection": {collection}, "rkey": {rkey}}
	resp, err := c.do(ctx, &request{method: http.MethodGet, nsid: NSIDGetRecord, query: q, accept: carMIME})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := readLimited(resp.Body, c.maxCAR())
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", NSIDGetRecord, err)
	}
	res, err := repo.VerifyRecordProof(data, d, key, collection+"/"+rkey)
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", NSIDGetRecord, err)
	}
	p := &RecordProof{CAR: data, Commit: res.Commit, CommitCID: res.CommitCID, RecordCID: res.RecordCID, Record: res.Record, SignatureVerified: key != nil}
	if !p.Exists() {
		return p, fmt.Errorf("client: %s: %s/%s: absent (proven): %w", NSIDGetRecord, collection, rkey, ErrRecordNotFound)
	}
	return p, nil
}

// readLimited reads all of r, failing past limit bytes.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrResponseTooLarge, limit)
	}
	return data, nil
}

// pageQuery adds cursor and limit (the lexicon maximum when limit is 0) to
// q.
func pageQuery(q url.Values, cursor string, limit, maxLimit int) url.Values {
	if q == nil {
		q = url.Values{}
	}
	if limit <= 0 || limit > maxLimit {
		limit = maxLimit
	}
	q.Set("limit", strconv.Itoa(limit))
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	return q
}

func parseCID(method, field, s string) (cid.Cid, error) {
	if s == "" {
		return cid.Undef, badResponse(method, "the required field %s is missing", field)
	}
	cc, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, badResponse(method, "%s %q: %v", field, s, err)
	}
	return cc, nil
}
