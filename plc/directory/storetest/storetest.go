package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/plc"
	"github.com/reservoir-atproto/reservoir/plc/directory"
)

// Run runs the suite; open must return a new, empty store each call.
func Run(t *testing.T, open func(t *testing.T) directory.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s directory.Store)
	}{
		{"EmptyLog", testEmptyLog},
		{"AppendAndRead", testAppendAndRead},
		{"Conflict", testConflict},
		{"Nullify", testNullify},
		{"NullifyUnknown", testNullifyUnknown},
		{"CreatedAtStrictlyIncreases", testCreatedAt},
		{"ExportBySeq", testExportBySeq},
		{"ExportByTime", testExportByTime},
		{"ReturnedOpsAreCopies", testCopies},
		{"ConcurrentAppends", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

// chain is a DID with a genesis and n-1 updates, signed for real so CIDs
// and DIDs are those of valid operations.
type chain struct {
	did syntax.DID
	ops []plc.Op
}

func newChain(t *testing.T, n int) chain {
	t.Helper()
	key, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := key.PublicKey()
	genesis, did, err := plc.CreateGenesis(plc.Account{
		Handle: "alice.test", Endpoint: "https://pds.example.com", SigningKey: pub, RotationKeys: []atcrypto.PublicKey{pub},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	c := chain{did: did, ops: []plc.Op{genesis}}
	for i := 1; i < n; i++ {
		op, err := plc.Update(c.ops[i-1], plc.SetHandle(syntax.Handle(fmt.Sprintf("alice%d.test", i))))
		if err != nil {
			t.Fatal(err)
		}
		if err := plc.Sign(op, key); err != nil {
			t.Fatal(err)
		}
		c.ops = append(c.ops, op)
	}
	return c
}

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func mustAppend(t *testing.T, s directory.Store, a directory.Append) directory.Record {
	t.Helper()
	rec, err := s.Append(context.Background(), a)
	if err != nil {
		t.Fatalf("Append %s %s: %v", a.DID, a.Op.Type(), err)
	}
	return rec
}

func mustLog(t *testing.T, s directory.Store, did syntax.DID) []directory.Record {
	t.Helper()
	recs, err := s.Log(context.Background(), did)
	if err != nil {
		t.Fatalf("Log %s: %v", did, err)
	}
	return recs
}

func testEmptyLog(t *testing.T, s directory.Store) {
	if recs := mustLog(t, s, "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"); len(recs) != 0 {
		t.Fatalf("unknown DID has %d records", len(recs))
	}
	recs, err := s.Export(context.Background(), directory.Cursor{}, 10)
	if err != nil || len(recs) != 0 {
		t.Fatalf("Export of an empty store = %d records, %v", len(recs), err)
	}
}

func testAppendAndRead(t *testing.T, s directory.Store) {
	c := newChain(t, 3)
	for i, op := range c.ops {
		rec := mustAppend(t, s, directory.Append{DID: c.did, Op: op, LogLen: i, Now: t0.Add(time.Duration(i) * time.Second)})
		if rec.Seq != int64(i+1) {
			t.Errorf("record %d: seq %d, want %d", i, rec.Seq, i+1)
		}
		if !rec.CID.Equals(op.CID()) {
			t.Errorf("record %d: CID %s, want %s", i, rec.CID, op.CID())
		}
	}
	recs := mustLog(t, s, c.did)
	if len(recs) != 3 {
		t.Fatalf("log has %d records, want 3", len(recs))
	}
	for i, rec := range recs {
		if rec.DID != c.did || rec.Seq != int64(i+1) || rec.Nullified {
			t.Errorf("record %d = %+v", i, rec)
		}
		if string(rec.Op.SignedCBOR()) != string(c.ops[i].SignedCBOR()) {
			t.Errorf("record %d: operation changed in the store", i)
		}
		if !rec.CID.Equals(c.ops[i].CID()) {
			t.Errorf("record %d: CID %s, want %s", i, rec.CID, c.ops[i].CID())
		}
		if want := t0.Add(time.Duration(i) * time.Second); !rec.CreatedAt.Equal(want) {
			t.Errorf("record %d: createdAt %s, want %s", i, rec.CreatedAt, want)
		}
	}
}

func testConflict(t *testing.T, s directory.Store) {
	c := newChain(t, 2)
	mustAppend(t, s, directory.Append{DID: c.did, Op: c.ops[0], LogLen: 0, Now: t0})
	for _, logLen := range []int{0, 2} {
		_, err := s.Append(context.Background(), directory.Append{DID: c.did, Op: c.ops[1], LogLen: logLen, Now: t0})
		if !errors.Is(err, directory.ErrConflict) {
			t.Errorf("Append with LogLen %d on a log of 1: %v, want ErrConflict", logLen, err)
		}
	}
	if recs := mustLog(t, s, c.did); len(recs) != 1 {
		t.Errorf("a refused Append stored something: %d records", len(recs))
	}
	if rec := mustAppend(t, s, directory.Append{DID: c.did, Op: c.ops[1], LogLen: 1, Now: t0}); rec.Seq != 2 {
		t.Errorf("seq after refused appends = %d, want 2", rec.Seq)
	}
}

func testNullify(t *testing.T, s directory.Store) {
	c := newChain(t, 3)
	other := newChain(t, 1)
	mustAppend(t, s, directory.Append{DID: c.did, Op: c.ops[0], LogLen: 0, Now: t0})
	mustAppend(t, s, directory.Append{DID: other.did, Op: other.ops[0], LogLen: 0, Now: t0})
	mustAppend(t, s, directory.Append{DID: c.did, Op: c.ops[1], LogLen: 1, Now: t0})
	mustAppend(t, s, directory.Append{DID: c.did, Op: c.ops[2], LogLen: 2, Now: t0, Nullify: []cid.Cid{c.ops[1].CID()}})
	recs := mustLog(t, s, c.did)
	want := []bool{false, true, false}
	for i, rec := range recs {
		if rec.Nullified != want[i] {
			t.Errorf("record %d nullified=%t, want %t", i, rec.Nullified, want[i])
		}
	}
	exp, err := s.Export(context.Background(), directory.Cursor{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(exp) != 4 || !exp[2].Nullified || exp[1].Nullified {
		t.Errorf("export does not show the nullified flag: %d records", len(exp))
	}
	if recs := mustLog(t, s, other.did); len(recs) != 1 || recs[0].Nullified {
		t.Errorf("nullifying touched another DID: %+v", recs)
	}
}

func testNullifyUnknown(t *testing.T, s directory.Store) {
	c := newChain(t, 2)
	other := newChain(t, 1)
	mustAppend(t, s, directory.Append{DID: other.did, Op: other.ops[0], LogLen: 0, Now: t0})
	mustAppend(t, s, directory.Append{DID: c.did, Op: c.ops[0], LogLen: 0, Now: t0})
	_, err := s.Append(context.Background(), directory.Append{DID: c.did, Op: c.ops[1], LogLen: 1, Now: t0, Nullify: []cid.Cid{other.ops[0].CID()}})
	if err == nil {
		t.Fatal("Append nullifying another DID's record succeeded")
	}
	if recs := mustLog(t, s, c.did); len(recs) != 1 {
		t.Errorf("a failed Append stored something: %d records", len(recs))
	}
	if recs := mustLog(t, s, other.did); recs[0].Nullified {
		t.Error("a failed Append nullified another DID's record")
	}
}

func testCreatedAt(t *testing.T, s directory.Store) {
	c := newChain(t, 4)
	// Same instant twice, then a clock that goes backwards, then sub-ms.
	nows := []time.Time{t0, t0, t0.Add(-time.Hour), t0.Add(1500 * time.Microsecond)}
	want := []time.Time{t0, t0.Add(time.Millisecond), t0.Add(2 * time.Millisecond), t0.Add(3 * time.Millisecond)}
	for i, op := range c.ops {
		rec := mustAppend(t, s, directory.Append{DID: c.did, Op: op, LogLen: i, Now: nows[i]})
		if !rec.CreatedAt.Equal(want[i]) {
			t.Errorf("append %d at %s: createdAt %s, want %s", i, nows[i], rec.CreatedAt, want[i])
		}
	}
	for i, rec := range mustLog(t, s, c.did) {
		if !rec.CreatedAt.Equal(want[i]) {
			t.Errorf("record %d read back: createdAt %s, want %s", i, rec.CreatedAt, want[i])
		}
	}
}

// fill appends n DIDs with one operation each, one second apart.
func fill(t *testing.T, s directory.Store, n int) []chain {
	var chains []chain
	for i := 0; i < n; i++ {
		c := newChain(t, 1)
		mustAppend(t, s, directory.Append{DID: c.did, Op: c.ops[0], LogLen: 0, Now: t0.Add(time.Duration(i) * time.Second)})
		chains = append(chains, c)
	}
	return chains
}

func testExportBySeq(t *testing.T, s directory.Store) {
	chains := fill(t, s, 7)
	var got []syntax.DID
	after := int64(0)
	for pages := 0; ; pages++ {
		recs, err := s.Export(context.Background(), directory.Cursor{Seq: after}, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			if pages != 3 {
				t.Errorf("%d pages of 3 for 7 records, want 3", pages)
			}
			break
		}
		for _, r := range recs {
			if r.Seq != after+1 {
				t.Fatalf("seq %d after %d", r.Seq, after)
			}
			after = r.Seq
			got = append(got, r.DID)
		}
	}
	for i, c := range chains {
		if i >= len(got) || got[i] != c.did {
			t.Fatalf("export order %v, want the append order", got)
		}
	}
	if recs, _ := s.Export(context.Background(), directory.Cursor{Seq: 100}, 3); len(recs) != 0 {
		t.Errorf("export after the last seq returned %d records", len(recs))
	}
}

func testExportByTime(t *testing.T, s directory.Store) {
	chains := fill(t, s, 5)
	// Everything after the zero time; then after each record's own time.
	recs, err := s.Export(context.Background(), directory.Cursor{ByTime: true}, 10)
	if err != nil || len(recs) != 5 {
		t.Fatalf("export by time from the start: %d records, %v", len(recs), err)
	}
	for i := range chains {
		after := t0.Add(time.Duration(i) * time.Second)
		recs, err := s.Export(context.Background(), directory.Cursor{Time: after, ByTime: true}, 2)
		if err != nil {
			t.Fatal(err)
		}
		wantN := min(2, len(chains)-i-1)
		if len(recs) != wantN {
			t.Fatalf("after %s: %d records, want %d", after, len(recs), wantN)
		}
		for j, r := range recs {
			if r.DID != chains[i+1+j].did || !r.CreatedAt.After(after) {
				t.Errorf("after %s: record %d is %s at %s", after, j, r.DID, r.CreatedAt)
			}
		}
	}
	// Half a millisecond before a record's time includes it.
	recs, _ = s.Export(context.Background(), directory.Cursor{Time: t0.Add(2*time.Second - 500*time.Microsecond), ByTime: true}, 1)
	if len(recs) != 1 || recs[0].DID != chains[2].did {
		t.Errorf("sub-millisecond cursor: got %v", recs)
	}
	// A time before 1970 starts from the beginning.
	recs, _ = s.Export(context.Background(), directory.Cursor{Time: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), ByTime: true}, 1)
	if len(recs) != 1 || recs[0].DID != chains[0].did {
		t.Errorf("cursor before 1970: got %v", recs)
	}
}

func testCopies(t *testing.T, s directory.Store) {
	c := newChain(t, 1)
	mustAppend(t, s, directory.Append{DID: c.did, Op: c.ops[0], LogLen: 0, Now: t0})
	recs := mustLog(t, s, c.did)
	recs[0].Op.(*plc.Operation).AlsoKnownAs[0] = "at://mallory.test"
	again := mustLog(t, s, c.did)
	if again[0].Op.(*plc.Operation).AlsoKnownAs[0] != "at://alice.test" {
		t.Error("modifying a returned operation changed the store")
	}
	// The caller's operation is not kept by reference either.
	c.ops[0].(*plc.Operation).AlsoKnownAs[0] = "at://eve.test"
	again = mustLog(t, s, c.did)
	if again[0].Op.(*plc.Operation).AlsoKnownAs[0] != "at://alice.test" {
		t.Error("modifying the appended operation changed the store")
	}
}

func testConcurrent(t *testing.T, s directory.Store) {
	const n = 8
	chains := make([]chain, n)
	for i := range chains {
		chains[i] = newChain(t, 3)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, c := range chains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, op := range c.ops {
				if _, err := s.Append(context.Background(), directory.Append{DID: c.did, Op: op, LogLen: i, Now: t0}); err != nil {
					errs <- err
					return
				}
				if _, err := s.Log(context.Background(), c.did); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	recs, err := s.Export(context.Background(), directory.Cursor{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != n*3 {
		t.Fatalf("%d records exported, want %d", len(recs), n*3)
	}
	for i, r := range recs {
		if r.Seq != int64(i+1) {
			t.Fatalf("record %d has seq %d", i, r.Seq)
		}
		if i > 0 && !r.CreatedAt.After(recs[i-1].CreatedAt) {
			t.Fatalf("createdAt not strictly increasing at seq %d", r.Seq)
		}
	}
}
