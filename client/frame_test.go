package client

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/events"
	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/repo"
)

// cborFrame builds a frame with the generic DAG-CBOR encoder: header, then
// body, then any trailing bytes.
func cborFrame(t testing.TB, header, body map[string]any, trailing ...byte) []byte {
	t.Helper()
	h, err := dagcbor.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	b, err := dagcbor.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return append(append(h, b...), trailing...)
}

var testTime = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

const testTimeString = "2026-11-26T00:00:00.000Z"

// TestDecodeFramesOfTheServer decodes frames written by the firehose's own
// encoders (package events) and compares with the values they were given.
func TestDecodeFramesOfTheServer(t *testing.T) {
	r := newLocalRepo(t, "did:plc:ewvi7nxzyoun6zhxrhs64oiz")
	rec := record(t, "hello")
	first := r.commit(create("app.bsky.feed.post/3l00000000001", rec))
	second := r.commit(repo.Write{Action: repo.ActionUpdate, Path: "app.bsky.feed.post/3l00000000001", Record: record(t, "bye")},
		create("app.bsky.feed.like/3l00000000002", record(t, "like")))
	third := r.commit(repo.Write{Action: repo.ActionDelete, Path: "app.bsky.feed.like/3l00000000002"})

	ev, err := DecodeFrame(r.commitFrame(first, 7))
	if err != nil {
		t.Fatal(err)
	}
	c := ev.(*Commit)
	if c.Seq != 7 || c.Repo != r.did || c.Rev != first.Commit.Rev || c.Since != "" || c.CommitCID != first.CID ||
		c.PrevData.Defined() || string(c.Blocks) != string(first.Slice) || c.Time != testTimeString || c.TooBig || c.Rebase {
		t.Errorf("first commit decoded as %+v", c)
	}
	want := []RepoOp{{Action: "create", Path: "app.bsky.feed.post/3l00000000001", CID: dagcbor.SumCBOR(rec)}}
	if !reflect.DeepEqual(c.Ops, want) {
		t.Errorf("ops %+v, want %+v", c.Ops, want)
	}
	ev, err = DecodeFrame(r.commitFrame(second, 8))
	if err != nil {
		t.Fatal(err)
	}
	c = ev.(*Commit)
	if c.Since != string(first.Commit.Rev) || c.PrevData != first.Commit.Data || len(c.Ops) != 2 {
		t.Errorf("second commit: since %q prevData %s ops %+v", c.Since, c.PrevData, c.Ops)
	}
	for i, op := range c.Ops {
		if op.Action != string(second.Ops[i].Action) || op.Path != second.Ops[i].Path || op.CID != second.Ops[i].CID || op.Prev != second.Ops[i].Prev {
			t.Errorf("op %d: %+v, want %+v", i, op, second.Ops[i])
		}
	}
	ev, err = DecodeFrame(r.commitFrame(third, 9))
	if err != nil {
		t.Fatal(err)
	}
	if op := ev.(*Commit).Ops[0]; op.Action != "delete" || op.CID.Defined() || op.Prev != dagcbor.SumCBOR(record(t, "like")) {
		t.Errorf("delete op %+v", op)
	}

	cases := []struct {
		frame []byte
		want  Event
	}{
		{r.syncFrame(10), &Sync{Seq: 10, DID: r.did, Rev: r.head.Rev, Blocks: r.syncBlocks(), Time: testTimeString}},
		{(&wire.Identity{DID: "did:plc:abc", Handle: "alice.test", Time: testTime}).AppendFrame(nil, 11), &Identity{Seq: 11, DID: "did:plc:abc", Handle: "alice.test", Time: testTimeString}},
		{(&wire.Identity{DID: "did:plc:abc", Time: testTime}).AppendFrame(nil, 12), &Identity{Seq: 12, DID: "did:plc:abc", Time: testTimeString}},
		{(&wire.Account{DID: "did:plc:abc", Active: true, Time: testTime}).AppendFrame(nil, 13), &Account{Seq: 13, DID: "did:plc:abc", Active: true, Time: testTimeString}},
		{(&wire.Account{DID: "did:plc:abc", Status: "deleted", Time: testTime}).AppendFrame(nil, 14), &Account{Seq: 14, DID: "did:plc:abc", Status: "deleted", Time: testTimeString}},
		{wire.InfoFrame("OutdatedCursor", events.OutdatedCursorMessage), &Info{Name: "OutdatedCursor", Message: events.OutdatedCursorMessage}},
		{wire.InfoFrame("Other", ""), &Info{Name: "Other"}},
		{wire.ErrorFrame("FutureCursor", "Cursor in the future."), &ErrorFrame{Name: "FutureCursor", Message: "Cursor in the future."}},
	}
	for _, tc := range cases {
		got, err := DecodeFrame(tc.frame)
		if err != nil {
			t.Errorf("%T: %v", tc.want, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("decoded %+v, want %+v", got, tc.want)
		}
	}
}

func TestDecodeFrameHandBuilt(t *testing.T) {
	link := dagcbor.SumCBOR([]byte{0xa0})
	commitBody := func() map[string]any {
		return map[string]any{
			"seq": int64(5), "rebase": false, "tooBig": false, "repo": "did:plc:abc", "commit": link,
			"rev": "3l2uygzaf5v2b", "since": nil, "blocks": []byte{}, "ops": []any{}, "blobs": []any{}, "time": testTimeString,
		}
	}
	msg := func(typ string) map[string]any { return map[string]any{"t": typ, "op": int64(1)} }

	// Unknown fields are skipped; legacy and future types are Unknown.
	body := commitBody()
	body["somethingNew"] = map[string]any{"x": []any{int64(1), "y"}}
	body["prev"] = nil // the removed #commit.prev
	ev, err := DecodeFrame(cborFrame(t, msg("#commit"), body))
	if err != nil || ev.(*Commit).Seq != 5 {
		t.Errorf("commit with unknown fields: %+v %v", ev, err)
	}
	for _, typ := range []string{"#handle", "#tombstone", "#migrate", "#somethingElse"} {
		legacy := map[string]any{"seq": int64(1), "did": "did:plc:abc", "time": testTimeString, "handle": "a.test", "migrateTo": nil}
		ev, err := DecodeFrame(cborFrame(t, msg(typ), legacy))
		if u, ok := ev.(*Unknown); err != nil || !ok || u.Type != typ {
			t.Errorf("%s: %+v %v", typ, ev, err)
		}
	}
	ev, err = DecodeFrame(cborFrame(t, map[string]any{"op": int64(2)}, map[string]any{}))
	if u, ok := ev.(*Unknown); err != nil || !ok || u.Op != 2 {
		t.Errorf("op 2: %+v %v", ev, err)
	}
	// An error frame matches its sentinel.
	ev, err = DecodeFrame(cborFrame(t, map[string]any{"op": int64(-1)}, map[string]any{"error": "ConsumerTooSlow"}))
	if e, ok := ev.(*ErrorFrame); err != nil || !ok || !errors.Is(e, ErrConsumerTooSlow) || errors.Is(e, ErrFutureCursor) {
		t.Errorf("error frame: %+v %v", ev, err)
	}

	without := func(k string) map[string]any { b := commitBody(); delete(b, k); return b }
	with := func(k string, v any) map[string]any { b := commitBody(); b[k] = v; return b }
	bad := map[string][]byte{
		"trailing bytes":     cborFrame(t, msg("#commit"), commitBody(), 0x00),
		"no body":            cborFrame(t, msg("#commit"), map[string]any{})[:len(cborFrame(t, msg("#commit"), map[string]any{}))-1],
		"header without op":  cborFrame(t, map[string]any{"t": "#commit"}, commitBody()),
		"message without t":  cborFrame(t, map[string]any{"op": int64(1)}, commitBody()),
		"missing since":      cborFrame(t, msg("#commit"), without("since")),
		"missing blobs":      cborFrame(t, msg("#commit"), without("blobs")),
		"missing seq":        cborFrame(t, msg("#commit"), without("seq")),
		"seq zero":           cborFrame(t, msg("#commit"), with("seq", int64(0))),
		"seq above 2^53":     cborFrame(t, msg("#commit"), with("seq", int64(1)<<53)),
		"repo not a DID":     cborFrame(t, msg("#commit"), with("repo", "alice")),
		"rev not a TID":      cborFrame(t, msg("#commit"), with("rev", "yesterday")),
		"commit not a link":  cborFrame(t, msg("#commit"), with("commit", "bafy")),
		"op without cid":     cborFrame(t, msg("#commit"), with("ops", []any{map[string]any{"action": "create", "path": "a/b"}})),
		"account w/o active": cborFrame(t, msg("#account"), map[string]any{"seq": int64(1), "did": "did:plc:abc", "time": testTimeString}),
		"info without name":  cborFrame(t, msg("#info"), map[string]any{"message": "x"}),
		"error without name": cborFrame(t, map[string]any{"op": int64(-1)}, map[string]any{"message": "x"}),
		"body not a map":     append(cborFrame(t, msg("#info"), map[string]any{})[:len(cborFrame(t, msg("#info"), map[string]any{}))-1], 0x80),
		"unknown type, bad CBOR": append(cborFrame(t, msg("#new"), map[string]any{})[:len(cborFrame(t, msg("#new"), map[string]any{}))-1],
			0xa1, 0x61, 'x', 0xf7), // undefined
		"keys out of order": {0xa2, 0x62, 'o', 'p', 0x01, 0x61, 't', 0x65, '#', 'i', 'n', 'f', 'o', 0xa1, 0x64, 'n', 'a', 'm', 'e', 0x61, 'x'},
		"empty":             {},
	}
	for name, frame := range bad {
		if ev, err := DecodeFrame(frame); !errors.Is(err, ErrMalformedFrame) {
			t.Errorf("%s: %+v %v, want ErrMalformedFrame", name, ev, err)
		}
	}
}

func TestRepoOpHelpers(t *testing.T) {
	rec := record(t, "hi")
	op := RepoOp{Action: "create", Path: "app.bsky.feed.post/3l00000000001", Record: rec}
	if op.Collection() != "app.bsky.feed.post" || op.RKey() != "3l00000000001" {
		t.Errorf("collection %q rkey %q", op.Collection(), op.RKey())
	}
	js, err := op.JSON()
	if err != nil || string(js) != `{"$type":"app.bsky.feed.post","createdAt":"2026-11-25T00:00:00.000Z","text":"hi"}` {
		t.Errorf("JSON %s %v", js, err)
	}
	if _, err := (&RepoOp{Path: "a/b"}).Value(); err == nil {
		t.Error("an op without a record has a value")
	}
}

func FuzzDecodeFrame(f *testing.F) {
	r := newLocalRepo(f, "did:plc:ewvi7nxzyoun6zhxrhs64oiz")
	res := r.commit(create("app.bsky.feed.post/3l00000000001", record(f, "x")))
	f.Add(r.commitFrame(res, 1))
	f.Add(r.syncFrame(2))
	f.Add((&wire.Account{DID: "did:plc:abc", Status: "deleted", Time: testTime}).AppendFrame(nil, 3))
	f.Add((&wire.Identity{DID: "did:plc:abc", Handle: "a.test", Time: testTime}).AppendFrame(nil, 4))
	f.Add(wire.InfoFrame("OutdatedCursor", "m"))
	f.Add(wire.ErrorFrame("FutureCursor", "m"))
	f.Fuzz(func(t *testing.T, frame []byte) {
		ev, err := DecodeFrame(frame)
		if (ev == nil) == (err == nil) {
			t.Fatalf("DecodeFrame gave %v and %v", ev, err)
		}
		if err != nil && !errors.Is(err, ErrMalformedFrame) {
			t.Fatalf("error outside the class: %v", err)
		}
	})
}
