package conformance

import (
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

// syntaxKinds lists, for every identifier kind with interop syntax fixtures,
// the indigo parser reservoir relies on and the number of valid and invalid
// lines the fixture files hold (spec digest §9), so a reader that silently
// dropped lines would be noticed.
var syntaxKinds = []struct {
	name           string
	parse          func(string) error
	valid, invalid int
}{
	{"atidentifier", func(s string) error { _, err := syntax.ParseAtIdentifier(s); return err }, 11, 22},
	{"aturi", func(s string) error { _, err := syntax.ParseATURI(s); return err }, 23, 72},
	{"cid", func(s string) error { _, err := syntax.ParseCID(s); return err }, 8, 10},
	{"datetime", func(s string) error { _, err := syntax.ParseDatetime(s); return err }, 35, 45},
	{"did", func(s string) error { _, err := syntax.ParseDID(s); return err }, 24, 18},
	{"handle", func(s string) error { _, err := syntax.ParseHandle(s); return err }, 71, 48},
	{"language", func(s string) error { _, err := syntax.ParseLanguage(s); return err }, 18, 7},
	{"nsid", func(s string) error { _, err := syntax.ParseNSID(s); return err }, 25, 27},
	{"recordkey", func(s string) error { _, err := syntax.ParseRecordKey(s); return err }, 16, 11},
	{"tid", func(s string) error { _, err := syntax.ParseTID(s); return err }, 4, 9},
	{"uri", func(s string) error { _, err := syntax.ParseURI(s); return err }, 9, 12},
}

// divergences are the fixture lines on which the pinned indigo version
// disagrees with the interop fixtures, keyed by file and line, with the
// reason. They are asserted, not skipped: the test fails if indigo starts to
// agree (drop the entry then) or if any other line diverges.
var divergences = map[string]map[string]string{
	"interop/syntax/language_syntax_valid.txt": {
		"X-fr-CH": "ParseLanguage's regex requires a lowercase primary subtag; RFC 5646 §2.1.1 makes subtags case-insensitive, so the private-use 'X' is valid",
	},
	"interop/syntax/language_parse_invalid.txt": {
		"de-DE-1901-1901":               "ParseLanguage is a syntax-only regex (documented as partial/naive): it does not reject repeated variants",
		"en-rozaj-ROZAJ":                "ParseLanguage does not reject repeated variants (case-insensitive match)",
		"en-a-foo-a-bar":                "ParseLanguage does not reject repeated extension singletons",
		"en-u-co-phonebk-U-ca-buddhist": "ParseLanguage does not reject repeated extension singletons (case-insensitive match)",
	},
}

// checkLines runs parse on every entry of a fixture file and asserts the
// fixture's verdict (wantOK), flipped for the known divergences of that file.
func checkLines(t *testing.T, file string, lines []string, wantOK bool, parse func(string) error) {
	t.Helper()
	known := divergences[file]
	seen := 0
	for _, line := range lines {
		err := parse(line)
		reason, diverges := known[line]
		if diverges {
			seen++
			if (err == nil) == wantOK {
				t.Errorf("%s: %q now matches the fixture; remove it from divergences (was: %s)", file, line, reason)
			}
			continue
		}
		switch {
		case wantOK && err != nil:
			t.Errorf("%s: %q rejected: %v", file, line, err)
		case !wantOK && err == nil:
			t.Errorf("%s: %q accepted", file, line)
		}
	}
	if seen != len(known) {
		t.Errorf("%s: %d of %d listed divergences are not fixture lines", file, len(known)-seen, len(known))
	}
}

func TestSyntaxFixtures(t *testing.T) {
	for _, kind := range syntaxKinds {
		t.Run(kind.name, func(t *testing.T) {
			validFile := "interop/syntax/" + kind.name + "_syntax_valid.txt"
			invalidFile := "interop/syntax/" + kind.name + "_syntax_invalid.txt"
			valid := testutil.FixtureLines(t, validFile)
			invalid := testutil.FixtureLines(t, invalidFile)
			if len(valid) != kind.valid || len(invalid) != kind.invalid {
				t.Fatalf("fixture sizes: %d valid, %d invalid; want %d, %d",
					len(valid), len(invalid), kind.valid, kind.invalid)
			}
			checkLines(t, validFile, valid, true, kind.parse)
			checkLines(t, invalidFile, invalid, false, kind.parse)
		})
	}
}

// datetime_parse_invalid.txt holds datetimes that match the syntax regex but
// are not real instants (month 13, second 61, before year zero, ...).
// syntax.ParseDatetime is the strict parser: after the regex it parses with
// time.Parse(time.RFC3339Nano) and rejects times before year zero.
// ParseDatetimeTime goes through the same check.
func TestDatetimeParseInvalid(t *testing.T) {
	const file = "interop/syntax/datetime_parse_invalid.txt"
	lines := testutil.FixtureLines(t, file)
	if len(lines) != 7 {
		t.Fatalf("%d entries, want 7", len(lines))
	}
	checkLines(t, file, lines, false, func(s string) error { _, err := syntax.ParseDatetime(s); return err })
	checkLines(t, file, lines, false, func(s string) error { _, err := syntax.ParseDatetimeTime(s); return err })
}

// language_parse_invalid.txt holds BCP 47 tags that are well-formed but not
// valid (RFC 5646 §2.2.9): a variant or extension singleton is repeated.
// indigo has no stricter language parser than ParseLanguage, which accepts
// all of them (see divergences): a language tag reaching reservoir is checked
// for syntax only.
func TestLanguageParseInvalid(t *testing.T) {
	const file = "interop/syntax/language_parse_invalid.txt"
	lines := testutil.FixtureLines(t, file)
	if len(lines) != 4 {
		t.Fatalf("%d entries, want 4", len(lines))
	}
	checkLines(t, file, lines, false, func(s string) error { _, err := syntax.ParseLanguage(s); return err })
}
