package dagcbor

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

// Why the decoder is hand-written: a general CBOR library, even configured
// as strictly as it allows, decodes non-canonical encodings of a value
// without complaint. Two different blocks then decode to the same record,
// with two different CIDs, and a signature over one does not cover the
// other. fxamacker/cbor (the strictest Go CBOR library) is the comparison;
// indigo's cbor-gen checks even less.

// fxStrict returns fxamacker/cbor's strictest decoding mode; tags decides
// whether tags (needed for CID links) are allowed at all.
func fxStrict(tb testing.TB, tags cbor.TagsMode) cbor.DecMode {
	undefinedRejected, err := cbor.NewSimpleValueRegistryFromDefaults(cbor.WithRejectedSimpleValue(23))
	if err != nil {
		tb.Fatal(err)
	}
	dm, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           tags,
		IntDec:           cbor.IntDecConvertSignedOrFail,
		MapKeyByteString: cbor.MapKeyByteStringForbidden,
		UTF8:             cbor.UTF8RejectInvalid,
		NaN:              cbor.NaNDecodeForbidden,
		Inf:              cbor.InfDecodeForbidden,
		BignumTag:        cbor.BignumTagForbidden,
		SimpleValues:     undefinedRejected,
		DefaultMapType:   reflect.TypeOf(map[string]any(nil)),
		MaxNestedLevels:  MaxDepth + 1,
		MaxArrayElements: MaxContainerLen,
		MaxMapPairs:      MaxContainerLen,
	}.DecMode()
	if err != nil {
		tb.Fatal(err)
	}
	return dm
}

func TestGeneralLibraryAcceptsNonCanonical(t *testing.T) {
	fx := fxStrict(t, cbor.TagsForbidden)
	cases := []struct {
		name      string
		canonical string
		other     string // the same value, not canonical
		rule      error  // what our decoder says about other
	}{
		{"uint 23 in 1+1 bytes", "17", "18 17", ErrNonMinimal},
		{"uint 255 in 1+2 bytes", "18 ff", "19 00ff", ErrNonMinimal},
		{"uint 65535 in 1+4 bytes", "19 ffff", "1a 0000ffff", ErrNonMinimal},
		{"uint 2^32-1 in 1+8 bytes", "1a ffffffff", "1b 00000000ffffffff", ErrNonMinimal},
		{"negint -1 in 1+1 bytes", "20", "38 00", ErrNonMinimal},
		{"text length in 1+1 bytes", "61 61", "78 01 61", ErrNonMinimal},
		{"keys in bytewise order reversed", "a2 6161 01 6162 02", "a2 6162 02 6161 01", ErrKeyOrder},
		{"keys in RFC 8949 order", "a2 6162 02 626161 01", "a2 626161 01 6162 02", ErrKeyOrder},
	}
	for _, c := range cases {
		canonical, other := testutil.Unhex(t, c.canonical), testutil.Unhex(t, c.other)
		var want, got any
		if err := fx.Unmarshal(canonical, &want); err != nil {
			t.Fatalf("%s: fxamacker on the canonical form: %v", c.name, err)
		}
		if err := fx.Unmarshal(other, &got); err != nil {
			t.Errorf("%s: fxamacker now rejects the non-canonical form (%v): revisit the package doc", c.name, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: fxamacker decodes the forms differently: %#v, %#v", c.name, got, want)
		}
		if SumCBOR(canonical) == SumCBOR(other) {
			t.Fatalf("%s: the two forms have the same CID", c.name)
		}
		// Ours: the canonical form decodes to the same value, the other is
		// refused for the rule it breaks.
		v, err := Unmarshal(canonical)
		if err != nil {
			t.Errorf("%s: Unmarshal canonical: %v", c.name, err)
		}
		if _, err := Unmarshal(other); !errors.Is(err, c.rule) {
			t.Errorf("%s: Unmarshal non-canonical: %v, want %v", c.name, err, c.rule)
		}
		if b, err := Marshal(v); err != nil || !bytes.Equal(b, canonical) {
			t.Errorf("%s: Marshal = %x, %v", c.name, b, err)
		}
	}

	// The options are really strict where fxamacker can be: these are
	// refused by both decoders, so the comparison above is fair.
	for _, in := range []string{
		"a2 6161 01 6161 02",  // duplicate key
		"9f 00 ff",            // indefinite array
		"62 c328",             // invalid UTF-8
		"c1 00",               // a tag
		"f7",                  // undefined
		"1b 8000000000000000", // beyond int64
	} {
		var v any
		if err := fx.Unmarshal(testutil.Unhex(t, in), &v); err == nil {
			t.Errorf("%s: fxamacker strict mode accepts it", in)
		}
		if _, err := Unmarshal(testutil.Unhex(t, in)); err == nil {
			t.Errorf("%s: Unmarshal accepts it", in)
		}
	}
}

// BenchmarkDecodeRecord compares Unmarshal with fxamacker/cbor's strict mode
// decoding into any, on a typical post record and MST node.
func BenchmarkDecodeRecord(b *testing.B) {
	fx := fxStrict(b, cbor.TagsAllowed)
	for _, name := range []string{"post", "mst-node"} {
		data := benchInputs(b)[name]
		var v any
		if err := fx.Unmarshal(data, &v); err != nil {
			b.Fatalf("fxamacker on %s: %v", name, err)
		}
		b.Run(name+"/dagcbor", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := Unmarshal(data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/fxamacker-strict", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				var v any
				if err := fx.Unmarshal(data, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
