package dagcbor

import (
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

// Test CIDs, written out by hand. digest11 is 32 bytes of 0x11.
const (
	digest11 = "1111111111111111111111111111111111111111111111111111111111111111"
	// CIDv1 dag-cbor sha2-256 of digest11, binary and as tag 42.
	cidBin11 = "01 71 12 20 " + digest11
	cidTag11 = "d8 2a 58 25 00 " + cidBin11
)

func cid11(t testing.TB) cid.Cid {
	t.Helper()
	c, err := cid.Cast(testutil.Unhex(t, cidBin11))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// nestedArrays wraps leaf in depth one-element arrays.
func nestedArrays(leaf any, depth int) any {
	for range depth {
		leaf = []any{leaf}
	}
	return leaf
}
