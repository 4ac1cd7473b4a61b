package events

import (
	"errors"
	"strconv"
	"testing"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/internal/lexcheck"

	"github.com/reservoir-atproto/reservoir/events/wire"
)

var cursorTable = []struct {
	in   string
	want Cursor
	ok   bool
}{
	{"", LiveCursor, true},
	{"0", AtSeq(0), true},
	{"1", AtSeq(1), true},
	{"007", AtSeq(7), true},
	{"123456789", AtSeq(123456789), true},
	{"9007199254740991", AtSeq(MaxSeq), true}, // 2^53-1
	{"9007199254740992", Cursor{}, false},     // 2^53
	{"99999999999999999999", Cursor{}, false},
	{"0000000000000001", AtSeq(1), true},   // 16 digits
	{"00000000000000001", Cursor{}, false}, // 17: longer than any seq needs
	{"-1", Cursor{}, false},                // PDS-ref takes it as 0; sync-spec §10.5 chooses 400
	{"+1", Cursor{}, false},
	{"1.5", Cursor{}, false},
	{"1e3", Cursor{}, false},
	{" 1", Cursor{}, false},
	{"1 ", Cursor{}, false},
	{"abc", Cursor{}, false},
	{"0x10", Cursor{}, false},
	{"١", Cursor{}, false}, // an Arabic-Indic digit
}

func TestParseCursor(t *testing.T) {
	for _, tc := range cursorTable {
		got, err := ParseCursor(tc.in)
		if tc.ok && (err != nil || got != tc.want) {
			t.Errorf("ParseCursor(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if !tc.ok && !errors.Is(err, ErrInvalidCursor) {
			t.Errorf("ParseCursor(%q) = %v, %v; want ErrInvalidCursor", tc.in, got, err)
		}
	}
	if LiveCursor.String() != "" || AtSeq(42).String() != "42" {
		t.Errorf("String: %q %q", LiveCursor.String(), AtSeq(42).String())
	}
}

// FuzzParseCursor: a cursor is accepted exactly when it is at most 16
// decimal digits with a value up to 2^53-1, and then means that value.
func FuzzParseCursor(f *testing.F) {
	for _, tc := range cursorTable {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCursor(s)
		if s == "" {
			if err != nil || c.Set {
				t.Fatalf("empty: %v %v", c, err)
			}
			return
		}
		digits := true
		for _, r := range s {
			digits = digits && r >= '0' && r <= '9'
		}
		n, perr := strconv.ParseUint(s, 10, 64)
		valid := digits && len(s) <= 16 && perr == nil && n <= MaxSeq
		if valid != (err == nil) {
			t.Fatalf("ParseCursor(%q): err %v, want valid=%v", s, err, valid)
		}
		if valid && (c != AtSeq(int64(n))) {
			t.Fatalf("ParseCursor(%q) = %v", s, c)
		}
	})
}

// TestInfoFrameIsTheLexiconShape: the #info frame a stream sends for an
// outdated cursor, against com.atproto.sync.subscribeRepos#info.
func TestInfoFrameIsTheLexiconShape(t *testing.T) {
	h, b := decodeFrame(t, wire.InfoFrame("OutdatedCursor", OutdatedCursorMessage), 0)
	if h["t"] != "#info" || h["op"] != int64(1) {
		t.Fatalf("header %v", h)
	}
	js, err := dagcbor.ToJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	lexcheck.CheckDef(t, "com.atproto.sync.subscribeRepos#info", js)
}
