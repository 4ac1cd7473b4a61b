package api_test

import (
	"fmt"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/mst"
	"github.com/reservoir-atproto/reservoir/repo"
)

// verifyRepoCAR checks a full repository export: its root is head, the
// commit is a v3 commit of did signed by key, the MST loads from the CAR's
// blocks alone and passes Verify, it holds exactly the records of want
// (path → record CID), and the CAR holds exactly the blocks reachable from
// the commit, no more. It returns the decoded commit.
func verifyRepoCAR(t *testing.T, f *carFile, did string, key atcrypto.PublicKey, head cid.Cid, want map[string]cid.Cid) *repo.Commit {
	t.Helper()
	if len(f.roots) != 1 || f.roots[0] != head {
		t.Fatalf("CAR roots %v, want [%s]", f.roots, head)
	}
	commit, err := repo.DecodeCommit(f.blocks[head])
	if err != nil {
		t.Fatalf("commit block: %v", err)
	}
	if err := commit.VerifyStructure(); err != nil {
		t.Fatal(err)
	}
	if commit.DID != syntax.DID(did) {
		t.Fatalf("commit of %s, want %s", commit.DID, did)
	}
	if err := commit.VerifySignature(key); err != nil {
		t.Fatalf("commit signature does not verify with the directory's key: %v", err)
	}
	tree, err := mst.Load(mst.MemBlocks(f.blocks), commit.Data)
	if err != nil {
		t.Fatalf("loading the MST from the CAR: %v", err)
	}
	if err := tree.Verify(); err != nil {
		t.Fatalf("MST: %v", err)
	}
	got := map[string]cid.Cid{}
	if err := tree.Walk(nil, func(k []byte, v cid.Cid) error {
		got[string(k)] = v
		return nil
	}); err != nil {
		t.Fatalf("walking the MST: %v", err)
	}
	for path, c := range want {
		if got[path] != c {
			t.Errorf("record %s: CID %s in the repository, want %s", path, got[path], c)
		}
	}
	for path := range got {
		if _, ok := want[path]; !ok {
			t.Errorf("unexpected record %s in the repository", path)
		}
	}
	reach := reachable(t, f.blocks, head)
	if d := reach.diff(setOf(f.order...)); d != "" {
		t.Errorf("CAR blocks differ from those reachable from the commit: %s", d)
	}
	return commit
}

// reachable is the set of blocks a commit reaches: the commit, every MST
// node and every record. It decodes MST nodes itself ({l, e: [{p, k, v,
// t}]}), independently of the mst package, and fails on a missing block.
func reachable(t *testing.T, blocks map[cid.Cid][]byte, commitCID cid.Cid) cidSet {
	t.Helper()
	commit, err := repo.DecodeCommit(blocks[commitCID])
	if err != nil {
		t.Fatal(err)
	}
	out := setOf(commitCID)
	var visit func(c cid.Cid)
	visit = func(c cid.Cid) {
		if out[c] {
			return
		}
		out[c] = true
		data, ok := blocks[c]
		if !ok {
			t.Fatalf("MST node %s missing", c)
		}
		v, err := dagcbor.Unmarshal(data)
		if err != nil {
			t.Fatalf("MST node %s: %v", c, err)
		}
		n, _ := v.(map[string]any)
		if l, ok := n["l"].(cid.Cid); ok {
			visit(l)
		}
		entries, _ := n["e"].([]any)
		for _, e := range entries {
			em, _ := e.(map[string]any)
			val, ok := em["v"].(cid.Cid)
			if !ok {
				t.Fatalf("MST node %s: entry without a value: %v", c, em)
			}
			if _, ok := blocks[val]; !ok {
				t.Fatalf("record block %s missing", val)
			}
			out[val] = true
			if sub, ok := em["t"].(cid.Cid); ok {
				visit(sub)
			}
		}
	}
	visit(commit.Data)
	return out
}

// model is what a test expects a repository to hold: path → record CID.
type model map[string]cid.Cid

func (m model) clone() model {
	out := model{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (m model) String() string { return fmt.Sprintf("%d records", len(m)) }
