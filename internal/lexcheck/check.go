package lexcheck

import (
	"errors"
	"sync"
	"testing"

	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

// catalogs holds one Catalog per lexicon directory, shared by every test of
// the process.
var catalogs sync.Map // dir → *Catalog

// Fixtures returns the catalog of the shared lexicon fixtures,
// ../shared/fixtures/lexicons/lexicons from the module root.
func Fixtures(t testing.TB) *Catalog {
	t.Helper()
	dir := testutil.Fixture(t, "lexicons/lexicons")
	c, _ := catalogs.LoadOrStore(dir, NewCatalog(dir))
	return c.(*Catalog)
}

// Check fails t for every way body departs from the JSON output schema of
// the query or procedure nsid (one t.Errorf per problem), and stops the test
// with t.Fatalf when the lexicon itself cannot be used.
func Check(t testing.TB, nsid string, body []byte) {
	t.Helper()
	report(t, nsid, body, Fixtures(t).ValidateOutput(nsid, body))
}

// CheckDef is Check against a named definition ("nsid#name").
func CheckDef(t testing.TB, ref string, body []byte) {
	t.Helper()
	report(t, ref, body, Fixtures(t).ValidateDef(ref, body))
}

func report(t testing.TB, name string, body []byte, err error) {
	t.Helper()
	var invalid *Error
	switch {
	case err == nil:
	case errors.As(err, &invalid):
		for _, p := range invalid.Problems {
			t.Errorf("%s output %s", name, p)
		}
		t.Logf("%s body: %s", name, body)
	default:
		t.Fatalf("%s: %v", name, err)
	}
}
