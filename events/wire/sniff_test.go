package wire

import (
	"testing"
	"time"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

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
