package wire

import (
	"encoding/hex"
	"reflect"
	"testing"
	"time"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/repo"
)

// splitFrame decodes a frame's two objects strictly and checks nothing follows.
func splitFrame(t *testing.T, frame []byte) (map[string]any, map[string]any) {
	t.Helper()
	d := dagcbor.NewDecoder(frame)
	h, err := d.ReadValue()
	if err != nil {
		t.Fatalf("header: %v", err)
	}
	body, err := d.ReadValue()
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	if err := d.Done(); err != nil {
		t.Fatal(err)
	}
	return h.(map[string]any), body.(map[string]any)
}

func TestHeaderBytes(t *testing.T) {
	// sync-spec §3.2: {t:"#commit", op:1} and the error header {op:-1}.
	got := hex.EncodeToString(appendMessageHeader(nil, "#commit"))
	if got != "a261746723636f6d6d6974626f7001" {
		t.Fatalf("commit header %s", got)
	}
	if got := hex.EncodeToString(ErrorFrame("FutureCursor", "")[:5]); got != "a1626f7020" {
		t.Fatalf("error header %s", got)
	}
}

func TestFramesDecodeToTheLexiconShapes(t *testing.T) {
	c1 := dagcbor.SumCBOR([]byte{0xa0})
	c2 := dagcbor.SumCBOR([]byte{0x80})
	at := time.Date(2026, 11, 25, 12, 0, 0, 123_000_000, time.UTC)
	ev := &Commit{Repo: "did:plc:a", Rev: "3lbmqhtxvhs2c", Since: "3lbmqhtxvhs2b", Commit: c1, PrevData: c2, Blocks: []byte{1, 2}, Time: at,
		Ops: []repo.Op{
			{Action: repo.ActionCreate, Path: "a.b.c/1", CID: c1},
			{Action: repo.ActionUpdate, Path: "a.b.c/2", CID: c1, Prev: c2},
			{Action: repo.ActionDelete, Path: "a.b.c/3", Prev: c2},
		}}
	h, body := splitFrame(t, ev.AppendFrame(nil, 42))
	if !reflect.DeepEqual(h, map[string]any{"t": "#commit", "op": int64(1)}) {
		t.Fatalf("header %v", h)
	}
	want := map[string]any{
		"seq": int64(42), "repo": "did:plc:a", "rev": "3lbmqhtxvhs2c", "since": "3lbmqhtxvhs2b",
		"commit": c1, "prevData": c2, "blocks": []byte{1, 2}, "blobs": []any{},
		"rebase": false, "tooBig": false, "time": "2026-11-25T12:00:00.123Z",
		"ops": []any{
			map[string]any{"action": "create", "path": "a.b.c/1", "cid": c1},
			map[string]any{"action": "update", "path": "a.b.c/2", "cid": c1, "prev": c2},
			map[string]any{"action": "delete", "path": "a.b.c/3", "cid": nil, "prev": c2},
		},
	}
	if !reflect.DeepEqual(body, want) {
		t.Fatalf("commit body\n got %v\nwant %v", body, want)
	}
	first := &Commit{Repo: "did:plc:a", Rev: "3lbmqhtxvhs2c", Commit: c1, Blocks: []byte{1}, Ops: []repo.Op{}, Time: at}
	_, body = splitFrame(t, first.AppendFrame(nil, 1))
	if body["since"] != nil || body["prevData"] != nil {
		t.Fatalf("first commit: since %v prevData %v", body["since"], body["prevData"])
	}
	if _, ok := body["prevData"]; ok {
		t.Fatal("first commit carries prevData")
	}
	if _, ok := body["since"]; !ok {
		t.Fatal("since must be present (null) on the first commit")
	}

	_, body = splitFrame(t, (&Sync{DID: "did:plc:a", Rev: "3lbmqhtxvhs2c", Blocks: []byte{9}, Time: at}).AppendFrame(nil, 7))
	if !reflect.DeepEqual(body, map[string]any{"did": "did:plc:a", "rev": "3lbmqhtxvhs2c", "seq": int64(7), "time": "2026-11-25T12:00:00.123Z", "blocks": []byte{9}}) {
		t.Fatalf("sync body %v", body)
	}
	_, body = splitFrame(t, (&Identity{DID: "did:plc:a", Handle: "a.test", Time: at}).AppendFrame(nil, 8))
	if !reflect.DeepEqual(body, map[string]any{"did": "did:plc:a", "handle": "a.test", "seq": int64(8), "time": "2026-11-25T12:00:00.123Z"}) {
		t.Fatalf("identity body %v", body)
	}
	_, body = splitFrame(t, (&Account{DID: "did:plc:a", Active: false, Status: "takendown", Time: at}).AppendFrame(nil, 9))
	if !reflect.DeepEqual(body, map[string]any{"did": "did:plc:a", "active": false, "status": "takendown", "seq": int64(9), "time": "2026-11-25T12:00:00.123Z"}) {
		t.Fatalf("account body %v", body)
	}
	_, body = splitFrame(t, (&Account{DID: "did:plc:a", Active: true, Time: at}).AppendFrame(nil, 10))
	if _, ok := body["status"]; ok {
		t.Fatal("active account event carries a status")
	}
	h, body = splitFrame(t, InfoFrame("OutdatedCursor", "too old"))
	if h["t"] != "#info" || body["name"] != "OutdatedCursor" || body["message"] != "too old" {
		t.Fatalf("info frame %v %v", h, body)
	}
	h, body = splitFrame(t, ErrorFrame("FutureCursor", "Cursor in the future."))
	if !reflect.DeepEqual(h, map[string]any{"op": int64(-1)}) || body["error"] != "FutureCursor" {
		t.Fatalf("error frame %v %v", h, body)
	}
}

// TestLegacyFrames: the legacy encoders write the last lexicon shapes
// (sync-spec §1.3) and DecodeFrame reads them back.
func TestLegacyFrames(t *testing.T) {
	at := time.Date(2026, 11, 25, 12, 0, 0, 123_000_000, time.UTC)
	const ts = "2026-11-25T12:00:00.123Z"
	for _, tc := range []struct {
		frame   []byte
		typ     string
		body    map[string]any
		decoded Event
	}{
		{(&Handle{DID: "did:plc:a", Handle: "a.test", Time: at}).AppendFrame(nil, 3), "#handle",
			map[string]any{"did": "did:plc:a", "handle": "a.test", "seq": int64(3), "time": ts},
			&HandleEvent{Seq: 3, DID: "did:plc:a", Handle: "a.test", Time: ts}},
		{(&Migrate{DID: "did:plc:a", MigrateTo: "pds.example.com", Time: at}).AppendFrame(nil, 4), "#migrate",
			map[string]any{"did": "did:plc:a", "migrateTo": "pds.example.com", "seq": int64(4), "time": ts},
			&MigrateEvent{Seq: 4, DID: "did:plc:a", MigrateTo: "pds.example.com", Time: ts}},
		{(&Migrate{DID: "did:plc:a", Time: at}).AppendFrame(nil, 5), "#migrate",
			map[string]any{"did": "did:plc:a", "migrateTo": nil, "seq": int64(5), "time": ts},
			&MigrateEvent{Seq: 5, DID: "did:plc:a", Time: ts}},
		{(&Tombstone{DID: "did:plc:a", Time: at}).AppendFrame(nil, 6), "#tombstone",
			map[string]any{"did": "did:plc:a", "seq": int64(6), "time": ts},
			&TombstoneEvent{Seq: 6, DID: "did:plc:a", Time: ts}},
	} {
		h, body := splitFrame(t, tc.frame)
		if !reflect.DeepEqual(h, map[string]any{"t": tc.typ, "op": int64(1)}) || !reflect.DeepEqual(body, tc.body) {
			t.Errorf("%s: header %v body %v, want %v", tc.typ, h, body, tc.body)
		}
		ev, err := DecodeFrame(tc.frame)
		if err != nil || !reflect.DeepEqual(ev, tc.decoded) {
			t.Errorf("%s: DecodeFrame = %#v, %v; want %#v", tc.typ, ev, err, tc.decoded)
		}
	}
}
