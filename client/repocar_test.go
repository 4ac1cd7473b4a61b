package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/car"
	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/mst"
	"github.com/reservoir-atproto/reservoir/repo"
)

// modelRepo writes n posts, n/2 likes and 2 follows, and returns the
// repository and the records written (path → DAG-CBOR).
func modelRepo(t *testing.T, n int) (*localRepo, map[string][]byte) {
	t.Helper()
	r := newLocalRepo(t, "did:plc:ewvi7nxzyoun6zhxrhs64oiz")
	model := map[string][]byte{}
	var writes []repo.Write
	add := func(path, text string) {
		rec := record(t, text)
		model[path] = rec
		writes = append(writes, create(path, rec))
	}
	for i := range n {
		add(fmt.Sprintf("app.bsky.feed.post/3l%011d", i), fmt.Sprintf("post %d", i))
	}
	for i := range n / 2 {
		add(fmt.Sprintf("app.bsky.feed.like/3m%011d", i), "same like") // one CID under many paths
	}
	add("app.bsky.graph.follow/3k00000000001", "f1")
	add("app.bsky.graph.follow/3k00000000002", "f2")
	r.commit(writes...)
	return r, model
}

func openCAR(t *testing.T, data []byte) *RepoCAR {
	t.Helper()
	rc, err := OpenRepoCAR(bytes.NewReader(data), int64(len(data)), nil)
	if err != nil {
		t.Fatalf("OpenRepoCAR: %v", err)
	}
	return rc
}

func TestVerifyRepoCAR(t *testing.T) {
	r, model := modelRepo(t, 40)
	data := r.carBytes(nil)
	rc := openCAR(t, data)
	rep, err := rc.Verify(context.Background(), VerifyRepoOptions{DID: string(r.did), Keys: StaticKey(r.publicKey())})
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[string]int{}
	var recordBytes int64
	for _, rec := range model {
		if distinct[string(rec)]++; distinct[string(rec)] == 1 {
			recordBytes += int64(len(rec))
		}
	}
	want := []CollectionStats{
		{"app.bsky.feed.like", 20, 20 * int64(len(record(t, "same like")))},
		{"app.bsky.feed.post", 40, 0},
		{"app.bsky.graph.follow", 2, int64(len(record(t, "f1")) + len(record(t, "f2")))},
	}
	for path, rec := range model {
		if strings.HasPrefix(path, "app.bsky.feed.post/") {
			want[1].Bytes += int64(len(rec))
		}
	}
	if !slices.Equal(rep.Collections, want) {
		t.Errorf("collections %+v, want %+v", rep.Collections, want)
	}
	if rep.DID != r.did || rep.Rev != r.head.Rev || rep.CommitCID != r.headCID || rep.Data != r.head.Data || rep.Version != 3 {
		t.Errorf("commit fields %+v, want %s %s %s", rep, r.did, r.head.Rev, r.headCID)
	}
	if !rep.SignatureVerified || rep.Key != r.publicKey().DIDKey() {
		t.Errorf("signature not reported verified: %+v", rep)
	}
	if rep.Records != len(model) || rep.RecordBytes != recordBytes || rep.CARBytes != int64(len(data)) {
		t.Errorf("records %d (%d bytes), CAR %d; want %d (%d bytes), %d", rep.Records, rep.RecordBytes, rep.CARBytes, len(model), recordBytes, len(data))
	}
	// Every block is the commit, a node, or a distinct record.
	if rep.Nodes < 2 || rep.Blocks != 1+rep.Nodes+len(distinct) || rep.Unreferenced != 0 || rep.Sections != rep.Blocks {
		t.Errorf("blocks %d = 1 + nodes %d + records %d? unreferenced %d", rep.Blocks, rep.Nodes, len(distinct), rep.Unreferenced)
	}
	// Records walks every record in key order with its bytes.
	var paths []string
	err = rc.Records(context.Background(), func(path string, c cid.Cid, data []byte) error {
		if !bytes.Equal(data, model[path]) || c != dagcbor.SumCBOR(model[path]) {
			t.Errorf("record %s: wrong bytes or CID", path)
		}
		paths = append(paths, path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(model) || !slices.IsSorted(paths) {
		t.Errorf("Records gave %d paths (sorted %v), want %d", len(paths), slices.IsSorted(paths), len(model))
	}
}

// TestVerifyRepoOneRecord checks the counts against a node encoded by hand:
// one key gives one node {e: [{k, p: 0, t: null, v}], l: null}.
func TestVerifyRepoOneRecord(t *testing.T) {
	r := newLocalRepo(t, "did:web:example.com")
	rec := record(t, "only")
	r.commit(create("app.bsky.feed.post/3l00000000001", rec))
	node, err := dagcbor.Marshal(map[string]any{"e": []any{map[string]any{
		"k": []byte("app.bsky.feed.post/3l00000000001"), "p": int64(0), "t": nil, "v": dagcbor.SumCBOR(rec),
	}}, "l": nil})
	if err != nil {
		t.Fatal(err)
	}
	if dagcbor.SumCBOR(node) != r.head.Data {
		t.Fatalf("the hand-encoded node is not the tree's root")
	}
	rep, err := openCAR(t, r.carBytes(nil)).Verify(context.Background(), VerifyRepoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Nodes != 1 || rep.NodeBytes != int64(len(node)) || rep.Records != 1 || rep.RecordBytes != int64(len(rec)) || rep.Blocks != 3 {
		t.Errorf("report %+v", rep)
	}
	if rep.SignatureVerified {
		t.Error("signature reported verified without a key")
	}
}

func TestVerifyRepoFailures(t *testing.T) {
	r, model := modelRepo(t, 30)
	good := r.carBytes(nil)
	recCID := dagcbor.SumCBOR(model["app.bsky.feed.post/3l00000000007"])
	other, err := atcrypto.GeneratePrivateKeyP256()
	if err != nil {
		t.Fatal(err)
	}
	otherPub, _ := other.PublicKey()
	flipped := bytes.Clone(good)
	flipped[len(flipped)-3] ^= 0x01 // inside the last block's data

	cases := []struct {
		name    string
		data    []byte
		opts    VerifyRepoOptions
		openErr error // expected from OpenRepoCAR
		err     error // expected from Verify
		mention string
	}{
		{name: "flipped byte", data: flipped, openErr: car.ErrHashMismatch},
		{name: "truncated", data: good[:len(good)-10], openErr: car.ErrTruncated},
		{name: "missing record", data: r.carBytes(map[cid.Cid]bool{recCID: true}), err: ErrMissingBlock, mention: "app.bsky.feed.post/3l00000000007"},
		{name: "missing root node", data: r.carBytes(map[cid.Cid]bool{r.head.Data: true}), err: mst.ErrNotFound, mention: r.head.Data.String()},
		{name: "missing commit", data: r.carBytes(map[cid.Cid]bool{r.headCID: true}), err: ErrNoCommit},
		{name: "wrong key", data: good, opts: VerifyRepoOptions{Keys: StaticKey(otherPub)}, err: repo.ErrSignature, mention: otherPub.DIDKey()},
		{name: "wrong DID", data: good, opts: VerifyRepoOptions{DID: "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}, err: ErrWrongRepo},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := OpenRepoCAR(bytes.NewReader(tc.data), int64(len(tc.data)), nil)
			if tc.openErr != nil {
				if !errors.Is(err, tc.openErr) {
					t.Fatalf("OpenRepoCAR: %v, want %v", err, tc.openErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, err = rc.Verify(context.Background(), tc.opts)
			if !errors.Is(err, tc.err) || !strings.Contains(fmt.Sprint(err), tc.mention) {
				t.Fatalf("Verify: %v, want %v mentioning %q", err, tc.err, tc.mention)
			}
		})
	}
}

func TestVerifyRepoPartialAndExtra(t *testing.T) {
	r, _ := modelRepo(t, 10)
	// A CAR holding only the commit (what getRepo since= gives when
	// nothing else changed): fine as partial, missing blocks otherwise.
	only := car.AppendHeader(nil, r.headCID)
	only = car.AppendBlock(only, r.headCID, r.head.Bytes())
	rc := openCAR(t, only)
	rep, err := rc.Verify(context.Background(), VerifyRepoOptions{Partial: true, Keys: StaticKey(r.publicKey())})
	if err != nil || !rep.Partial || !rep.SignatureVerified || rep.Blocks != 1 {
		t.Fatalf("partial: %+v %v", rep, err)
	}
	if _, err := rc.Verify(context.Background(), VerifyRepoOptions{}); !errors.Is(err, ErrMissingBlock) {
		t.Fatalf("not partial: %v", err)
	}
	extra := record(t, "nobody links to me")
	rep, err = openCAR(t, r.carBytes(nil, extra)).Verify(context.Background(), VerifyRepoOptions{})
	if err != nil || rep.Unreferenced != 1 || rep.UnreferencedBytes != int64(len(extra)) {
		t.Fatalf("extra block: %+v %v", rep, err)
	}
}

// countingKeys gives a stale key until refreshed.
type countingKeys struct {
	stale, fresh        atcrypto.PublicKey
	gets, refreshes     int
	refreshedDIDs       []syntax.DID
	failGet, failLookup error
}

func (k *countingKeys) SigningKey(_ context.Context, did syntax.DID) (atcrypto.PublicKey, error) {
	k.gets++
	return k.stale, k.failLookup
}

func (k *countingKeys) RefreshSigningKey(_ context.Context, did syntax.DID) (atcrypto.PublicKey, error) {
	k.refreshes++
	k.refreshedDIDs = append(k.refreshedDIDs, did)
	return k.fresh, k.failLookup
}

func TestVerifyRepoRefreshesKeyOnce(t *testing.T) {
	r, _ := modelRepo(t, 3)
	stale, _ := atcrypto.GeneratePrivateKeyK256()
	stalePub, _ := stale.PublicKey()
	keys := &countingKeys{stale: stalePub, fresh: r.publicKey()}
	rep, err := openCAR(t, r.carBytes(nil)).Verify(context.Background(), VerifyRepoOptions{Keys: keys})
	if err != nil || !rep.SignatureVerified {
		t.Fatalf("%+v %v", rep, err)
	}
	if keys.gets != 1 || keys.refreshes != 1 {
		t.Errorf("%d lookups and %d refreshes, want 1 and 1", keys.gets, keys.refreshes)
	}
	keys = &countingKeys{stale: stalePub, fresh: stalePub}
	if _, err := openCAR(t, r.carBytes(nil)).Verify(context.Background(), VerifyRepoOptions{Keys: keys}); !errors.Is(err, repo.ErrSignature) || keys.refreshes != 1 {
		t.Errorf("rotated to a wrong key: %v after %d refreshes", err, keys.refreshes)
	}
}

func TestParseKey(t *testing.T) {
	r := newLocalRepo(t, "did:web:example.com")
	pub := r.publicKey()
	for _, s := range []string{pub.DIDKey(), pub.Multibase()} {
		k, err := ParseKey(s)
		if err != nil || !k.Equal(pub) {
			t.Errorf("ParseKey(%q) = %v, %v", s, k, err)
		}
	}
	for _, s := range []string{"", "did:key:", "did:key:zNope", "hello"} {
		if _, err := ParseKey(s); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ParseKey(%q): %v", s, err)
		}
	}
}

// FuzzVerifyRepoCAR: any bytes either fail to open or verify, with an
// error, never a panic.
func FuzzVerifyRepoCAR(f *testing.F) {
	r := newLocalRepo(f, "did:plc:ewvi7nxzyoun6zhxrhs64oiz")
	r.commit(create("app.bsky.feed.post/3l00000000001", record(f, "a")), create("app.bsky.feed.like/3l00000000002", record(f, "b")))
	good := r.carBytes(nil)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(r.carBytes(map[cid.Cid]bool{r.head.Data: true}))
	f.Add(r.syncBlocks())
	f.Fuzz(func(t *testing.T, data []byte) {
		rc, err := OpenRepoCAR(bytes.NewReader(data), int64(len(data)), nil)
		if err != nil {
			return
		}
		rep, err := rc.Verify(context.Background(), VerifyRepoOptions{})
		if err == nil && (rep.Blocks == 0 || !rep.CommitCID.Defined()) {
			t.Fatalf("verified a repository without a commit: %+v", rep)
		}
	})
}
