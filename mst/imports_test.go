package mst

import (
	"testing"

	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

// TestImports keeps the package a leaf: the standard library, go-cid and
// our dagcbor only.
func TestImports(t *testing.T) {
	testutil.CheckImports(t, ".",
		"github.com/ipfs/go-cid",
		"github.com/reservoir-atproto/reservoir/dagcbor",
	)
}
