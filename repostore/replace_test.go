package repostore_test

import (
	"errors"
	"fmt"
	"maps"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/mst"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/repostore"
)

// testRepo builds a repository of n records and returns every block of it
// (what a getRepo CAR holds) and its commit CID.
func testRepo(t *testing.T, did string, key atcrypto.PrivateKey, n int) (mst.MemBlocks, cid.Cid, map[string]cid.Cid) {
	t.Helper()
	blocks := mst.MemBlocks{}
	tree := mst.NewEmpty(blocks)
	var ws []repo.Write
	records := map[string]cid.Cid{}
	for i := range n {
		rec, err := dagcbor.Marshal(map[string]any{"$type": "app.bsky.feed.post", "text": fmt.Sprint("post ", i)})
		if err != nil {
			t.Fatal(err)
		}
		path := fmt.Sprintf("app.bsky.feed.post/%04d", i)
		ws = append(ws, repo.Write{Action: repo.ActionCreate, Path: path, Record: rec})
		records[path] = dagcbor.SumCBOR(rec)
	}
	res, err := repo.BuildCommit(tree, nil, ws, repo.CommitOptions{DID: syntax.DID(did), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range res.NewBlocks {
		blocks[b.CID] = b.Data
	}
	return blocks, res.CID, records
}

func TestVerifyRepo(t *testing.T) {
	key, _ := atcrypto.GeneratePrivateKeyK256()
	pub, _ := key.PublicKey()
	other, _ := atcrypto.GeneratePrivateKeyK256()
	otherPub, _ := other.PublicKey()
	const did = "did:web:alice.test"
	blocks, root, records := testRepo(t, did, key, 150)

	vr, err := repostore.VerifyRepo(did, blocks, root, pub)
	if err != nil {
		t.Fatal(err)
	}
	if vr.CID != root || string(vr.Commit.DID) != did || len(vr.Records) != len(records) {
		t.Fatalf("verified %s of %s with %d records", vr.CID, vr.Commit.DID, len(vr.Records))
	}
	for i, r := range vr.Records {
		if records[r.Path] != r.CID || dagcbor.SumCBOR(r.Data) != r.CID || (i > 0 && vr.Records[i-1].Path >= r.Path) {
			t.Fatalf("record %d: %s %s", i, r.Path, r.CID)
		}
	}
	// The nodes are the tree's: with the records and the commit, exactly the
	// repository's blocks.
	got := mst.MemBlocks{root: vr.CommitBytes}
	for _, n := range vr.Nodes {
		got[n.CID] = n.Data
	}
	for _, r := range vr.Records {
		got[r.CID] = r.Data
	}
	if !maps.EqualFunc(got, blocks, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Fatalf("%d blocks verified, the repository has %d", len(got), len(blocks))
	}

	missingRecord := maps.Clone(blocks)
	delete(missingRecord, records["app.bsky.feed.post/0042"])
	missingCommit := maps.Clone(blocks)
	delete(missingCommit, root)
	for name, tc := range map[string]struct {
		did    string
		blocks mst.MemBlocks
		key    atcrypto.PublicKey
		sig    bool // also a signature failure
	}{
		"another key":    {did, blocks, otherPub, true},
		"another DID":    {"did:web:bob.test", blocks, pub, false},
		"missing record": {did, missingRecord, pub, false},
		"missing commit": {did, missingCommit, pub, false},
	} {
		_, err := repostore.VerifyRepo(tc.did, tc.blocks, root, tc.key)
		if !errors.Is(err, repostore.ErrInvalidRepo) || errors.Is(err, repo.ErrSignature) != tc.sig {
			t.Errorf("%s: %v", name, err)
		}
	}
}
