package wire

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/repo"
)

// rawFrame builds a frame from a header and a body given as data-model
// values (dagcbor.Marshal writes them canonically), for shapes the encoders
// of this package never write.
func rawFrame(t testing.TB, header, body any) []byte {
	t.Helper()
	h, err := dagcbor.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	b, err := dagcbor.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return append(h, b...)
}

var (
	decC1 = dagcbor.SumCBOR([]byte{0xa0})
	decC2 = dagcbor.SumCBOR([]byte{0x80})
	decAt = time.Date(2026, 11, 25, 12, 0, 0, 123_000_000, time.UTC)
)

// decodeCases are frames with the event each must decode to; they also seed
// the fuzz target.
func decodeCases(t testing.TB) []struct {
	name  string
	frame []byte
	want  Event
} {
	commitOps := []repo.Op{
		{Action: repo.ActionCreate, Path: "a.b.c/1", CID: decC1},
		{Action: repo.ActionUpdate, Path: "a.b.c/2", CID: decC1, Prev: decC2},
		{Action: repo.ActionDelete, Path: "a.b.c/3", Prev: decC2},
	}
	return []struct {
		name  string
		frame []byte
		want  Event
	}{
		{"commit", (&Commit{Repo: "did:plc:a", Rev: "3lbmqhtxvhs2c", Since: "3lbmqhtxvhs2b", Commit: decC1, PrevData: decC2, Blocks: []byte{1, 2}, Ops: commitOps, Time: decAt}).AppendFrame(nil, 42),
			&CommitEvent{Seq: 42, Repo: "did:plc:a", Rev: "3lbmqhtxvhs2c", Since: "3lbmqhtxvhs2b", Commit: decC1, PrevData: decC2, Blocks: []byte{1, 2}, Ops: commitOps, Time: "2026-11-25T12:00:00.123Z"}},
		{"first commit: since null, no prevData, no ops", (&Commit{Repo: "did:web:example.com", Rev: "3lbmqhtxvhs2c", Commit: decC1, Blocks: []byte{}, Time: decAt}).AppendFrame(nil, 1),
			&CommitEvent{Seq: 1, Repo: "did:web:example.com", Rev: "3lbmqhtxvhs2c", Commit: decC1, Blocks: []byte{}, Ops: []repo.Op{}, Time: "2026-11-25T12:00:00.123Z"}},
		{"sync", (&Sync{DID: "did:plc:a", Rev: "3lbmqhtxvhs2c", Blocks: []byte{9}, Time: decAt}).AppendFrame(nil, 7),
			&SyncEvent{Seq: 7, DID: "did:plc:a", Rev: "3lbmqhtxvhs2c", Blocks: []byte{9}, Time: "2026-11-25T12:00:00.123Z"}},
		{"identity with handle", (&Identity{DID: "did:plc:a", Handle: "alice.test", Time: decAt}).AppendFrame(nil, 8),
			&IdentityEvent{Seq: 8, DID: "did:plc:a", Handle: "alice.test", Time: "2026-11-25T12:00:00.123Z"}},
		{"identity without handle", (&Identity{DID: "did:plc:a", Time: decAt}).AppendFrame(nil, 9),
			&IdentityEvent{Seq: 9, DID: "did:plc:a", Time: "2026-11-25T12:00:00.123Z"}},
		{"account active", (&Account{DID: "did:plc:a", Active: true, Time: decAt}).AppendFrame(nil, 10),
			&AccountEvent{Seq: 10, DID: "did:plc:a", Active: true, Time: "2026-11-25T12:00:00.123Z"}},
		{"account takendown", (&Account{DID: "did:plc:a", Status: "takendown", Time: decAt}).AppendFrame(nil, 11),
			&AccountEvent{Seq: 11, DID: "did:plc:a", Status: "takendown", Time: "2026-11-25T12:00:00.123Z"}},
		{"info", InfoFrame("OutdatedCursor", "too old"), &InfoEvent{Name: "OutdatedCursor", Message: "too old"}},
		{"info without message", InfoFrame("OutdatedCursor", ""), &InfoEvent{Name: "OutdatedCursor"}},
		{"error frame", ErrorFrame("FutureCursor", "Cursor in the future."), &ErrorFrameEvent{Error: "FutureCursor", Message: "Cursor in the future."}},
		{"legacy handle", rawFrame(t, map[string]any{"t": "#handle", "op": int64(1)}, map[string]any{"seq": int64(3), "did": "did:plc:a", "handle": "a.test", "time": "2023-01-01T00:00:00Z"}),
			&HandleEvent{Seq: 3, DID: "did:plc:a", Handle: "a.test", Time: "2023-01-01T00:00:00Z"}},
		{"legacy migrate to null", rawFrame(t, map[string]any{"t": "#migrate", "op": int64(1)}, map[string]any{"seq": int64(4), "did": "did:plc:a", "migrateTo": nil, "time": "2023-01-01T00:00:00Z"}),
			&MigrateEvent{Seq: 4, DID: "did:plc:a", Time: "2023-01-01T00:00:00Z"}},
		{"legacy tombstone", rawFrame(t, map[string]any{"t": "#tombstone", "op": int64(1)}, map[string]any{"seq": int64(5), "did": "did:plc:a", "time": "2023-01-01T00:00:00Z"}),
			&TombstoneEvent{Seq: 5, DID: "did:plc:a", Time: "2023-01-01T00:00:00Z"}},
		{"unknown type", rawFrame(t, map[string]any{"t": "#labels", "op": int64(1)}, map[string]any{"seq": int64(6), "x": []any{int64(1)}}), &UnknownEvent{T: "#labels", Op: 1}},
		{"unknown op", rawFrame(t, map[string]any{"op": int64(2)}, map[string]any{}), &UnknownEvent{Op: 2}},
		{"unknown fields are ignored", rawFrame(t, map[string]any{"t": "#account", "op": int64(1)}, map[string]any{"seq": int64(12), "did": "did:plc:a", "time": "t", "active": false, "status": "deleted", "zzz": map[string]any{"a": decC1}}),
			&AccountEvent{Seq: 12, DID: "did:plc:a", Status: "deleted", Time: "t"}},
		{"commit with the deprecated prev and blobs", rawFrame(t, map[string]any{"t": "#commit", "op": int64(1)}, map[string]any{
			"seq": int64(13), "repo": "did:plc:a", "rev": "3lbmqhtxvhs2c", "since": nil, "commit": decC1, "prev": nil, "blocks": []byte{}, "blobs": []any{decC2},
			"ops": []any{}, "rebase": false, "tooBig": true, "time": "t"}),
			&CommitEvent{Seq: 13, Repo: "did:plc:a", Rev: "3lbmqhtxvhs2c", Commit: decC1, Blocks: []byte{}, Ops: []repo.Op{}, TooBig: true, Time: "t"}},
	}
}

func TestDecodeFrame(t *testing.T) {
	for _, tc := range decodeCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeFrame(tc.frame)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

// A #commit decoded and encoded again with our own encoder is the same frame:
// the decoder reads every field the encoder writes.
func TestDecodeCommitRoundTrip(t *testing.T) {
	in := &Commit{Repo: "did:plc:a", Rev: "3lbmqhtxvhs2c", Since: "3lbmqhtxvhs2b", Commit: decC1, PrevData: decC2, Blocks: bytes.Repeat([]byte{7}, 300),
		Ops: []repo.Op{{Action: repo.ActionDelete, Path: "a.b.c/3", Prev: decC2}}, Time: decAt}
	frame := in.AppendFrame(nil, 99)
	ev, err := DecodeFrame(frame)
	if err != nil {
		t.Fatal(err)
	}
	c := ev.(*CommitEvent)
	at, err := time.Parse(time.RFC3339Nano, c.Time)
	if err != nil {
		t.Fatal(err)
	}
	out := &Commit{Repo: c.Repo, Rev: c.Rev, Since: c.Since, Commit: c.Commit, PrevData: c.PrevData, Blocks: c.Blocks, Ops: c.Ops, Time: at}
	if again := out.AppendFrame(nil, c.Seq); !bytes.Equal(again, frame) {
		t.Fatalf("re-encoded frame differs")
	}
	msg := c.Message()
	if msg.Repo != "did:plc:a" || msg.PrevData != decC2 || len(msg.Ops) != 1 || msg.Since != "3lbmqhtxvhs2b" {
		t.Fatalf("message %+v", msg)
	}
}

func TestDecodeFrameRefuses(t *testing.T) {
	good := (&Account{DID: "did:plc:a", Active: true, Time: decAt}).AppendFrame(nil, 10)
	hdr := map[string]any{"t": "#account", "op": int64(1)}
	commitHdr := map[string]any{"t": "#commit", "op": int64(1)}
	commitBody := func() map[string]any {
		return map[string]any{
			"seq": int64(5), "rebase": false, "tooBig": false, "repo": "did:plc:abc", "commit": decC1,
			"rev": "3l2uygzaf5v2b", "since": nil, "blocks": []byte{}, "ops": []any{}, "blobs": []any{}, "time": "t",
		}
	}
	commitWithout := func(k string) map[string]any { b := commitBody(); delete(b, k); return b }
	commitWith := func(k string, v any) map[string]any { b := commitBody(); b[k] = v; return b }
	if _, err := DecodeFrame(rawFrame(t, commitHdr, commitBody())); err != nil {
		t.Fatalf("the base #commit body: %v", err)
	}
	bodyOf := good[len(appendMessageHeader(nil, "#account")):]
	cases := []struct {
		name  string
		frame []byte
		want  string
	}{
		{"empty", nil, "header"},
		{"header only", appendMessageHeader(nil, "#account"), "truncated"},
		{"trailing byte", append(bytes.Clone(good), 0xf6), "trailing"},
		{"third object", append(bytes.Clone(good), good...), "trailing"},
		{"header not a map", append([]byte{0x01}, bodyOf...), "header"},
		{"no op", rawFrame(t, map[string]any{"t": "#account"}, map[string]any{}), "no op"},
		{"message without t", rawFrame(t, map[string]any{"op": int64(1)}, map[string]any{}), "without t"},
		{"header keys out of order", append(append([]byte{0xa2, 0x62, 'o', 'p', 0x01, 0x61, 't', 0x68}, "#account"...), bodyOf...), "order"},
		{"body not a map", rawFrame(t, hdr, []any{}), "map"},
		{"unknown type body not a map", rawFrame(t, map[string]any{"t": "#x", "op": int64(1)}, "s"), "map"},
		{"missing did", rawFrame(t, hdr, map[string]any{"seq": int64(1), "time": "t", "active": true}), `"did" missing`},
		{"bad did", rawFrame(t, hdr, map[string]any{"seq": int64(1), "did": "alice", "time": "t", "active": true}), "did"},
		{"seq as text", rawFrame(t, hdr, map[string]any{"seq": "1", "did": "did:plc:a", "time": "t", "active": true}), "seq"},
		{"seq zero", rawFrame(t, hdr, map[string]any{"seq": int64(0), "did": "did:plc:a", "time": "t", "active": true}), "seq 0 outside"},
		{"negative seq", rawFrame(t, hdr, map[string]any{"seq": int64(-1), "did": "did:plc:a", "time": "t", "active": true}), "seq -1 outside"},
		{"seq above 2^53-1", rawFrame(t, hdr, map[string]any{"seq": int64(1) << 53, "did": "did:plc:a", "time": "t", "active": true}), "outside 1..2^53-1"},
		{"active as int", rawFrame(t, hdr, map[string]any{"seq": int64(1), "did": "did:plc:a", "time": "t", "active": int64(1)}), "active"},
		{"account without active", rawFrame(t, hdr, map[string]any{"seq": int64(1), "did": "did:plc:a", "time": "t"}), `"active" missing`},
		{"commit op without cid", rawFrame(t, commitHdr, commitWith("ops", []any{map[string]any{"action": "delete", "path": "a.b.c/1"}})), `ops: op 0: required field "cid" missing`},
		{"commit link as bytes", rawFrame(t, commitHdr, commitWith("commit", decC1.Bytes())), "commit: "},
		{"commit rev not a TID", rawFrame(t, commitHdr, commitWith("rev", "yesterday")), `rev: "yesterday" is not a TID`},
		{"commit since not a TID", rawFrame(t, commitHdr, commitWith("since", "3lbmqhtxvhs2")), "since: "},
		{"commit repo not a DID", rawFrame(t, commitHdr, commitWith("repo", "alice")), "repo: "},
		{"commit blobs not links", rawFrame(t, commitHdr, commitWith("blobs", []any{"bafy"})), "blobs: "},
		{"commit without since", rawFrame(t, commitHdr, commitWithout("since")), `"since" missing`},
		{"commit without blobs", rawFrame(t, commitHdr, commitWithout("blobs")), `"blobs" missing`},
		{"commit without rebase", rawFrame(t, commitHdr, commitWithout("rebase")), `"rebase" missing`},
		{"commit without tooBig", rawFrame(t, commitHdr, commitWithout("tooBig")), `"tooBig" missing`},
		{"sync without blocks", rawFrame(t, map[string]any{"t": "#sync", "op": int64(1)}, map[string]any{"seq": int64(1), "did": "did:plc:a", "rev": "3lbmqhtxvhs2c", "time": "t"}), `"blocks" missing`},
		{"info without name", rawFrame(t, map[string]any{"t": "#info", "op": int64(1)}, map[string]any{"message": "x"}), `"name" missing`},
		{"legacy handle without handle", rawFrame(t, map[string]any{"t": "#handle", "op": int64(1)}, map[string]any{"seq": int64(1), "did": "did:plc:a", "time": "t"}), `"handle" missing`},
		{"legacy migrate without migrateTo", rawFrame(t, map[string]any{"t": "#migrate", "op": int64(1)}, map[string]any{"seq": int64(1), "did": "did:plc:a", "time": "t"}), `"migrateTo" missing`},
		{"unknown type, bad CBOR", append(rawFrame(t, map[string]any{"t": "#new", "op": int64(1)}, map[string]any{})[:len(rawFrame(t, map[string]any{"t": "#new", "op": int64(1)}, map[string]any{}))-1],
			0xa1, 0x61, 'x', 0xf7), "#new body"}, // {x: undefined}
		{"error frame without error", rawFrame(t, map[string]any{"op": int64(-1)}, map[string]any{"message": "m"}), `"error" missing`},
		{"too large", append(bytes.Clone(good), make([]byte, MaxFrameSize)...), "bytes >"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := DecodeFrame(tc.frame)
			if err == nil {
				t.Fatalf("decoded %#v", ev)
			}
			if !errors.Is(err, ErrMalformedFrame) {
				t.Fatalf("error %v does not wrap ErrMalformedFrame", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// A float, even in a field nobody reads, makes the frame invalid: skipped
// fields are still validated.
func TestDecodeFrameValidatesSkippedFields(t *testing.T) {
	h := appendMessageHeader(nil, "#account")
	body := dagcbor.AppendMapHeader(nil, 5)
	body = dagcbor.AppendText(body, "did")
	body = dagcbor.AppendText(body, "did:plc:a")
	body = dagcbor.AppendText(body, "seq")
	body = dagcbor.AppendInt(body, 1)
	body = dagcbor.AppendText(body, "zzz")
	body = append(body, 0xfb, 0, 0, 0, 0, 0, 0, 0, 0) // float64 0
	body = dagcbor.AppendText(body, "time")
	body = dagcbor.AppendText(body, "t")
	body = dagcbor.AppendText(body, "active")
	body = dagcbor.AppendBool(body, true)
	if _, err := DecodeFrame(append(h, body...)); !errors.Is(err, dagcbor.ErrFloat) {
		t.Fatalf("got %v, want a float error", err)
	}
}

func TestDIDEvents(t *testing.T) {
	for _, tc := range decodeCases(t) {
		ev, err := DecodeFrame(tc.frame)
		if err != nil {
			t.Fatal(err)
		}
		de, isDID := ev.(DIDEvent)
		switch ev.(type) {
		case *InfoEvent, *ErrorFrameEvent, *UnknownEvent:
			if isDID {
				t.Fatalf("%s: %T is a DIDEvent", tc.name, ev)
			}
		default:
			if !isDID || !strings.HasPrefix(de.EventDID(), "did:") || de.EventSeq() <= 0 {
				t.Fatalf("%s: %T: DID event %v", tc.name, ev, isDID)
			}
		}
	}
}

func FuzzDecodeFrame(f *testing.F) {
	for _, tc := range decodeCases(f) {
		f.Add(tc.frame)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		ev, err := DecodeFrame(frame)
		if err != nil {
			if ev != nil || !errors.Is(err, ErrMalformedFrame) {
				t.Fatalf("error %v with event %v", err, ev)
			}
			return
		}
		// What decodes is two strict objects and nothing else.
		if err := dagcbor.Validate(frame); err == nil {
			t.Fatal("a frame that is a single object decoded")
		}
		if c, ok := ev.(*CommitEvent); ok {
			for _, op := range c.Ops {
				if op.CID != cid.Undef && !op.CID.Defined() {
					t.Fatal("impossible CID")
				}
			}
			if c.Repo == "" || c.Commit == cid.Undef {
				t.Fatalf("commit without repo or commit: %+v", c)
			}
			if !IsTID(c.Rev) || (c.Since != "" && !IsTID(c.Since)) {
				t.Fatalf("commit with rev %q since %q", c.Rev, c.Since)
			}
		}
		// What has a seq has one the protocol allows, and a DID.
		if de, ok := ev.(DIDEvent); ok {
			if s := de.EventSeq(); s < 1 || s > MaxSeq {
				t.Fatalf("seq %d", s)
			}
			if _, err := syntax.ParseDID(de.EventDID()); err != nil {
				t.Fatalf("DID %q: %v", de.EventDID(), err)
			}
		}
	})
}

// BenchmarkDecodeFrame decodes a typical #commit (one create, a slice of
// a few blocks) strictly.
func BenchmarkDecodeFrame(b *testing.B) {
	frame := (&Commit{Repo: "did:plc:ewvi7nxzyoun6zhxrhs64oiz", Rev: "3lbmqhtxvhs2c", Since: "3lbmqhtxvhs2b", Commit: decC1, PrevData: decC2,
		Blocks: bytes.Repeat([]byte{7}, 1500), Ops: []repo.Op{{Action: repo.ActionCreate, Path: "app.bsky.feed.post/3lbmqhtxvhs2c", CID: decC1}}, Time: decAt}).AppendFrame(nil, 123456789)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeFrame(frame); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzIsTID: IsTID accepts exactly what indigo's syntax.ParseTID accepts.
func FuzzIsTID(f *testing.F) {
	for _, s := range []string{"3lbmqhtxvhs2c", "2222222222222", "jzzzzzzzzzzzz", "kzzzzzzzzzzzz", "3lbmqhtxvhs2", "3lbmqhtxvhs2c\n", "3LBMQHTXVHS2C", "1111111111111", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, err := syntax.ParseTID(s)
		if IsTID(s) != (err == nil) {
			t.Fatalf("IsTID(%q) = %v, ParseTID: %v", s, IsTID(s), err)
		}
	})
}
