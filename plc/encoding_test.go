package plc_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multibase"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/plc"
)

// sampleOps returns one signed operation of each type.
func sampleOps(t testing.TB) []plc.Op {
	k, p := newK256(t), newP256(t)
	g, _ := genesis(t, k, p, k)
	g.AlsoKnownAs = append(g.AlsoKnownAs, "https://example.com/a\"quote\\and\nnewline", "at://ünï.test")
	g.Services["zz_other"] = plc.Service{Type: "Other", Endpoint: "http://localhost:8080/x"}
	g.VerificationMethods["a"] = p.did()
	sign(t, g, k)
	legacy := sign(t, &plc.LegacyCreate{SigningKey: k.did(), RecoveryKey: p.did(), Handle: "bob.test", Service: "https://pds.test"}, k)
	return []plc.Op{g, update(t, g, k, plc.SetHandle("carol.test")), sign(t, plc.NewTombstone(g), p), legacy}
}

// Our hand-written encoders must produce what the generic canonical
// encoder produces from the JSON form: same keys, same canonical order.
func TestEncodingMatchesGenericEncoder(t *testing.T) {
	for _, op := range sampleOps(t) {
		js, err := op.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		model, err := dagcbor.FromJSON(js)
		if err != nil {
			t.Fatalf("%s: our JSON is not data-model JSON: %v\n%s", op.Type(), err, js)
		}
		want, err := dagcbor.Marshal(model)
		if err != nil {
			t.Fatal(err)
		}
		if got := op.SignedCBOR(); !bytes.Equal(got, want) {
			t.Errorf("%s: SignedCBOR differs from the generic encoding of its JSON", op.Type())
		}
		if !op.CID().Equals(dagcbor.SumCBOR(want)) {
			t.Errorf("%s: CID is not the CID of the encoding", op.Type())
		}
		// Unsigned = the same map without "sig".
		delete(model.(map[string]any), "sig")
		want, _ = dagcbor.Marshal(model)
		if !bytes.Equal(op.UnsignedCBOR(), want) {
			t.Errorf("%s: UnsignedCBOR is not the encoding without sig", op.Type())
		}
	}
}

func TestRoundTrips(t *testing.T) {
	for _, op := range sampleOps(t) {
		js, _ := op.MarshalJSON()
		fromJSON, err := plc.ParseOp(js)
		if err != nil {
			t.Fatalf("%s: ParseOp of our own JSON: %v\n%s", op.Type(), err, js)
		}
		fromCBOR, err := plc.DecodeOp(op.SignedCBOR())
		if err != nil {
			t.Fatalf("%s: DecodeOp: %v", op.Type(), err)
		}
		for _, got := range []plc.Op{fromJSON, fromCBOR} {
			if !bytes.Equal(got.SignedCBOR(), op.SignedCBOR()) || got.Type() != op.Type() {
				t.Errorf("%s: round trip changed the operation", op.Type())
			}
		}
		js2, _ := fromJSON.MarshalJSON()
		if !bytes.Equal(js, js2) {
			t.Errorf("%s: JSON round trip changed the text:\n%s\n%s", op.Type(), js, js2)
		}
	}
}

// The JSON form puts keys in canonical order, as plc.directory serves
// them, and writes prev null for a genesis.
func TestJSONKeyOrder(t *testing.T) {
	g := &plc.Operation{
		RotationKeys:        []string{"did:key:r"},
		VerificationMethods: map[string]string{"bb": "did:key:b", "a": "did:key:a"},
		AlsoKnownAs:         []string{"at://x.test"},
		Services:            map[string]plc.Service{"s": {Type: "T", Endpoint: "https://e"}},
		Sig:                 "SIG",
	}
	want := `{"sig":"SIG","prev":null,"type":"plc_operation","services":{"s":{"type":"T","endpoint":"https://e"}},"alsoKnownAs":["at://x.test"],"rotationKeys":["did:key:r"],"verificationMethods":{"a":"did:key:a","bb":"did:key:b"}}`
	if got, _ := g.MarshalJSON(); string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	ts := &plc.Tombstone{Prev: "bafyreigcxay6ucqlwowfpu35alyxqtv3c4vsj7gmdtmnidsnqs6nblyarq", Sig: "S"}
	if got, _ := ts.MarshalJSON(); string(got) != `{"sig":"S","prev":"bafyreigcxay6ucqlwowfpu35alyxqtv3c4vsj7gmdtmnidsnqs6nblyarq","type":"plc_tombstone"}` {
		t.Errorf("tombstone JSON %s", got)
	}
	// Control characters are escaped, '<' is not (JSON.stringify's behaviour).
	g.AlsoKnownAs = []string{"a<b\x01"}
	if got, _ := g.MarshalJSON(); !strings.Contains(string(got), `"a<b\u0001"`) {
		t.Errorf("escaping: %s", got)
	}
}

const validPrev = "bafyreigcxay6ucqlwowfpu35alyxqtv3c4vsj7gmdtmnidsnqs6nblyarq"

// malformedOps are JSON inputs ParseOp must refuse, seeds of FuzzParseOp.
var malformedOps = []struct{ name, json string }{
	{"not an object", `["plc_operation"]`},
	{"not JSON", `{"type":`},
	{"no type", `{"prev":null,"sig":"x"}`},
	{"unknown type", `{"type":"plc_nothing","prev":null,"sig":"x"}`},
	{"type not a string", `{"type":1}`},
	{"missing field", `{"type":"plc_operation","rotationKeys":[],"verificationMethods":{},"alsoKnownAs":[],"prev":null,"sig":"x"}`},
	{"unknown field", `{"type":"plc_tombstone","prev":"` + validPrev + `","sig":"x","extra":1}`},
	{"rotationKeys not an array", `{"type":"plc_operation","rotationKeys":"did:key:z","verificationMethods":{},"alsoKnownAs":[],"services":{},"prev":null,"sig":"x"}`},
	{"alsoKnownAs with a number", `{"type":"plc_operation","rotationKeys":[],"verificationMethods":{},"alsoKnownAs":[1],"services":{},"prev":null,"sig":"x"}`},
	{"verification method not a string", `{"type":"plc_operation","rotationKeys":[],"verificationMethods":{"atproto":null},"alsoKnownAs":[],"services":{},"prev":null,"sig":"x"}`},
	{"service without endpoint", `{"type":"plc_operation","rotationKeys":[],"verificationMethods":{},"alsoKnownAs":[],"services":{"s":{"type":"T"}},"prev":null,"sig":"x"}`},
	{"service with extra field", `{"type":"plc_operation","rotationKeys":[],"verificationMethods":{},"alsoKnownAs":[],"services":{"s":{"type":"T","endpoint":"https://e","x":"y"}},"prev":null,"sig":"x"}`},
	{"prev not a CID", `{"type":"plc_tombstone","prev":"not-a-cid","sig":"x"}`},
	{"prev a raw CID", `{"type":"plc_tombstone","prev":"bafkreigcxay6ucqlwowfpu35alyxqtv3c4vsj7gmdtmnidsnqs6nblyarq","sig":"x"}`},
	{"prev CIDv0", `{"type":"plc_tombstone","prev":"QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n","sig":"x"}`},
	{"prev a number", `{"type":"plc_tombstone","prev":5,"sig":"x"}`},
	{"tombstone prev null", `{"type":"plc_tombstone","prev":null,"sig":"x"}`},
	{"legacy prev not null", `{"type":"create","signingKey":"a","recoveryKey":"b","handle":"c","service":"d","prev":"` + validPrev + `","sig":"x"}`},
	{"empty sig", `{"type":"plc_tombstone","prev":"` + validPrev + `","sig":""}`},
	{"sig missing", `{"type":"plc_tombstone","prev":"` + validPrev + `"}`},
	{"sig not a string", `{"type":"plc_tombstone","prev":"` + validPrev + `","sig":["x"]}`},
	{"duplicate key", `{"type":"plc_tombstone","prev":"` + validPrev + `","sig":"x","sig":"y"}`},
	{"float", `{"type":"plc_operation","rotationKeys":[1.5],"verificationMethods":{},"alsoKnownAs":[],"services":{},"prev":null,"sig":"x"}`},
}

func TestParseOpRejectsMalformed(t *testing.T) {
	for _, tc := range malformedOps {
		t.Run(tc.name, func(t *testing.T) {
			_, err := plc.ParseOp([]byte(tc.json))
			wantKind(t, err, plc.ErrMalformed)
		})
	}
}

// The same CID in another multibase is refused: prev must be the one
// canonical string, or the same operation would have two encodings.
func TestPrevMustBeCanonicalString(t *testing.T) {
	c, err := cid.Decode(validPrev)
	if err != nil {
		t.Fatal(err)
	}
	b58, err := c.StringOfBase(multibase.Base58BTC)
	if err != nil {
		t.Fatal(err)
	}
	_, err = plc.ParseOp([]byte(`{"type":"plc_tombstone","prev":"` + b58 + `","sig":"x"}`))
	wantKind(t, err, plc.ErrMalformed)
	if _, err := plc.ParseOp([]byte(`{"type":"plc_tombstone","prev":"` + validPrev + `","sig":"x"}`)); err != nil {
		t.Fatalf("canonical prev refused: %v", err)
	}
}

func TestDecodeOpRejectsNonCanonical(t *testing.T) {
	op := sampleOps(t)[2] // a tombstone: {sig, prev, type}
	good := op.SignedCBOR()
	if _, err := plc.DecodeOp(good); err != nil {
		t.Fatal(err)
	}
	// The same map with keys out of canonical order ("type" before "prev").
	m := map[string]string{"sig": op.Signature(), "prev": op.PrevCID(), "type": "plc_tombstone"}
	b := dagcbor.AppendMapHeader(nil, 3)
	for _, k := range []string{"sig", "type", "prev"} {
		b = dagcbor.AppendText(dagcbor.AppendText(b, k), m[k])
	}
	if _, err := plc.DecodeOp(b); !errors.Is(err, plc.ErrMalformed) {
		t.Errorf("keys out of order: %v", err)
	}
	if _, err := plc.DecodeOp(append(good, 0)); !errors.Is(err, plc.ErrMalformed) {
		t.Errorf("trailing byte: %v", err)
	}
}
