package mst

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

type commitProofCase struct {
	Comment          string   `json:"comment"`
	LeafValue        string   `json:"leafValue"`
	Keys             []string `json:"keys"`
	Adds             []string `json:"adds"`
	Dels             []string `json:"dels"`
	RootBeforeCommit string   `json:"rootBeforeCommit"`
	RootAfterCommit  string   `json:"rootAfterCommit"`
	BlocksInProof    []string `json:"blocksInProof"`
}

// invertOp undoes one commit op on a tree: a create is inverted by deleting
// the key (which must hold leaf), a delete by inserting leaf (the key must
// have been absent).
type invertOp struct {
	key    string
	create bool
}

func (op invertOp) apply(tree *Tree, leaf cid.Cid) error {
	if op.create {
		prev, err := tree.Delete([]byte(op.key))
		if err != nil {
			return err
		}
		if prev != leaf {
			return fmt.Errorf("inverting create %s: removed %s, want %s", op.key, prev, leaf)
		}
		return nil
	}
	prev, err := tree.Insert([]byte(op.key), leaf)
	if err != nil {
		return err
	}
	if prev.Defined() {
		return fmt.Errorf("inverting delete %s: key already held %s", op.key, prev)
	}
	return nil
}

func permutations(ops []invertOp) [][]invertOp {
	if len(ops) <= 1 {
		return [][]invertOp{ops}
	}
	var out [][]invertOp
	for i := range ops {
		rest := append(append([]invertOp{}, ops[:i]...), ops[i+1:]...)
		for _, p := range permutations(rest) {
			out = append(out, append([]invertOp{ops[i]}, p...))
		}
	}
	return out
}

// invert loads a tree over blocks at root and applies ops in order.
func invert(blocks MemBlocks, root cid.Cid, ops []invertOp, leaf cid.Cid) (cid.Cid, error) {
	tree, err := Load(blocks, root)
	if err != nil {
		return cid.Undef, err
	}
	for _, op := range ops {
		if err := op.apply(tree, leaf); err != nil {
			return cid.Undef, err
		}
	}
	return tree.Root()
}

// TestCommitProofFixtures runs the procedure of sync-spec §9 on every case of
// firehose/commit-proof-fixtures.json.
func TestCommitProofFixtures(t *testing.T) {
	var cases []commitProofCase
	testutil.FixtureJSON(t, "interop/firehose/commit-proof-fixtures.json", &cases)
	if len(cases) != 6 {
		t.Fatalf("fixture has %d cases, want 6", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.Comment, func(t *testing.T) { runCommitProofCase(t, tc) })
	}
}

func runCommitProofCase(t *testing.T, tc commitProofCase) {
	leaf := testutil.MustCID(t, tc.LeafValue)
	before, after := testutil.MustCID(t, tc.RootBeforeCommit), testutil.MustCID(t, tc.RootAfterCommit)

	// 1. Build the tree before the commit; it lives in a full store.
	tree := NewEmpty(nil)
	for _, k := range tc.Keys {
		if _, err := tree.Insert([]byte(k), leaf); err != nil {
			t.Fatal(err)
		}
	}
	if got := mustRoot(t, tree); got != before {
		t.Fatalf("root before commit = %s, want %s", got, before)
	}
	if err := tree.Verify(); err != nil {
		t.Fatal(err)
	}
	full := storeTree(t, tree)

	// 2. Apply the commit to the tree loaded lazily from that store.
	tree, err := Load(full, before)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range tc.Adds {
		if prev, err := tree.Insert([]byte(k), leaf); err != nil || prev.Defined() {
			t.Fatalf("add %s: prev %s, %v", k, prev, err)
		}
	}
	for _, k := range tc.Dels {
		if prev, err := tree.Delete([]byte(k)); err != nil || prev != leaf {
			t.Fatalf("del %s: prev %s, %v", k, prev, err)
		}
	}
	if got := mustRoot(t, tree); got != after {
		t.Fatalf("root after commit = %s, want %s", got, after)
	}
	if err := tree.Verify(); err != nil {
		t.Fatal(err)
	}

	// 3. The commit's blocks: new nodes plus the covering proof of every op
	// key. The proofs alone must already hold the fixture's blocks, as the
	// reference's do.
	proofs, blocks := MemBlocks{}, MemBlocks{}
	opKeys := append(append([]string{}, tc.Adds...), tc.Dels...)
	for _, k := range opKeys {
		if err := tree.Proof([]byte(k), collect(t, proofs)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tree.NewBlocks(collect(t, blocks)); err != nil {
		t.Fatal(err)
	}
	for c, b := range proofs {
		blocks[c] = b
	}
	for _, s := range tc.BlocksInProof {
		if _, ok := proofs[testutil.MustCID(t, s)]; !ok {
			t.Errorf("covering proofs lack block %s", s)
		}
		if _, ok := blocks[testutil.MustCID(t, s)]; !ok {
			t.Errorf("commit blocks lack block %s", s)
		}
	}
	// Every block sent is a node of the new tree.
	both := MemBlocks{}
	for _, m := range []MemBlocks{full, blocks} {
		for c, b := range m {
			both[c] = b
		}
	}
	newNodes := reachable(t, both, after)
	for c := range blocks {
		if !newNodes[c] {
			t.Errorf("block %s is not reachable from the new root", c)
		}
	}

	// 4. A partial tree over just those blocks: check the ops forwards, then
	// invert them in every order.
	partial, err := Load(blocks, after)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range tc.Adds {
		if v, err := partial.Get([]byte(k)); err != nil || v != leaf {
			t.Errorf("partial tree: Get(%s) = %s, %v; want %s", k, v, err, leaf)
		}
	}
	for _, k := range tc.Dels {
		if v, err := partial.Get([]byte(k)); err != nil || v.Defined() {
			t.Errorf("partial tree: Get(%s) = %s, %v; want absent", k, v, err)
		}
	}
	var ops []invertOp
	for _, k := range tc.Adds {
		ops = append(ops, invertOp{key: k, create: true})
	}
	for _, k := range tc.Dels {
		ops = append(ops, invertOp{key: k})
	}
	orders := permutations(ops)
	for _, order := range orders {
		got, err := invert(blocks, after, order, leaf)
		if err != nil {
			t.Fatalf("inverting %v: %v", order, err)
		}
		if got != before {
			t.Fatalf("inverting %v: root %s, want %s", order, got, before)
		}
	}

	// 5. With any one block missing, inversion either still works (the block
	// was not needed for that order) or fails with ErrNotFound; it never
	// yields another root.
	for drop := range blocks {
		fewer := MemBlocks{}
		for c, b := range blocks {
			if c != drop {
				fewer[c] = b
			}
		}
		for _, order := range orders {
			got, err := invert(fewer, after, order, leaf)
			switch {
			case err != nil && !errors.Is(err, ErrNotFound):
				t.Errorf("without %s, inverting %v: %v, want ErrNotFound", drop, order, err)
			case err == nil && got != before:
				t.Errorf("without %s, inverting %v: root %s, want %s or ErrNotFound", drop, order, got, before)
			}
		}
	}
}
