package conformance

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// fixturePath returns the path of an interop fixture file, given relative to
// ../shared/fixtures/interop from the module root (the directory holding
// go.mod). The fixtures are shared between projects and never copied here.
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
			t.Fatal("conformance: no go.mod above the test directory")
		}
		dir = parent
	}
	return filepath.Join(dir, "..", "shared", "fixtures", "interop", filepath.FromSlash(rel))
}

// readFixture returns the contents of an interop fixture file.
func readFixture(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(fixturePath(t, rel))
	if err != nil {
		t.Fatalf("reading fixture: %v", err)
	}
	return b
}

// fixtureLines returns the entries of a line-oriented fixture: every line
// except empty ones and '#' comments, exactly as written (leading and
// trailing spaces are part of some test cases, so nothing is trimmed).
func fixtureLines(t testing.TB, rel string) []string {
	t.Helper()
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(readFixture(t, rel)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		lines = append(lines, line)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading %s: %v", rel, err)
	}
	if len(lines) == 0 {
		t.Fatalf("%s: no entries", rel)
	}
	return lines
}
