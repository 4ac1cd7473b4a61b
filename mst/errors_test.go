package mst

import (
	"errors"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

func errorsIs(err, target error) bool   { return errors.Is(err, target) }
func containsString(s, sub string) bool { return strings.Contains(s, sub) }
func testValue() cid.Cid                { return dagcbor.SumCBOR([]byte{0xa0}) }

func TestKeyRules(t *testing.T) {
	long := "c/" + strings.Repeat("x", MaxKeyLen-2)
	bad := []string{
		"", "noslash", "/rkey", "coll/", "a/b/c", "coll/r key", "coll/r\x00", "coll/ré",
		"coll/r#", "coll/r?", long + "x",
	}
	tree := NewEmpty(nil)
	for _, k := range bad {
		if _, err := tree.Insert([]byte(k), testValue()); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Insert(%q): %v, want ErrInvalidKey", k, err)
		}
		if err := CheckPath([]byte(k)); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("CheckPath(%q): %v, want ErrInvalidKey", k, err)
		}
	}
	good := []string{"a/b", "app.bsky.feed.post/3jqfcqzm3fo2j", "A0/374913", "x/.", "c.o-l_l~:/r:k~e_y-.", long}
	for _, k := range good {
		if err := CheckPath([]byte(k)); err != nil {
			t.Errorf("CheckPath(%q): %v", k, err)
		}
		if _, err := tree.Insert([]byte(k), testValue()); err != nil {
			t.Errorf("Insert(%q): %v", k, err)
		}
	}
	if _, err := tree.Insert([]byte("a/b"), cid.Undef); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("Insert of cid.Undef: %v, want ErrInvalidValue", err)
	}
	// Get and Delete take any key of 1..1024 bytes.
	for _, k := range []string{"", long + "x"} {
		if _, err := tree.Get([]byte(k)); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Get(%d bytes): %v, want ErrInvalidKey", len(k), err)
		}
		if _, err := tree.Delete([]byte(k)); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Delete(%d bytes): %v, want ErrInvalidKey", len(k), err)
		}
		if err := tree.Proof([]byte(k), nil); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Proof(%d bytes): %v, want ErrInvalidKey", len(k), err)
		}
	}
	for _, k := range []string{"noslash", "a/b/c", "\xff"} {
		if v, err := tree.Get([]byte(k)); err != nil || v.Defined() {
			t.Errorf("Get(%q) = %s, %v; want absent", k, v, err)
		}
		if v, err := tree.Delete([]byte(k)); err != nil || v.Defined() {
			t.Errorf("Delete(%q) = %s, %v; want absent", k, v, err)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load(nil, EmptyTreeCID()); err == nil {
		t.Error("Load with a nil BlockGetter succeeded")
	}
	if _, err := Load(MemBlocks{}, EmptyTreeCID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("Load of a missing root: %v, want ErrNotFound", err)
	}
	raw := dagcbor.SumRaw([]byte("x"))
	if _, err := Load(MemBlocks{raw: []byte("x")}, raw); !errors.Is(err, ErrInvalidNode) {
		t.Errorf("Load of a raw-codec root: %v, want ErrInvalidNode", err)
	}
	if EmptyTreeCID().String() != "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm" {
		t.Errorf("EmptyTreeCID = %s", EmptyTreeCID())
	}
}

func TestBuilderErrors(t *testing.T) {
	v := testValue()
	b := NewBuilder(func(cid.Cid, []byte) error { return nil })
	if err := b.Add([]byte("b/b"), v); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"b/b", "a/z", "b/a"} {
		if err := b.Add([]byte(k), v); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("Add(%q) after b/b: %v, want ErrInvalidKey", k, err)
		}
	}
	if err := b.Add([]byte("c/c/c"), v); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Add of a bad path: %v", err)
	}
	if err := b.Add([]byte("c/c"), cid.Undef); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("Add of cid.Undef: %v", err)
	}
	if _, err := b.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := b.Add([]byte("d/d"), v); err == nil {
		t.Error("Add after Finish succeeded")
	}

	// An emit error stops the build and sticks.
	boom := errors.New("disk full")
	calls := 0
	b = NewBuilder(func(cid.Cid, []byte) error { calls++; return boom })
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		err = b.Add([]byte("coll/"+strings.Repeat("k", i+1)), v)
	}
	if err == nil {
		_, err = b.Finish()
	}
	if !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("emit error: %v after %d calls", err, calls)
	}
	if _, err := b.Finish(); !errors.Is(err, boom) {
		t.Fatalf("Finish after an emit error: %v", err)
	}

	// No keys: the empty tree, whose node is emitted.
	var got []cid.Cid
	b = NewBuilder(func(c cid.Cid, _ []byte) error { got = append(got, c); return nil })
	if root, err := b.Finish(); err != nil || root != EmptyTreeCID() || len(got) != 1 || got[0] != root {
		t.Fatalf("empty build: %s, %v, emitted %v", root, err, got)
	}
}

// TestDeleteToEmpty: deleting every key leaves the empty tree, whose node
// NewBlocks reports.
func TestDeleteToEmpty(t *testing.T) {
	tree := NewEmpty(nil)
	keys := []string{"A0/374913", "B1/986427", "D2/269196", "C0/451630"}
	for _, k := range keys {
		if _, err := tree.Insert([]byte(k), testValue()); err != nil {
			t.Fatal(err)
		}
	}
	store := storeTree(t, tree)
	tree, err := Load(store, mustRoot(t, tree))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if prev, err := tree.Delete([]byte(k)); err != nil || prev != testValue() {
			t.Fatalf("Delete(%q) = %s, %v", k, prev, err)
		}
	}
	if got := mustRoot(t, tree); got != EmptyTreeCID() {
		t.Fatalf("root %s, want the empty tree", got)
	}
	blocks := MemBlocks{}
	if err := tree.NewBlocks(collect(t, blocks)); err != nil {
		t.Fatal(err)
	}
	if _, ok := blocks[EmptyTreeCID()]; !ok || len(blocks) != 1 {
		t.Fatalf("NewBlocks = %d blocks, want the empty node", len(blocks))
	}
	if err := tree.Verify(); err != nil {
		t.Fatal(err)
	}
	// And back.
	if _, err := tree.Insert([]byte("D2/269196"), testValue()); err != nil {
		t.Fatal(err)
	}
	if got, want := mustRoot(t, tree), refBuild(t, map[string]cid.Cid{"D2/269196": testValue()}, nil); got != want {
		t.Fatalf("root %s, want %s", got, want)
	}
}
