package dagcbor

import (
	"testing"

	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

// dagcbor is a leaf package: besides the standard library it may import only
// go-cid. (Tests may import more, eg fxamacker/cbor for the comparison.)
func TestImportsAreLeaf(t *testing.T) {
	testutil.CheckImports(t, ".", "github.com/ipfs/go-cid")
}
