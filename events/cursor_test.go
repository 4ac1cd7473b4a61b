package events

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/internal/lexcheck"
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

func TestFrameType(t *testing.T) {
	at := time.Unix(0, 0)
	cases := []struct {
		frame []byte
		typ   string
	}{
		{(&Identity{DID: "did:plc:a", Time: at}).AppendFrame(nil, 1), TypeIdentity},
		{(&Sync{DID: "did:plc:a", Rev: "3lbmqhtxvhs2c", Time: at}).AppendFrame(nil, 1), TypeSync},
		{(&Commit{Repo: "did:plc:a", Rev: "3lbmqhtxvhs2c", Time: at}).AppendFrame(nil, 1), TypeCommit},
		{(&Account{DID: "did:plc:a", Active: true, Time: at}).AppendFrame(nil, 1), TypeAccount},
		{(&Account{DID: "did:plc:a", Status: "deleted", Time: at}).AppendFrame(nil, 1), TypeAccount},
		{InfoFrame("OutdatedCursor", ""), TypeInfo},
		{ErrorFrame("FutureCursor", "x"), ""},
		{nil, ""},
		{[]byte{0xa2, 0x61, 't', 0x78}, ""},      // a longer text header than any type
		{[]byte{0xa2, 0x61, 't', 0x67, '#'}, ""}, // cut short
	}
	for i, tc := range cases {
		if got := FrameType(tc.frame); got != tc.typ {
			t.Errorf("case %d: FrameType %q, want %q", i, got, tc.typ)
		}
	}
}

// FuzzFrameType: FrameType never panics, and reports a type only for a
// map whose first key is t, with the value a strict decoder reads there.
func FuzzFrameType(f *testing.F) {
	at := time.Unix(0, 0)
	f.Add((&Account{DID: "did:plc:a", Status: "deleted", Time: at}).AppendFrame(nil, 1))
	f.Add((&Identity{DID: "did:plc:a", Handle: "a.test", Time: at}).AppendFrame(nil, 3))
	f.Add(ErrorFrame("ConsumerTooSlow", ""))
	f.Add([]byte{0xa2, 0x61, 't', 0x61, '#'})
	f.Fuzz(func(t *testing.T, b []byte) {
		typ := FrameType(b)
		if typ == "" {
			return
		}
		d := dagcbor.NewDecoder(b)
		if _, err := d.ReadMapHeader(); err != nil {
			t.Fatalf("type %q, but no map: %v", typ, err)
		}
		k, err := d.ReadMapKey(nil)
		if err != nil || string(k) != "t" {
			t.Fatalf("type %q, first key %q: %v", typ, k, err)
		}
		// The strict decoder may refuse the text (bad UTF-8: FrameType
		// only sniffs); when it reads it, it reads the same.
		if v, err := d.ReadText(); err == nil && v != typ {
			t.Fatalf("type %q, t reads %q", typ, v)
		}
	})
}

// TestInfoFrameIsTheLexiconShape: the #info frame a stream sends for an
// outdated cursor, against com.atproto.sync.subscribeRepos#info.
func TestInfoFrameIsTheLexiconShape(t *testing.T) {
	h, b := decodeFrame(t, InfoFrame("OutdatedCursor", OutdatedCursorMessage), 0)
	if h["t"] != "#info" || h["op"] != int64(1) {
		t.Fatalf("header %v", h)
	}
	js, err := dagcbor.ToJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	lexcheck.CheckDef(t, "com.atproto.sync.subscribeRepos#info", js)
}
