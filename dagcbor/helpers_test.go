package dagcbor

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
)

// fixturePath returns the path of an interop fixture file, given relative to
// ../shared/fixtures/interop from the module root (the directory holding
// go.mod). The fixtures are shared and never copied into the repository.
func fixturePath(t testing.TB, rel string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
	return filepath.Join(dir, "..", "shared", "fixtures", "interop", filepath.FromSlash(rel))
}

func readFixture(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(fixturePath(t, rel))
	if err != nil {
		t.Fatalf("reading fixture: %v", err)
	}
	return b
}

// unhex decodes hex written with optional spaces, as the tables write it.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex in test table %q: %v", s, err)
	}
	return b
}

// Test CIDs, written out by hand. digest11 is 32 bytes of 0x11.
const (
	digest11 = "1111111111111111111111111111111111111111111111111111111111111111"
	// CIDv1 dag-cbor sha2-256 of digest11, binary and as tag 42.
	cidBin11 = "01 71 12 20 " + digest11
	cidTag11 = "d8 2a 58 25 00 " + cidBin11
)

func cid11(t testing.TB) cid.Cid {
	t.Helper()
	c, err := cid.Cast(unhex(t, cidBin11))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustCID(t testing.TB, s string) cid.Cid {
	t.Helper()
	c, err := cid.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
