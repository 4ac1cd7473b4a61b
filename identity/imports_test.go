package identity

import (
	"testing"

	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

// TestImports: identity builds on indigo's identity, syntax and atcrypto and
// on no other reservoir package but the leaf internal/netguard, so every
// layer above can use it.
func TestImports(t *testing.T) {
	testutil.CheckImports(t, ".",
		"github.com/bluesky-social/indigo/atproto/atcrypto",
		"github.com/bluesky-social/indigo/atproto/identity",
		"github.com/bluesky-social/indigo/atproto/syntax",
		"github.com/hashicorp/golang-lru/v2/simplelru",
		"github.com/mr-tron/base58",
		"github.com/reservoir-atproto/reservoir/internal/netguard",
	)
}
