package mst_test

import (
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/mst"
)

func Example() {
	record := dagcbor.SumCBOR([]byte{0xa0}) // the CID of the record {}

	// A new repository's tree, built in memory.
	tree := mst.NewEmpty(nil)
	for _, key := range []string{"app.bsky.feed.post/3jqfcqzm3fo2j", "app.bsky.feed.post/3jqfcqzm3fp2j"} {
		if _, err := tree.Insert([]byte(key), record); err != nil {
			panic(err)
		}
	}
	root, _ := tree.Root()

	// Persist its blocks, then reopen it lazily from them.
	store := mst.MemBlocks{}
	_ = tree.NewBlocks(func(c cid.Cid, data []byte) error { store[c] = data; return nil })
	reopened, _ := mst.Load(store, root)
	v, _ := reopened.Get([]byte("app.bsky.feed.post/3jqfcqzm3fp2j"))
	fmt.Println(v == record)

	// The nodes a commit changing that key would carry for inversion.
	n := 0
	_ = reopened.Proof([]byte("app.bsky.feed.post/3jqfcqzm3fp2j"), func(cid.Cid, []byte) error { n++; return nil })
	fmt.Println(n, "proof block(s)")
	// Output:
	// true
	// 1 proof block(s)
}
