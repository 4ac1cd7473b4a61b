package testutil

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestModuleRoot(t *testing.T) {
	root := ModuleRoot(t)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "internal", "testutil"); !sameDir(t, want, ".") {
		t.Errorf("module root %s is not two levels above the package", root)
	}
	if _, err := findModuleRoot(string(filepath.Separator)); err == nil {
		t.Error("found a go.mod above the filesystem root")
	}
}

func sameDir(t *testing.T, a, b string) bool {
	t.Helper()
	fa, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := os.Stat(b)
	if err != nil {
		t.Fatal(err)
	}
	return os.SameFile(fa, fb)
}

func TestFixture(t *testing.T) {
	p := Fixture(t, "interop/mst/key_heights.json")
	if filepath.Base(p) != "key_heights.json" || !strings.Contains(filepath.ToSlash(p), "/shared/fixtures/interop/mst/") {
		t.Errorf("Fixture = %s", p)
	}
	if !bytes.Equal(ReadFixture(t, "interop/mst/key_heights.json"), mustRead(t, p)) {
		t.Error("ReadFixture differs from the file at Fixture")
	}
	var rows []struct {
		Key    string `json:"key"`
		Height int    `json:"height"`
	}
	FixtureJSON(t, "interop/mst/key_heights.json", &rows)
	if len(rows) == 0 {
		t.Fatal("no rows in key_heights.json")
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFixtureLines(t *testing.T) {
	lines := FixtureLines(t, "interop/mst/example_keys.txt")
	if len(lines) != 156 {
		t.Fatalf("%d lines, want 156", len(lines))
	}
	for _, l := range lines {
		if l == "" || l[0] == '#' {
			t.Errorf("line %q kept", l)
		}
	}
}

func TestEntries(t *testing.T) {
	got, err := entries([]byte("# comment\n a \n\nb\r\n#x\n  \nc"))
	if err != nil {
		t.Fatal(err)
	}
	// Spaces are kept, including a line of spaces only; "\r\n" ends a line.
	if want := []string{" a ", "b", "  ", "c"}; !slices.Equal(got, want) {
		t.Errorf("entries = %q, want %q", got, want)
	}
}

func TestUnhex(t *testing.T) {
	if got := Unhex(t, "01 71 12 20"); !bytes.Equal(got, []byte{0x01, 0x71, 0x12, 0x20}) {
		t.Errorf("Unhex = %x", got)
	}
	if got := Unhex(t, ""); len(got) != 0 {
		t.Errorf("Unhex(\"\") = %x", got)
	}
}

func TestMustCID(t *testing.T) {
	const s = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
	if got := MustCID(t, s).String(); got != s {
		t.Errorf("MustCID(%s) = %s", s, got)
	}
}

func TestCheckImportsSelf(t *testing.T) {
	CheckImports(t, ".", "github.com/ipfs/go-cid")
}

func writeFile(t *testing.T, dir, name, src string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestImportProblems(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.go", "package p\n\nimport (\n\t\"fmt\"\n\t\"github.com/ipfs/go-cid\"\n\t\"example.com/bad\"\n)\n")
	writeFile(t, dir, "b.go", "package p\n\nimport \"golang.org/x/sys/unix\"\n")
	// Test files and other files are not checked.
	writeFile(t, dir, "a_test.go", "package p\n\nimport \"example.com/fromtest\"\n")
	writeFile(t, dir, "notes.txt", "import \"example.com/text\"\n")

	got, err := importProblems(dir, []string{"github.com/ipfs/go-cid"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a.go imports example.com/bad", "b.go imports golang.org/x/sys/unix"}
	if !slices.Equal(got, want) {
		t.Errorf("problems %q, want %q", got, want)
	}

	got, err = importProblems(dir, []string{"github.com/ipfs/go-cid", "example.com/bad", "golang.org/x/sys/unix"})
	if err != nil || len(got) != 0 {
		t.Errorf("all allowed: problems %q, error %v", got, err)
	}
}

func TestImportProblemsNoFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "only_test.go", "package p\n")
	if _, err := importProblems(dir, nil); err == nil {
		t.Error("no error for a directory without non-test files")
	}
	if _, err := importProblems(filepath.Join(dir, "missing"), nil); err == nil {
		t.Error("no error for a missing directory")
	}
}

func TestImportProblemsParseError(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.go", "package p\n\nimport \"unterminated\n")
	if _, err := importProblems(dir, nil); err == nil {
		t.Error("no error for a file that does not parse")
	}
}

// recorder is a testing.TB that records failures instead of reporting them.
// Fatal is only recorded too, so the checks after it must tolerate going on.
type recorder struct {
	testing.TB
	errors []string
	fatal  bool
}

func (r *recorder) Helper()           {}
func (r *recorder) Error(args ...any) { r.errors = append(r.errors, fmt.Sprint(args...)) }
func (r *recorder) Fatal(args ...any) { r.fatal = true }

// CheckImports reports each bad import, and fails when nothing was checked.
func TestCheckImportsReports(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.go", "package p\n\nimport \"example.com/bad\"\n")
	r := &recorder{TB: t}
	CheckImports(r, dir)
	if r.fatal || !slices.Equal(r.errors, []string{"a.go imports example.com/bad"}) {
		t.Errorf("fatal %v, errors %q", r.fatal, r.errors)
	}

	r = &recorder{TB: t}
	CheckImports(r, t.TempDir())
	if !r.fatal {
		t.Error("an empty directory did not fail")
	}
}
