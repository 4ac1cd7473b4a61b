package mst

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"
)

// fixturePath returns the path of an interop fixture: the directory holding
// go.mod, then ../shared/fixtures/interop/<rel>.
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
			t.Fatal("go.mod not found above the test directory")
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

func loadJSON(t testing.TB, rel string, v any) {
	t.Helper()
	if err := json.Unmarshal(readFixture(t, rel), v); err != nil {
		t.Fatalf("parsing %s: %v", rel, err)
	}
}

func mustCID(t testing.TB, s string) cid.Cid {
	t.Helper()
	c, err := cid.Decode(s)
	if err != nil {
		t.Fatalf("bad CID %q: %v", s, err)
	}
	return c
}
