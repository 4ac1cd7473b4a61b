package car

import (
	"testing"

	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

// TestImports keeps car a leaf package: the standard library, go-cid and
// our dagcbor codec only.
func TestImports(t *testing.T) {
	testutil.CheckImports(t, ".",
		"github.com/ipfs/go-cid",
		"github.com/reservoir-atproto/reservoir/dagcbor",
	)
}
