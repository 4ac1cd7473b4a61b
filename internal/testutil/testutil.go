package testutil

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
)

// ModuleRoot returns the module root: the nearest directory holding go.mod,
// walking up from the working directory (a test runs in its package
// directory).
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := findModuleRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func findModuleRoot(dir string) (string, error) {
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// Fixture returns the path of the shared fixture rel, a slash-separated
// path under ../shared/fixtures from the module root, such as
// "interop/mst/key_heights.json". It does not check that the file exists.
func Fixture(t testing.TB, rel string) string {
	t.Helper()
	return filepath.Join(ModuleRoot(t), "..", "shared", "fixtures", filepath.FromSlash(rel))
}

// ReadFixture returns the contents of the shared fixture rel (see Fixture).
func ReadFixture(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(Fixture(t, rel))
	if err != nil {
		t.Fatalf("reading fixture: %v", err)
	}
	return b
}

// FixtureJSON decodes the JSON fixture rel (see Fixture) into v.
func FixtureJSON(t testing.TB, rel string, v any) {
	t.Helper()
	if err := json.Unmarshal(ReadFixture(t, rel), v); err != nil {
		t.Fatalf("parsing %s: %v", rel, err)
	}
}

// FixtureLines returns the entries of a line-oriented fixture (see Fixture):
// every line except empty ones and '#' comments, exactly as written. Nothing
// is trimmed, because leading and trailing spaces are part of some test
// cases. A fixture without entries fails the test.
func FixtureLines(t testing.TB, rel string) []string {
	t.Helper()
	lines, err := entries(ReadFixture(t, rel))
	if err != nil {
		t.Fatalf("reading %s: %v", rel, err)
	}
	if len(lines) == 0 {
		t.Fatalf("%s: no entries", rel)
	}
	return lines
}

func entries(b []byte) ([]string, error) {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		lines = append(lines, line)
	}
	return lines, sc.Err()
}

// Unhex decodes hex written with optional spaces, as test tables and byte
// layouts copied from the specs write it.
func Unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex in test table %q: %v", s, err)
	}
	return b
}

// MustCID parses the CID s, in any multibase (or base58 for CIDv0).
func MustCID(t testing.TB, s string) cid.Cid {
	t.Helper()
	c, err := cid.Decode(s)
	if err != nil {
		t.Fatalf("bad CID %q: %v", s, err)
	}
	return c
}

// CheckImports keeps a package's dependencies in check: the non-test .go
// files of dir may import only standard library packages and the allowed
// import paths. Every file is parsed, whatever its build constraints. The
// test fails if dir holds no such file.
func CheckImports(t testing.TB, dir string, allowed ...string) {
	t.Helper()
	problems, err := importProblems(dir, allowed)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// importProblems returns one message for each disallowed import in the
// non-test .go files of dir, and an error if dir cannot be read, a file
// cannot be parsed, or there is no file to check.
func importProblems(dir string, allowed []string) ([]string, error) {
	files, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	var problems []string
	checked := 0
	for _, fi := range files {
		name := fi.Name()
		if fi.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ImportsOnly)
		if err != nil {
			return nil, err
		}
		checked++
		for _, imp := range f.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return nil, fmt.Errorf("%s: bad import %s", name, imp.Path.Value)
			}
			if !isStd(path) && !slices.Contains(allowed, path) {
				problems = append(problems, fmt.Sprintf("%s imports %s", name, path))
			}
		}
	}
	if checked == 0 {
		return nil, fmt.Errorf("no non-test .go files in %s", dir)
	}
	return problems, nil
}

// isStd reports whether an import path is of the standard library: its
// first element has no dot (as "fmt" or "encoding/json"; unlike
// "github.com/ipfs/go-cid").
func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}
