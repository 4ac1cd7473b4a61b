package relay

import (
	"errors"
	"testing"
	"time"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/repo"
)

var someCID = dagcbor.SumCBOR([]byte{0xa0})

// frameCases are frames the events encoders write, with what the
// subscription must read of them.
func frameCases() []struct {
	name  string
	frame []byte
	want  frameHead
} {
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	commit := &wire.Commit{Repo: "did:plc:a", Rev: "3lbmqhtxvhs2a", Commit: someCID, PrevData: someCID, Blocks: []byte{1, 2},
		Ops: []repo.Op{{Action: repo.ActionCreate, Path: "app.bsky.feed.post/3lbmqhtxvhs2a", CID: someCID}}, Time: now}
	return []struct {
		name  string
		frame []byte
		want  frameHead
	}{
		{"commit", commit.AppendFrame(nil, 7), frameHead{Op: 1, Type: "#commit", Seq: 7, HasSeq: true, DID: "did:plc:a"}},
		{"sync", (&wire.Sync{DID: "did:plc:a", Rev: "3lbmqhtxvhs2a", Blocks: []byte{1}, Time: now}).AppendFrame(nil, 1<<40), frameHead{Op: 1, Type: "#sync", Seq: 1 << 40, HasSeq: true, DID: "did:plc:a"}},
		{"identity", (&wire.Identity{DID: "did:plc:a", Handle: "a.test", Time: now}).AppendFrame(nil, 3), frameHead{Op: 1, Type: "#identity", Seq: 3, HasSeq: true, DID: "did:plc:a"}},
		{"account", (&wire.Account{DID: "did:plc:a", Status: "deleted", Time: now}).AppendFrame(nil, 4), frameHead{Op: 1, Type: "#account", Seq: 4, HasSeq: true, DID: "did:plc:a"}},
		{"info", wire.InfoFrame("OutdatedCursor", "too old"), frameHead{Op: 1, Type: "#info"}},
		{"error", wire.ErrorFrame("FutureCursor", "Cursor in the future."), frameHead{Op: -1, Error: "FutureCursor", Message: "Cursor in the future."}},
		{"unknown type", append(appendHeader(nil, 1, "#newthing"), 0xa1, 0x63, 's', 'e', 'q', 0x05), frameHead{Op: 1, Type: "#newthing", Seq: 5, HasSeq: true}},
		{"unknown op", append(appendHeader(nil, 2, "#x"), 0xff, 0xff), frameHead{Op: 2, Type: "#x"}},
		{"unknown type with a did that is not text", append(appendHeader(nil, 1, "#later"), 0xa2, 0x63, 'd', 'i', 'd', 0x01, 0x63, 's', 'e', 'q', 0x09), frameHead{Op: 1, Type: "#later", Seq: 9, HasSeq: true}},
	}
}

// appendHeader writes {t, op} in canonical order.
func appendHeader(b []byte, op int64, t string) []byte {
	b = dagcbor.AppendMapHeader(b, 2)
	b = dagcbor.AppendText(b, "t")
	b = dagcbor.AppendText(b, t)
	b = dagcbor.AppendText(b, "op")
	return dagcbor.AppendInt(b, op)
}

func TestReadFrameHead(t *testing.T) {
	for _, c := range frameCases() {
		got, err := readFrameHead(c.frame)
		if err != nil || got != c.want {
			t.Errorf("%s: %+v %v, want %+v", c.name, got, err, c.want)
		}
	}
}

func TestReadFrameHeadMalformed(t *testing.T) {
	good := (&wire.Identity{DID: "did:plc:a", Time: time.Unix(0, 0)}).AppendFrame(nil, 3)
	seqBody := func(seq int64) []byte {
		b := dagcbor.AppendMapHeader(nil, 1)
		b = dagcbor.AppendText(b, "seq")
		return dagcbor.AppendInt(b, seq)
	}
	for name, frame := range map[string][]byte{
		"empty":             nil,
		"header not a map":  {0x01},
		"header without op": append(dagcbor.AppendText(dagcbor.AppendText(dagcbor.AppendMapHeader(nil, 1), "t"), "#commit"), seqBody(1)...),
		"op not an integer": append(dagcbor.AppendText(dagcbor.AppendText(dagcbor.AppendMapHeader(nil, 1), "op"), "1"), seqBody(1)...),
		"keys out of order": append(dagcbor.AppendText(dagcbor.AppendText(dagcbor.AppendInt(dagcbor.AppendText(dagcbor.AppendMapHeader(nil, 2), "op"), 1), "t"), "#x"), seqBody(1)...),
		"no body":           appendHeader(nil, 1, "#commit"),
		"body not a map":    append(appendHeader(nil, 1, "#commit"), 0x80),
		"seq not integer":   append(appendHeader(nil, 1, "#commit"), 0xa1, 0x63, 's', 'e', 'q', 0x61, '1'),
		"seq zero":          append(appendHeader(nil, 1, "#commit"), seqBody(0)...),
		"seq negative":      append(appendHeader(nil, 1, "#commit"), seqBody(-4)...),
		"repo not text":     append(appendHeader(nil, 1, "#commit"), 0xa1, 0x64, 'r', 'e', 'p', 'o', 0x01),
		"trailing bytes":    append(append([]byte(nil), good...), 0x00),
		"truncated":         good[:len(good)-3],
		"indefinite map":    append(appendHeader(nil, 1, "#commit"), 0xbf, 0xff),
	} {
		if h, err := readFrameHead(frame); !errors.Is(err, errMalformedFrame) {
			t.Errorf("%s: %+v %v, want errMalformedFrame", name, h, err)
		}
	}
}

func FuzzReadFrameHead(f *testing.F) {
	for _, c := range frameCases() {
		f.Add(c.frame)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		h, err := readFrameHead(frame)
		if err != nil {
			if !errors.Is(err, errMalformedFrame) {
				t.Fatalf("error outside the class: %v", err)
			}
			return
		}
		if h.Op != 1 && h.Op != -1 && (h.HasSeq || h.Error != "") {
			t.Fatalf("body of an unknown op read: %+v", h)
		}
		if h.HasSeq && h.Seq < 1 {
			t.Fatalf("seq %d accepted", h.Seq)
		}
	})
}
