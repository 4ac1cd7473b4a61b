package netguard

import (
	"testing"

	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

// TestImports keeps netguard a leaf: the standard library only.
func TestImports(t *testing.T) { testutil.CheckImports(t, ".") }
