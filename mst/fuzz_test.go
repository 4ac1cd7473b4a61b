package mst

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

// FuzzDecodeNode: no input panics; whatever decodes is the canonical
// encoding of what was decoded; everything else is ErrInvalidNode.
func FuzzDecodeNode(f *testing.F) {
	for _, v := range validNodes(f) {
		f.Add(v.data, v.height)
	}
	for _, data := range invalidNodes(f) {
		f.Add(data, rootHeight)
		f.Add(data, 0)
	}
	f.Fuzz(func(t *testing.T, data []byte, height int) {
		if height < rootHeight || height > 8 {
			height = rootHeight
		}
		n, err := decodeNode(data, height, dagcbor.SumCBOR(data))
		if err != nil {
			if !errors.Is(err, ErrInvalidNode) {
				t.Fatalf("error %v does not wrap ErrInvalidNode", err)
			}
			return
		}
		if got := appendNode(nil, n.entries, n.kids); !bytes.Equal(got, data) {
			t.Fatalf("decoded node re-encodes differently:\n%x\n%x", got, data)
		}
	})
}

// FuzzOpsAgainstModel reads the input as a sequence of (op, key, value)
// bytes over the 156 interop example keys (heights 0 to 5) and checks a
// tree, reloaded from its own blocks now and then, against a map.
func FuzzOpsAgainstModel(f *testing.F) {
	universe := testutil.FixtureLines(f, "interop/mst/example_keys.txt")
	f.Add([]byte{0, 1, 1, 0, 2, 2, 2, 1, 0, 3, 0, 0})
	f.Add([]byte{0, 5, 1, 0, 11, 1, 0, 17, 1, 1, 5, 0, 1, 11, 0})
	f.Add(bytes.Repeat([]byte{0, 7, 3, 2, 7, 0}, 10))
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 600 {
			ops = ops[:600]
		}
		model := map[string]cid.Cid{}
		store := MemBlocks{}
		tree := NewEmpty(store)
		for i := 0; i+2 < len(ops); i += 3 {
			k := universe[int(ops[i+1])%len(universe)]
			switch ops[i] % 4 {
			case 0, 1:
				v := dagcbor.SumCBOR([]byte{ops[i+2]})
				prev, err := tree.Insert([]byte(k), v)
				if err != nil || prev != model[k] {
					t.Fatalf("insert %s: %s, %v; want %s", k, prev, err, model[k])
				}
				model[k] = v
			case 2:
				prev, err := tree.Delete([]byte(k))
				if err != nil || prev != model[k] {
					t.Fatalf("delete %s: %s, %v; want %s", k, prev, err, model[k])
				}
				delete(model, k)
			case 3:
				// Persist and reload, so later ops run on a lazy tree.
				if err := tree.NewBlocks(func(c cid.Cid, b []byte) error { store[c] = b; return nil }); err != nil {
					t.Fatal(err)
				}
				var err error
				if tree, err = Load(store, mustRoot(t, tree)); err != nil {
					t.Fatal(err)
				}
			}
		}
		if got, want := mustRoot(t, tree), refBuild(t, model, nil); got != want {
			t.Fatalf("root %s, want %s", got, want)
		}
		if got := treeContents(t, tree); !sameContents(got, model) {
			t.Fatal("contents differ from the model")
		}
		if err := tree.Verify(); err != nil {
			t.Fatal(err)
		}
	})
}
