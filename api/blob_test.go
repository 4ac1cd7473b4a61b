package api_test

import (
	"bytes"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// blobCID is the CID of blob bytes: CIDv1, raw codec, sha2-256.
func blobCID(t *testing.T, data []byte) cid.Cid {
	t.Helper()
	c, err := cid.Prefix{Version: 1, Codec: cid.Raw, MhType: multihash.SHA2_256, MhLength: -1}.Sum(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// upload posts data to uploadBlob; repo, if set, is the ?repo= parameter.
func (h *harness) upload(data []byte, mime, repo string, creds ...cred) *response {
	h.t.Helper()
	path := "/xrpc/com.atproto.repo.uploadBlob"
	if repo != "" {
		path += queryString("repo", repo)
	}
	return h.do(http.MethodPost, path, bytes.NewReader(data), http.Header{"Content-Type": {mime}}, creds...)
}

// blobRef is a blob reference as uploadBlob returns it and records hold it.
func blobRef(c cid.Cid, mime string, size int) map[string]any {
	return map[string]any{"$type": "blob", "ref": map[string]any{"$link": c.String()}, "mimeType": mime, "size": size}
}

func withImage(text string, blob map[string]any) map[string]any {
	p := post(text)
	p["embed"] = map[string]any{"$type": "app.bsky.embed.images", "images": []any{map[string]any{"alt": "", "image": blob}}}
	return p
}

func TestUploadAndGetBlob(t *testing.T) {
	h := newHarness(t)
	alice := h.createAccount("alice.test")
	bob := h.createAccount("bob.test")
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte("pixels "), 500)...)
	want := blobCID(t, png)

	out := h.upload(png, "image/png", "", alice.cred()).ok("com.atproto.repo.uploadBlob")
	if !reflect.DeepEqual(out["blob"], decodeJSON(t, mustJSON(t, map[string]any{"b": blobRef(want, "image/png", len(png))}))["b"]) {
		t.Fatalf("uploadBlob %v, want ref %s, size %d", out["blob"], want, len(png))
	}
	getBlob := func(c cid.Cid, header http.Header, creds ...cred) *response {
		return h.do(http.MethodGet, "/xrpc/com.atproto.sync.getBlob"+queryString("did", alice.did, "cid", c.String()), nil, header, creds...)
	}
	// Uploaded but referenced by no record: a temporary blob, not served
	// or listed, even to its owner.
	getBlob(want, nil).fails(http.StatusNotFound, "BlobNotFound")
	getBlob(want, nil, alice.cred()).fails(http.StatusNotFound, "BlobNotFound")
	if lb := h.query("com.atproto.sync.listBlobs", q("did", alice.did)).ok("com.atproto.sync.listBlobs"); len(lb["cids"].([]any)) != 0 {
		t.Errorf("listBlobs lists an unreferenced blob: %v", lb)
	}

	// A record references it: now it is served.
	rec := withImage("look", blobRef(want, "image/png", len(png)))
	h.createRecord(alice, "app.bsky.feed.post", "3jzfcijpj2z2a", rec)
	r := getBlob(want, nil)
	if r.status != http.StatusOK || !bytes.Equal(r.body, png) {
		t.Fatalf("getBlob: status %d, %d bytes, want %d", r.status, len(r.body), len(png))
	}
	for name, want := range map[string]string{
		"Content-Type":            "image/png",
		"Content-Length":          strconv.Itoa(len(png)),
		"Content-Security-Policy": "default-src 'none'; sandbox",
		"X-Content-Type-Options":  "nosniff",
		"Content-Disposition":     fmt.Sprintf("attachment; filename=%q", want.String()),
	} {
		if got := r.header.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	// A range.
	r = getBlob(want, http.Header{"Range": {"bytes=8-19"}})
	if r.status != http.StatusPartialContent || !bytes.Equal(r.body, png[8:20]) {
		t.Errorf("range: status %d, body %q, want 206 %q", r.status, r.body, png[8:20])
	}
	if got, want := r.header.Get("Content-Range"), fmt.Sprintf("bytes 8-19/%d", len(png)); got != want {
		t.Errorf("Content-Range %q, want %q", got, want)
	}
	// HEAD answers the headers without the body.
	r = h.do(http.MethodHead, "/xrpc/com.atproto.sync.getBlob"+queryString("did", alice.did, "cid", want.String()), nil, nil)
	if r.status != http.StatusOK || len(r.body) != 0 || r.header.Get("Content-Length") != strconv.Itoa(len(png)) {
		t.Errorf("HEAD: status %d, %d body bytes, Content-Length %q", r.status, len(r.body), r.header.Get("Content-Length"))
	}
	// Blobs are per repository: bob does not have it.
	h.query("com.atproto.sync.getBlob", q("did", bob.did, "cid", want.String())).fails(http.StatusNotFound, "BlobNotFound")
	// A CID never uploaded; a repository that does not exist.
	getBlob(blobCID(t, []byte("nothing")), nil).fails(http.StatusNotFound, "BlobNotFound")
	h.query("com.atproto.sync.getBlob", q("did", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "cid", want.String())).fails(http.StatusNotFound, "RepoNotFound")

	// A record referencing a blob that was never uploaded is refused.
	ghost := blobCID(t, []byte("ghost"))
	h.procedure("com.atproto.repo.createRecord", map[string]any{"repo": alice.did, "collection": "app.bsky.feed.post", "record": withImage("ghost", blobRef(ghost, "image/png", 5))}, alice.cred()).
		fails(http.StatusBadRequest, "InvalidRequest")
	// Nor may bob reference alice's blob.
	h.procedure("com.atproto.repo.createRecord", map[string]any{"repo": bob.did, "collection": "app.bsky.feed.post", "record": rec}, bob.cred()).
		fails(http.StatusBadRequest, "InvalidRequest")

	// Once the last record referencing it is gone, it is no longer served.
	h.deleteRecord(alice, "app.bsky.feed.post", "3jzfcijpj2z2a")
	getBlob(want, nil).fails(http.StatusNotFound, "BlobNotFound")
	if lb := h.query("com.atproto.sync.listBlobs", q("did", alice.did)).ok("com.atproto.sync.listBlobs"); len(lb["cids"].([]any)) != 0 {
		t.Errorf("listBlobs lists a blob no record references: %v", lb)
	}
}

func TestUploadBlobAuth(t *testing.T) {
	h := newHarness(t)
	alice := h.createAccount("alice.test")
	bob := h.createAccount("bob.test")
	data := []byte("some text")

	// Admin with ?repo=; the blob then belongs to that account.
	out := h.upload(data, "text/plain", alice.did, asAdmin).ok("com.atproto.repo.uploadBlob")
	if got := str(t, out, "blob", "mimeType"); got != "text/plain" {
		t.Errorf("mimeType %q", got)
	}
	h.createRecord(alice, "app.bsky.feed.post", "", withImage("x", blobRef(blobCID(t, data), "text/plain", len(data))))
	r := h.query("com.atproto.sync.getBlob", q("did", alice.did, "cid", blobCID(t, data).String()))
	if r.status != http.StatusOK || !bytes.Equal(r.body, data) || r.header.Get("Content-Type") != "text/plain" {
		t.Errorf("getBlob: %d %q %q", r.status, r.body, r.header.Get("Content-Type"))
	}
	// A bearer token with its own DID as repo is fine too.
	h.upload(data, "text/plain", alice.did, alice.cred()).ok("com.atproto.repo.uploadBlob")
	// No Content-Type: application/octet-stream.
	out = h.upload([]byte{1, 2, 3}, "", "", alice.cred()).ok("com.atproto.repo.uploadBlob")
	if got := str(t, out, "blob", "mimeType"); got != "application/octet-stream" {
		t.Errorf("mimeType without Content-Type: %q", got)
	}

	h.upload(data, "text/plain", "", asAdmin).fails(http.StatusBadRequest, "InvalidRequest")
	h.upload(data, "text/plain", "not-a-did", asAdmin).fails(http.StatusBadRequest, "InvalidRequest")
	h.upload(data, "text/plain", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", asAdmin).fails(http.StatusNotFound, "RepoNotFound")
	h.upload(data, "text/plain", alice.did, bob.cred()).fails(http.StatusForbidden, "Forbidden")
	h.upload(data, "text/plain", "").fails(http.StatusUnauthorized, "AuthenticationRequired")
	h.upload(data, "text/plain", "", basic("admin", "nope")).fails(http.StatusUnauthorized, "AuthenticationRequired")
}

func TestUploadBlobTooLarge(t *testing.T) {
	h := newHarness(t, func(o *harnessOptions) { o.maxBlobSize = 1000 })
	alice := h.createAccount("alice.test")
	h.upload(bytes.Repeat([]byte{7}, 1000), "application/octet-stream", "", alice.cred()).ok("com.atproto.repo.uploadBlob")
	h.upload(bytes.Repeat([]byte{7}, 1001), "application/octet-stream", "", alice.cred()).fails(http.StatusRequestEntityTooLarge, "BlobTooLarge")
}

func TestListBlobs(t *testing.T) {
	h := newHarness(t)
	alice := h.createAccount("alice.test")
	var all []cid.Cid
	revAfter := map[int]string{} // blobs before index i were referenced by revs ≤ revAfter[i]
	for i := range 7 {
		data := fmt.Appendf(nil, "blob number %d", i)
		c := blobCID(t, data)
		h.upload(data, "text/plain", "", alice.cred()).ok("com.atproto.repo.uploadBlob")
		h.createRecord(alice, "app.bsky.feed.post", "", withImage("x", blobRef(c, "text/plain", len(data))))
		all = append(all, c)
		_, revAfter[i+1] = h.latest(alice.did)
	}
	// One more upload that nothing references.
	h.upload([]byte("orphan"), "text/plain", "", alice.cred()).ok("com.atproto.repo.uploadBlob")

	// list pages through listBlobs with limit and since.
	list := func(limit int, since string) []cid.Cid {
		var got []cid.Cid
		cursor := ""
		for page := 0; ; page++ {
			params := q("did", alice.did, "limit", strconv.Itoa(limit))
			if since != "" {
				params = append(params, "since", since)
			}
			if cursor != "" {
				params = append(params, "cursor", cursor)
			}
			out := h.query("com.atproto.sync.listBlobs", params).ok("com.atproto.sync.listBlobs")
			cids, _ := out["cids"].([]any)
			if len(cids) > limit {
				t.Fatalf("page of %d with limit %d", len(cids), limit)
			}
			for _, s := range cids {
				got = append(got, mustCID(t, s.(string)))
			}
			next, _ := out["cursor"].(string)
			if next == "" {
				return got
			}
			if page > 20 {
				t.Fatal("listBlobs does not end")
			}
			cursor = next
		}
	}
	check := func(name string, got, want []cid.Cid) {
		t.Helper()
		if d := setOf(want...).diff(setOf(got...)); d != "" || len(got) != len(want) {
			t.Errorf("%s: %d blobs: %s", name, len(got), d)
		}
	}
	check("all, default limit", list(500, ""), all)
	check("all, limit 1", list(1, ""), all)
	check("all, limit 3", list(3, ""), all)
	check("since the 3rd commit", list(2, revAfter[3]), all[3:])
	check("since the last", list(2, revAfter[7]), nil)
	// Pages come in one order: the same listing twice is the same.
	if a, b := list(2, ""), list(4, ""); !slices.Equal(a, b) {
		t.Errorf("listings differ in order: %v, %v", a, b)
	}
	h.query("com.atproto.sync.listBlobs", q("did", alice.did, "limit", "0")).fails(http.StatusBadRequest, "InvalidRequest")
	h.query("com.atproto.sync.listBlobs", q("did", alice.did, "limit", "1001")).fails(http.StatusBadRequest, "InvalidRequest")
	h.query("com.atproto.sync.listBlobs", q("did", alice.did, "cursor", "x")).fails(http.StatusBadRequest, "InvalidRequest")
	h.query("com.atproto.sync.listBlobs", q("did", alice.did, "since", "yesterday")).fails(http.StatusBadRequest, "InvalidRequest")
}
