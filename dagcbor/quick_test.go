package dagcbor

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func TestRoundTripBasic(t *testing.T) {
	v := map[string]any{"e": []any{}, "l": nil}
	b, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(b) != "a261658061"+"6cf6" {
		t.Fatalf("got %x", b)
	}
	if SumCBOR(b).String() != "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm" {
		t.Fatal(SumCBOR(b))
	}
	back, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := Marshal(back)
	if !bytes.Equal(b, b2) {
		t.Fatal("mismatch")
	}
}

func TestRejects(t *testing.T) {
	cases := map[string]error{
		"1817":               ErrNonMinimal,
		"a2616c f6 6165 80":  ErrKeyOrder,
		"9f ff":              ErrIndefinite,
		"f93c00":             ErrFloat,
		"f7":                 ErrUndefined,
		"c1 00":              ErrTag,
		"01 02":              ErrTrailing,
		"a2 6161 01 6161 02": ErrDuplicateKey,
	}
	for h, want := range cases {
		b, _ := hex.DecodeString(string(bytes.ReplaceAll([]byte(h), []byte(" "), nil)))
		_, err := Unmarshal(b)
		if !errors.Is(err, want) {
			t.Errorf("%s: got %v want %v", h, err, want)
		}
	}
}
