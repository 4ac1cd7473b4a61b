package car

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

// indigoTestdata locates indigo's testing/testdata directory in the module
// cache. indigo is a dependency of the module, so `go mod download` finds it.
func indigoTestdata(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", "github.com/bluesky-social/indigo")
	cmd.Dir = testutil.ModuleRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("locating indigo: %v\n%s", err, out)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("no Dir in go mod download output (%v):\n%s", err, out)
	}
	return filepath.Join(mod.Dir, "testing", "testdata")
}

// TestReferenceCARs reads the repository CARs in indigo's testdata, written
// by the reference implementations: every block must verify, and writing
// the same roots and blocks in the same order must give back the same bytes.
func TestReferenceCARs(t *testing.T) {
	dir := indigoTestdata(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.car"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("only %d CAR files in %s", len(files), dir)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			orig, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			roots, blocks, err := readBlocks(orig, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(roots) != 1 || len(blocks) == 0 {
				t.Fatalf("%d roots, %d blocks", len(roots), len(blocks))
			}
			// A file named after a CID holds that commit as its root.
			if name := strings.TrimSuffix(filepath.Base(file), ".car"); strings.HasPrefix(name, "bafy") {
				if want := testutil.MustCID(t, name); roots[0] != want {
					t.Errorf("root %s, want %s from the file name", roots[0], want)
				}
			}
			found := false
			for _, b := range blocks {
				found = found || b.c == roots[0]
			}
			if !found {
				t.Errorf("root %s is not among the blocks", roots[0])
			}
			if again := writeCAR(t, []cid.Cid{roots[0]}, blocks); !bytes.Equal(again, orig) {
				t.Errorf("rewriting gives different bytes (%d vs %d)", len(again), len(orig))
			}
		})
	}
}
