package host

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/repostore"
	"github.com/reservoir-atproto/reservoir/store"
)

func postWithImage(t *testing.T, b dagcbor.Blob) []byte {
	rec, err := dagcbor.Marshal(map[string]any{
		"$type": "app.bsky.feed.post", "text": "look",
		"embed": map[string]any{"images": []any{map[string]any{"alt": "", "image": map[string]any{
			"$type": "blob", "ref": b.Ref, "mimeType": b.MimeType, "size": b.Size}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestBlobLifecycle(t *testing.T) {
	now := time.Unix(10_000, 0)
	db, err := store.Open(store.Options{InMemory: true, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	dids := &fakeDIDs{keys: map[string]atcrypto.PublicKey{}}
	h := New(Options{DB: db, Repos: &repostore.Repos{DB: db}, DIDs: dids, Blobs: &store.FSBlobs{Dir: t.TempDir()},
		MaxBlobSize: 1 << 20, BlobGrace: time.Hour, Now: func() time.Time { return now }})
	ctx := context.Background()
	acct, err := h.CreateAccount(ctx, CreateAccountInput{Handle: "alice.test"})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := db.Account(acct.DID)
	content := bytes.Repeat([]byte("png!"), 1000)
	ref, err := h.UploadBlob(ctx, acct.DID, "image/png", bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	if ref.Ref != dagcbor.SumRaw(content) || ref.Size != int64(len(content)) || ref.MimeType != "image/png" {
		t.Fatalf("blob ref %+v", ref)
	}
	if _, _, err := h.OpenBlob(a, ref.Ref); !errors.Is(err, ErrBlobNotFound) {
		t.Fatal("a temporary (unreferenced) blob is served")
	}
	orphan, err := h.UploadBlob(ctx, acct.DID, "text/plain", strings.NewReader("never used"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.UploadBlob(ctx, acct.DID, "x/y", bytes.NewReader(make([]byte, 2<<20))); !errors.Is(err, ErrBlobTooLarge) {
		t.Fatalf("oversize upload: %v", err)
	}
	// A record may reference only uploaded blobs.
	unknown := dagcbor.Blob{Ref: dagcbor.SumRaw([]byte("elsewhere")), MimeType: "image/png", Size: 9}
	if _, err := h.ApplyWrites(ctx, acct.DID, []Write{{Write: repo.Write{Action: repo.ActionCreate, Path: "app.bsky.feed.post/x", Record: postWithImage(t, unknown)}}}, cid.Undef); !errors.Is(err, ErrBlobNotFound) {
		t.Fatalf("record with an unknown blob: %v", err)
	}
	if _, err := h.ApplyWrites(ctx, acct.DID, []Write{{Write: repo.Write{Action: repo.ActionCreate, Path: "app.bsky.feed.post/a", Record: postWithImage(t, ref)}}}, cid.Undef); err != nil {
		t.Fatal(err)
	}
	r, meta, err := h.OpenBlob(a, ref.Ref)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if !bytes.Equal(got, content) || meta.Refs != 1 || meta.Size != int64(len(content)) || r.Size() != int64(len(content)) {
		t.Fatalf("served blob: %d bytes, meta %+v", len(got), meta)
	}
	now = now.Add(2 * time.Hour)
	if err := h.CollectBlobs(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Blob(a.UID, orphan.Ref); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("abandoned upload not collected")
	}
	if _, _, err := h.OpenBlob(a, ref.Ref); err != nil {
		t.Fatalf("referenced blob collected: %v", err)
	}
	// Deleting the record makes the blob temporary again; it goes after the grace period.
	if _, err := h.ApplyWrites(ctx, acct.DID, []Write{{Write: repo.Write{Action: repo.ActionDelete, Path: "app.bsky.feed.post/a"}}}, cid.Undef); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.OpenBlob(a, ref.Ref); !errors.Is(err, ErrBlobNotFound) {
		t.Fatal("a blob no record references is still served")
	}
	now = now.Add(2 * time.Hour)
	if err := h.CollectBlobs(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Blob(a.UID, ref.Ref); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("unreferenced blob not collected")
	}
}
