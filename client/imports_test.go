package client

import (
	"testing"

	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

// TestImports keeps the client importable by anyone: the repository core,
// the frame format (events/wire, a leaf) and the protocol libraries, none
// of the server's packages (store, host, api, events, relay), which the
// tests use only to run a server.
func TestImports(t *testing.T) {
	testutil.CheckImports(t, ".",
		"github.com/bluesky-social/indigo/atproto/atcrypto",
		"github.com/bluesky-social/indigo/atproto/syntax",
		"github.com/gorilla/websocket",
		"github.com/ipfs/go-cid",
		"github.com/multiformats/go-multihash",
		"github.com/reservoir-atproto/reservoir/car",
		"github.com/reservoir-atproto/reservoir/dagcbor",
		"github.com/reservoir-atproto/reservoir/events/wire",
		"github.com/reservoir-atproto/reservoir/mst",
		"github.com/reservoir-atproto/reservoir/repo",
	)
	testutil.CheckImports(t, "progress")
}
