package dagcbor

import (
	"go/build"
	"strings"
	"testing"
)

// dagcbor is a leaf package: besides the standard library it may import only
// go-cid. (Tests may import more, eg fxamacker/cbor for the comparison.)
func TestImportsAreLeaf(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		first, _, _ := strings.Cut(imp, "/")
		if strings.Contains(first, ".") && imp != "github.com/ipfs/go-cid" {
			t.Errorf("dagcbor imports %s", imp)
		}
	}
}
