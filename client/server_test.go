package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/repo"
)

// TestClientAgainstServer calls every com.atproto.sync endpoint reservoir
// serves and checks the answers against what the test wrote.
func TestClientAgainstServer(t *testing.T) {
	srv := newTestServer(t)
	ctx := context.Background()
	alice := srv.createAccount("alice.test")
	bob := srv.createAccount("bob.test")
	png := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, 3000)...)
	blob := srv.uploadBlob(alice, png, "image/png")
	blobCID := cid.MustParse(blob["ref"].(map[string]any)["$link"].(string))
	model := map[string]string{} // path → text
	var first written
	for i := range 6 {
		rkey := fmt.Sprintf("3l%011d", i)
		var w written
		if i == 0 {
			w = srv.putRecord(alice, "app.bsky.feed.post", rkey, withBlob("with a picture", blob))
			model["app.bsky.feed.post/"+rkey] = "with a picture"
			first = w
		} else {
			w = srv.putRecord(alice, "app.bsky.feed.post", rkey, post(fmt.Sprintf("post %d", i)))
			model["app.bsky.feed.post/"+rkey] = fmt.Sprintf("post %d", i)
		}
		_ = w
	}
	srv.deleteRecord(alice, "app.bsky.feed.post", "3l00000000005")
	delete(model, "app.bsky.feed.post/3l00000000005")
	like := srv.putRecord(alice, "app.bsky.feed.like", "3l00000000009", map[string]any{"$type": "app.bsky.feed.like", "createdAt": "2026-11-26T00:00:00.000Z"})
	srv.putRecord(bob, "app.bsky.feed.post", "3l00000000001", post("bob's"))
	c := srv.client()

	lc, err := c.GetLatestCommit(ctx, alice.did)
	if err != nil || lc.CID.String() != like.commit || string(lc.Rev) != like.rev {
		t.Fatalf("GetLatestCommit %+v %v, want %s %s", lc, err, like.commit, like.rev)
	}
	if head, err := c.GetHead(ctx, alice.did); err != nil || head != lc.CID {
		t.Errorf("GetHead %s %v", head, err)
	}
	st, err := c.GetRepoStatus(ctx, alice.did)
	if err != nil || !st.Active || st.Status != "" || st.Rev != like.rev || string(st.DID) != alice.did {
		t.Errorf("GetRepoStatus %+v %v", st, err)
	}
	var dids []string
	for e, err := range c.AllRepos(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		dids = append(dids, string(e.DID))
		if string(e.DID) == alice.did && (e.Head != lc.CID || e.Rev != like.rev || !e.Active) {
			t.Errorf("listRepos entry %+v", e)
		}
	}
	slices.Sort(dids)
	if want := []string{alice.did, bob.did}; !slices.Equal(dids, slices.Sorted(slices.Values(want))) {
		t.Errorf("AllRepos %v", dids)
	}
	var likers []syntax.DID
	for d, err := range c.AllReposByCollection(ctx, "app.bsky.feed.like", 0) {
		if err != nil {
			t.Fatal(err)
		}
		likers = append(likers, d)
	}
	if !slices.Equal(likers, []syntax.DID{syntax.DID(alice.did)}) {
		t.Errorf("listReposByCollection app.bsky.feed.like: %v", likers)
	}
	var blobs []cid.Cid
	for b, err := range c.AllBlobs(ctx, alice.did, "", 0) {
		if err != nil {
			t.Fatal(err)
		}
		blobs = append(blobs, b)
	}
	if !slices.Equal(blobs, []cid.Cid{blobCID}) {
		t.Errorf("listBlobs %v, want %s", blobs, blobCID)
	}
	b, err := c.GetBlob(ctx, alice.did, blobCID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(b)
	b.Close()
	if err != nil || string(got) != string(png) || b.MimeType != "image/png" || b.Size != int64(len(png)) {
		t.Errorf("GetBlob: %d bytes, %v, %+v", len(got), err, b)
	}
	recCID := cid.MustParse(first.cid)
	blocks, err := c.GetBlocks(ctx, alice.did, []cid.Cid{recCID, lc.CID})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := dagcbor.UnmarshalRecord(blocks[recCID]); err != nil || v["text"] != "with a picture" {
		t.Errorf("GetBlocks record %v %v", v, err)
	}
	if commit, err := repo.DecodeCommit(blocks[lc.CID]); err != nil || string(commit.Rev) != like.rev {
		t.Errorf("GetBlocks commit %+v %v", commit, err)
	}

	key := srv.signingKey(alice.did)
	proof, err := c.GetRecord(ctx, alice.did, "app.bsky.feed.post", "3l00000000000", key)
	if err != nil || !proof.Exists() || proof.RecordCID != recCID || proof.CommitCID != lc.CID || !proof.SignatureVerified {
		t.Fatalf("GetRecord %+v %v", proof, err)
	}
	if v, err := proof.Value(); err != nil || v["text"] != "with a picture" {
		t.Errorf("GetRecord value %v %v", v, err)
	}
	proof, err = c.GetRecord(ctx, alice.did, "app.bsky.feed.post", "3l00000000005", key)
	if !errors.Is(err, ErrRecordNotFound) || proof == nil || proof.Exists() || proof.CommitCID != lc.CID {
		t.Errorf("deleted record: %+v %v", proof, err)
	}
	wrong, _ := atcrypto.GeneratePrivateKeyK256()
	wrongPub, _ := wrong.PublicKey()
	if _, err := c.GetRecord(ctx, alice.did, "app.bsky.feed.post", "3l00000000000", wrongPub); !errors.Is(err, repo.ErrSignature) {
		t.Errorf("GetRecord with a wrong key: %v", err)
	}

	// The whole repository, verified with the key from the directory.
	keys := srv.resolver()
	rc, rep, err := c.GetRepoVerified(ctx, alice.did, "", VerifyRepoOptions{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	wantColls := []CollectionStats{{Collection: "app.bsky.feed.like", Records: 1}, {Collection: "app.bsky.feed.post", Records: len(model)}}
	for i := range rep.Collections {
		rep.Collections[i].Bytes = 0
	}
	if rep.CommitCID != lc.CID || rep.Rev != lc.Rev || !rep.SignatureVerified || rep.Records != len(model)+1 ||
		!slices.Equal(rep.Collections, wantColls) || rep.Blobs != 1 || rep.BlobBytes != int64(len(png)) || rep.Unreferenced != 0 {
		t.Errorf("report %+v", rep)
	}
	texts := map[string]string{}
	err = rc.Records(ctx, func(path string, _ cid.Cid, data []byte) error {
		v, err := dagcbor.UnmarshalRecord(data)
		if err != nil {
			return err
		}
		if s, ok := v["text"].(string); ok {
			texts[path] = s
		}
		return nil
	})
	if err != nil || fmt.Sprint(texts) != fmt.Sprint(model) {
		t.Errorf("records %v %v, want %v", texts, err, model)
	}
	checkout, err := c.GetCheckout(ctx, alice.did)
	if err != nil {
		t.Fatal(err)
	}
	crc, err := ReadRepoCAR(checkout, 0)
	checkout.Close()
	if err != nil {
		t.Fatal(err)
	}
	if rep2, err := crc.Verify(ctx, VerifyRepoOptions{DID: alice.did, Keys: keys}); err != nil || rep2.Records != rep.Records {
		t.Errorf("getCheckout: %+v %v", rep2, err)
	}
	// Since the first commit: a diff, checked as partial.
	_, diff, err := c.GetRepoVerified(ctx, alice.did, first.rev, VerifyRepoOptions{Keys: keys})
	if err != nil || !diff.Partial || diff.CommitCID != lc.CID || diff.Blocks >= rep.Blocks {
		t.Errorf("since %s: %+v %v", first.rev, diff, err)
	}

	// Lexicon errors, typed.
	missing := "did:plc:zzzzzzzzzzzzzzzzzzzzzzzz"
	if _, err := c.GetLatestCommit(ctx, missing); !errors.Is(err, ErrRepoNotFound) || !IsNotFound(err) {
		t.Errorf("unknown repo: %v", err)
	}
	if _, err := c.GetBlob(ctx, alice.did, dagcbor.SumRaw([]byte("never uploaded"))); !errors.Is(err, ErrBlobNotFound) {
		t.Errorf("unknown blob: %v", err)
	}
	if _, err := c.GetBlocks(ctx, alice.did, []cid.Cid{dagcbor.SumCBOR([]byte{0xa0})}); !errors.Is(err, ErrBlockNotFound) {
		t.Errorf("unknown block: %v", err)
	}
	srv.takedown(bob.did)
	_, err = c.GetRepo(ctx, bob.did, "")
	var ae *APIError
	if !errors.Is(err, ErrRepoTakendown) || !IsRepoUnavailable(err) || !errors.As(err, &ae) || ae.Status != 403 {
		t.Errorf("taken down: %v", err)
	}
	if st, err := c.GetRepoStatus(ctx, bob.did); err != nil || st.Active || st.Status != "takendown" {
		t.Errorf("status after takedown: %+v %v", st, err)
	}
}

// TestSubscriberAgainstServer follows reservoir's firehose with
// verification, is interrupted, and resumes without losing or repeating
// an event.
func TestSubscriberAgainstServer(t *testing.T) {
	srv := newTestServer(t)
	alice := srv.createAccount("alice.test")
	for i := range 5 {
		srv.putRecord(alice, "app.bsky.feed.post", fmt.Sprintf("3l%011d", i), post(fmt.Sprintf("post %d", i)))
	}
	keys := srv.resolver()
	zero := int64(0)
	type seen struct {
		seq  int64
		kind string
		text string
	}
	var got []seen
	handler := func(stopAt int) Handler {
		return func(_ context.Context, ev Event) error {
			if len(got) == stopAt {
				return errEnough // refused: not delivered
			}
			switch e := ev.(type) {
			case *Commit:
				if !e.Verified {
					t.Errorf("commit %d: %v", e.Seq, e.VerifyErr)
				}
				text := ""
				for _, op := range e.Ops {
					if v, err := op.Value(); err == nil {
						text, _ = v["text"].(string)
					}
				}
				got = append(got, seen{e.Seq, "commit", text})
			case *Sync:
				if !e.Verified {
					t.Errorf("sync %d: %v", e.Seq, e.VerifyErr)
				}
				got = append(got, seen{e.Seq, "sync", ""})
			case *Identity:
				got = append(got, seen{e.Seq, "identity", ""})
			case *Account:
				got = append(got, seen{e.Seq, "account", ""})
			}
			return nil
		}
	}
	s := &Subscriber{URL: srv.url, Cursor: &zero, Keys: keys}
	if err := s.Run(context.Background(), handler(3)); !errors.Is(err, errEnough) {
		t.Fatal(err)
	}
	if last, _ := s.LastSeq(); last != got[2].seq {
		t.Fatalf("LastSeq %d after delivering %+v", last, got)
	}
	for i := 5; i < 8; i++ {
		srv.putRecord(alice, "app.bsky.feed.post", fmt.Sprintf("3l%011d", i), post(fmt.Sprintf("post %d", i)))
	}
	// A new subscriber resuming from the last delivered seq, as a process
	// restarted with its saved cursor would.
	last, _ := s.LastSeq()
	s2 := &Subscriber{URL: "ws" + srv.url[len("http"):], Cursor: &last, Keys: keys}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var commits int
	err := s2.Run(ctx, func(ctx context.Context, ev Event) error {
		if err := handler(-1)(ctx, ev); err != nil {
			return err
		}
		if _, ok := ev.(*Commit); ok {
			if commits++; commits == 8 {
				return errEnough
			}
		}
		return nil
	})
	if !errors.Is(err, errEnough) {
		t.Fatal(err)
	}
	var kinds, texts []string
	for i, g := range got {
		if i > 0 && g.seq <= got[i-1].seq {
			t.Errorf("seq %d after %d", g.seq, got[i-1].seq)
		}
		kinds = append(kinds, g.kind)
		if g.text != "" {
			texts = append(texts, g.text)
		}
	}
	var want []string
	for i := range 8 {
		want = append(want, fmt.Sprintf("post %d", i))
	}
	if !slices.Equal(texts, want) {
		t.Errorf("texts %q, want %q", texts, want)
	}
	if n := len(slices.DeleteFunc(slices.Clone(kinds), func(k string) bool { return k != "commit" })); n != 9 {
		t.Errorf("%d commits (kinds %v), want 9: the account's first commit and 8 posts", n, kinds)
	}
}
