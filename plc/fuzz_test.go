package plc_test

import (
	"bytes"
	"testing"

	"github.com/reservoir-atproto/reservoir/plc"
)

// FuzzParseOp: whatever ParseOp accepts writes back to JSON that parses to
// the same operation, decodes from its own DAG-CBOR, and goes through
// CheckConstraints and Validate without panicking.
func FuzzParseOp(f *testing.F) {
	for _, tc := range malformedOps {
		f.Add([]byte(tc.json))
	}
	k := newK256(f)
	g, did := genesis(f, k, k)
	log := []plc.LogEntry{entry(did, g, t0)}
	for _, op := range append(sampleOps(f), g, update(f, g, k, plc.SetHandle("x.test"))) {
		js, _ := op.MarshalJSON()
		f.Add(js)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		op, err := plc.ParseOp(data)
		if err != nil {
			return
		}
		js, err := op.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		again, err := plc.ParseOp(js)
		if err != nil {
			t.Fatalf("our JSON of an accepted operation does not parse: %v\n%s", err, js)
		}
		if !bytes.Equal(again.SignedCBOR(), op.SignedCBOR()) {
			t.Fatal("JSON round trip changed the operation")
		}
		fromCBOR, err := plc.DecodeOp(op.SignedCBOR())
		if err != nil || !bytes.Equal(fromCBOR.SignedCBOR(), op.SignedCBOR()) {
			t.Fatalf("DAG-CBOR round trip: %v", err)
		}
		_ = plc.CheckConstraints(op)
		_, _ = plc.Validate(did, log, op, t0)
		_, _ = plc.Validate(did, nil, op, t0)
	})
}

// FuzzDecodeOp: DecodeOp accepts only the canonical encoding, so whatever
// it accepts encodes back to exactly the input.
func FuzzDecodeOp(f *testing.F) {
	for _, op := range sampleOps(f) {
		f.Add(op.SignedCBOR())
		f.Add(op.UnsignedCBOR())
	}
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		op, err := plc.DecodeOp(data)
		if err != nil {
			return
		}
		if !bytes.Equal(op.SignedCBOR(), data) {
			t.Fatalf("DecodeOp accepted a non-canonical encoding:\n%x\n%x", data, op.SignedCBOR())
		}
	})
}
