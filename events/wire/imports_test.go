package wire

import (
	"testing"

	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

// TestImportsAreLeaf keeps the frame format importable by the client: the
// codec, the commit types and the protocol libraries, nothing of the server.
func TestImportsAreLeaf(t *testing.T) {
	testutil.CheckImports(t, ".",
		"github.com/bluesky-social/indigo/atproto/syntax",
		"github.com/ipfs/go-cid",
		"github.com/reservoir-atproto/reservoir/dagcbor",
		"github.com/reservoir-atproto/reservoir/repo",
	)
}
