package api_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestParameterValidation sends every query a malformed or missing
// parameter: each is 400 InvalidRequest whose message names the parameter.
func TestParameterValidation(t *testing.T) {
	h := newHarness(t)
	alice := h.createAccount("alice.test")
	h.createRecord(alice, "app.bsky.feed.post", "3jzfcijpj2z2a", post("x"))
	did := alice.did
	c, _ := h.latest(did)
	cidStr := c.String()
	const (
		badDID   = "did:plc"
		badCID   = "bafyreinotacid"
		cidV0    = "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n"
		badTID   = "3jzfcijpj2z2" // 12 characters
		badNSID  = "app.bsky"
		badRKey  = "a/b"
		tooLong  = "1001"
		zero     = "0"
		negative = "-1"
	)
	for _, tc := range []struct {
		nsid   string
		params []string
		param  string // the parameter the message must name
	}{
		// did
		{"com.atproto.sync.getRepo", q("did", badDID), "did"},
		{"com.atproto.sync.getRepo", nil, "did"},
		{"com.atproto.sync.getRepo", q("did", ""), "did"},
		{"com.atproto.sync.getRepo", q("did", did, "did", did), "did"},
		{"com.atproto.sync.getCheckout", q("did", "alice.test"), "did"},
		{"com.atproto.sync.getHead", q("did", badDID), "did"},
		{"com.atproto.sync.getLatestCommit", q("did", badDID), "did"},
		{"com.atproto.sync.getRepoStatus", q("did", badDID), "did"},
		{"com.atproto.sync.getRepoStatus", nil, "did"},
		{"com.atproto.sync.listBlobs", q("did", badDID), "did"},
		{"com.atproto.sync.getBlocks", q("did", badDID, "cids", cidStr), "did"},
		{"com.atproto.sync.getBlob", q("did", badDID, "cid", cidStr), "did"},
		{"com.atproto.sync.getRecord", q("did", badDID, "collection", "app.bsky.feed.post", "rkey", "3jzfcijpj2z2a"), "did"},
		// cid
		{"com.atproto.sync.getBlob", q("did", did, "cid", badCID), "cid"},
		{"com.atproto.sync.getBlob", q("did", did, "cid", cidV0), "cid"},
		{"com.atproto.sync.getBlob", q("did", did), "cid"},
		{"com.atproto.sync.getBlocks", q("did", did, "cids", cidStr, "cids", badCID), "cids"},
		{"com.atproto.sync.getRecord", q("did", did, "collection", "app.bsky.feed.post", "rkey", "3jzfcijpj2z2a", "commit", badCID), "commit"},
		{"com.atproto.sync.getCheckout", q("did", did, "commit", badCID), "commit"},
		{"com.atproto.repo.getRecord", q("repo", did, "collection", "app.bsky.feed.post", "rkey", "3jzfcijpj2z2a", "cid", badCID), "cid"},
		{"com.atproto.sync.listBlobs", q("did", did, "cursor", badCID), "cursor"},
		// tid
		{"com.atproto.sync.getRepo", q("did", did, "since", badTID), "since"},
		{"com.atproto.sync.getRepo", q("did", did, "since", "2024-01-01T00:00:00Z"), "since"},
		{"com.atproto.sync.listBlobs", q("did", did, "since", badTID), "since"},
		// nsid
		{"com.atproto.sync.getRecord", q("did", did, "collection", badNSID, "rkey", "3jzfcijpj2z2a"), "collection"},
		{"com.atproto.sync.getRecord", q("did", did, "rkey", "3jzfcijpj2z2a"), "collection"},
		{"com.atproto.sync.listReposByCollection", q("collection", badNSID), "collection"},
		{"com.atproto.repo.getRecord", q("repo", did, "collection", badNSID, "rkey", "3jzfcijpj2z2a"), "collection"},
		{"com.atproto.repo.listRecords", q("repo", did, "collection", badNSID), "collection"},
		// record-key
		{"com.atproto.sync.getRecord", q("did", did, "collection", "app.bsky.feed.post", "rkey", badRKey), "rkey"},
		{"com.atproto.sync.getRecord", q("did", did, "collection", "app.bsky.feed.post", "rkey", "."), "rkey"},
		{"com.atproto.sync.getRecord", q("did", did, "collection", "app.bsky.feed.post"), "rkey"},
		{"com.atproto.repo.getRecord", q("repo", did, "collection", "app.bsky.feed.post", "rkey", badRKey), "rkey"},
		// at-identifier
		{"com.atproto.repo.getRecord", q("repo", "@alice", "collection", "app.bsky.feed.post", "rkey", "3jzfcijpj2z2a"), "repo"},
		{"com.atproto.repo.describeRepo", q("repo", badDID), "repo"},
		// limits
		{"com.atproto.sync.listRepos", q("limit", zero), "limit"},
		{"com.atproto.sync.listRepos", q("limit", tooLong), "limit"},
		{"com.atproto.sync.listRepos", q("limit", negative), "limit"},
		{"com.atproto.sync.listRepos", q("limit", "1.5"), "limit"},
		{"com.atproto.sync.listRepos", q("limit", "+5"), "limit"},
		{"com.atproto.sync.listRepos", q("limit", "5", "limit", "6"), "limit"},
		{"com.atproto.sync.listBlobs", q("did", did, "limit", zero), "limit"},
		{"com.atproto.sync.listBlobs", q("did", did, "limit", tooLong), "limit"},
		{"com.atproto.sync.listReposByCollection", q("collection", "app.bsky.feed.post", "limit", "2001"), "limit"},
		{"com.atproto.sync.listReposByCollection", q("collection", "app.bsky.feed.post", "limit", zero), "limit"},
		{"com.atproto.repo.listRecords", q("repo", did, "collection", "app.bsky.feed.post", "limit", "101"), "limit"},
		{"com.atproto.repo.listRecords", q("repo", did, "collection", "app.bsky.feed.post", "limit", zero), "limit"},
		{"com.atproto.repo.listRecords", q("repo", did, "collection", "app.bsky.feed.post", "reverse", "1"), "reverse"},
		// cursors this service did not issue
		{"com.atproto.sync.listRepos", q("cursor", "abc"), "cursor"},
		{"com.atproto.sync.listReposByCollection", q("collection", "app.bsky.feed.post", "cursor", "-1"), "cursor"},
	} {
		r := h.query(tc.nsid, tc.params)
		msg := r.fails(http.StatusBadRequest, "InvalidRequest")
		if !strings.Contains(msg, tc.param) {
			t.Errorf("%s: message %q does not name %q", r.what, msg, tc.param)
		}
	}
	// A malformed query string is refused, not half read.
	h.do(http.MethodGet, "/xrpc/com.atproto.sync.getRepo?did=%zz", nil, nil).fails(http.StatusBadRequest, "InvalidRequest")
	// Unknown parameters are ignored.
	h.query("com.atproto.sync.getLatestCommit", q("did", did, "color", "blue")).ok("com.atproto.sync.getLatestCommit")
}
