package dagcbor

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

// strictCases holds one hand-written input per rule of the strict decoder
// (sync-spec §6.1) and the rule it breaks. FuzzUnmarshal is seeded with them.
var strictCases = []struct {
	name string
	hex  string
	rule error
}{
	// Map keys: text only, sorted length-first then bytewise, no duplicates.
	{"keys out of bytewise order", "a2 6162 01 6161 02", ErrKeyOrder},                 // {"b":1,"a":2}
	{"keys in RFC 8949 order, not length-first", "a2 626161 01 6162 02", ErrKeyOrder}, // {"aa":1,"b":2}
	{"duplicate key", "a2 6161 01 6161 02", ErrDuplicateKey},
	{"duplicate empty key", "a2 60 01 60 02", ErrDuplicateKey},
	{"integer key", "a1 01 02", ErrMapKeyType},
	{"byte-string key", "a1 4161 02", ErrMapKeyType},
	{"null key", "a1 f6 02", ErrMapKeyType},
	{"array key", "a1 80 02", ErrMapKeyType},

	// Integers in their shortest form, at each width.
	{"uint 23 in 1+1 bytes", "18 17", ErrNonMinimal},
	{"uint 255 in 1+2 bytes", "19 00ff", ErrNonMinimal},
	{"uint 65535 in 1+4 bytes", "1a 0000ffff", ErrNonMinimal},
	{"uint 2^32-1 in 1+8 bytes", "1b 00000000ffffffff", ErrNonMinimal},
	{"uint 0 in 1+8 bytes", "1b 0000000000000000", ErrNonMinimal},
	{"negint -1 in 1+1 bytes", "38 00", ErrNonMinimal},
	{"negint -24 in 1+1 bytes", "38 17", ErrNonMinimal},
	{"negint -256 in 1+2 bytes", "39 00ff", ErrNonMinimal},
	{"negint -65536 in 1+4 bytes", "3a 0000ffff", ErrNonMinimal},
	{"negint -2^32 in 1+8 bytes", "3b 00000000ffffffff", ErrNonMinimal},

	// Lengths in their shortest form.
	{"text length 1 in 1+1 bytes", "78 01 61", ErrNonMinimal},
	{"text length 24 in 1+2 bytes", "79 0018" + strings.Repeat("61", 24), ErrNonMinimal},
	{"bytes length 1 in 1+2 bytes", "59 0001 00", ErrNonMinimal},
	{"bytes length 0 in 1+4 bytes", "5a 00000000", ErrNonMinimal},
	{"array length 1 in 1+1 bytes", "98 01 00", ErrNonMinimal},
	{"array length 0 in 1+8 bytes", "9b 0000000000000000", ErrNonMinimal},
	{"map length 1 in 1+1 bytes", "b8 01 6161 01", ErrNonMinimal},
	{"nested non-minimal int", "a1 6161 81 18 00", ErrNonMinimal},

	// Definite lengths only.
	{"indefinite text", "7f 6161 ff", ErrIndefinite},
	{"indefinite bytes", "5f 4100 ff", ErrIndefinite},
	{"indefinite array", "9f 00 ff", ErrIndefinite},
	{"indefinite map", "bf 6161 00 ff", ErrIndefinite},
	{"stray break", "ff", ErrIndefinite},
	{"break inside array", "82 00 ff", ErrIndefinite},
	{"indefinite tag", "df", ErrIndefinite},

	// No floats at all, of any width or value.
	{"half float 1.0", "f9 3c00", ErrFloat},
	{"single float 1.0", "fa 3f800000", ErrFloat},
	{"double float 1.0", "fb 3ff0000000000000", ErrFloat},
	{"double NaN", "fb 7ff8000000000000", ErrFloat},
	{"half +Inf", "f9 7c00", ErrFloat},
	{"float in a map value", "a1 6161 fb 0000000000000000", ErrFloat},

	// Simple values: only false, true, null.
	{"undefined", "f7", ErrUndefined},
	{"simple 0", "e0", ErrSimple},
	{"simple 19", "f3", ErrSimple},
	{"simple 32 (1-byte form)", "f8 20", ErrSimple},
	{"simple 255", "f8 ff", ErrSimple},
	{"float as map key", "a1 f93c00 01", ErrFloat},

	// Reserved additional information 28-30.
	{"reserved uint", "1c", ErrReserved},
	{"reserved text length", "7d", ErrReserved},
	{"reserved major 7", "fc", ErrReserved},

	// Tags: only 42, whose content is 0x00 + a binary CID.
	{"tag 0 (datetime)", "c0 60", ErrTag},
	{"tag 1 (epoch)", "c1 00", ErrTag},
	{"tag 2 (bignum)", "c2 4101", ErrTag},
	{"tag 43", "d8 2b 40", ErrTag},
	{"tag 42 in 1+2 bytes", "d9 002a 58 25 00 " + cidBin11, ErrNonMinimal},
	{"tag 42 around text", "d8 2a 61 61", ErrCID},
	{"tag 42 around an integer", "d8 2a 01", ErrCID},
	{"tag 42 around a map", "d8 2a a0", ErrCID},
	{"tag 42 without 0x00 prefix", "d8 2a 58 24 " + cidBin11, ErrCIDPrefix},
	{"tag 42 with 0x01 prefix", "d8 2a 58 25 01 " + cidBin11, ErrCIDPrefix},
	{"tag 42 around empty bytes", "d8 2a 40", ErrCIDPrefix},
	{"tag 42 with prefix only", "d8 2a 41 00", ErrCID},
	{"CID with truncated digest", "d8 2a 48 00 01711220 11111111", ErrCID},
	{"CID version 2", "d8 2a 58 25 00 02 711220" + digest11, ErrCID},
	{"CID with a byte after the digest", "d8 2a 58 26 00 " + cidBin11 + " 00", ErrCID},
	{"CID with non-minimal varint codec", "d8 2a 58 26 00 01 f100 1220" + digest11, ErrCID},

	// One item per input.
	{"two integers", "01 02", ErrTrailing},
	{"two nulls", "f6 f6", ErrTrailing},
	{"map then byte", "a0 00", ErrTrailing},

	// Text is UTF-8.
	{"invalid UTF-8 text", "62 c328", ErrUTF8},
	{"UTF-8 surrogate", "63 eda080", ErrUTF8},
	{"overlong UTF-8", "62 c080", ErrUTF8},
	{"invalid UTF-8 key", "a1 62 c328 01", ErrUTF8},

	// Integers fit in int64.
	{"uint 2^63", "1b 8000000000000000", ErrIntRange},
	{"uint 2^64-1", "1b ffffffffffffffff", ErrIntRange},
	{"negint -2^63-1", "3b 8000000000000000", ErrIntRange},
	{"negint -2^64", "3b ffffffffffffffff", ErrIntRange},

	// Nesting and sizes.
	{"65 nested arrays around 0", strings.Repeat("81", MaxDepth+1) + "00", ErrDepth},
	{"array claiming 65536 elements", "9a 00010000 00", ErrTruncated},
	{"map claiming 24 entries", "b8 18 6161 01", ErrTruncated},
	{"array claiming 2^32 elements", "9b 0000000100000000", ErrContainerSize},
	{"text claiming 2^32-1 bytes", "7a ffffffff 61", ErrTruncated},
	{"bytes claiming 2^63 bytes", "5b 8000000000000000 00", ErrTruncated},
	{"empty input", "", ErrTruncated},
	{"array missing its element", "81", ErrTruncated},
	{"map missing a value", "a1 6161", ErrTruncated},
}

func TestStrictDecoderRejects(t *testing.T) {
	for _, c := range strictCases {
		in := testutil.Unhex(t, c.hex)
		_, err := Unmarshal(in)
		if !errors.Is(err, c.rule) {
			t.Errorf("%s (%x): Unmarshal error %v, want %v", c.name, in, err, c.rule)
		}
		var de *DecodeError
		if err != nil && !errors.As(err, &de) {
			t.Errorf("%s: error %T is not a *DecodeError", c.name, err)
		}
		// Validate (Skip) applies the same rules.
		if err := Validate(in); !errors.Is(err, c.rule) {
			t.Errorf("%s: Validate error %v, want %v", c.name, err, c.rule)
		}
	}
}

// The rules are checked at the right place: a DecodeError reports the offset
// of the offending item.
func TestDecodeErrorOffset(t *testing.T) {
	cases := []struct {
		hex    string
		offset int
	}{
		{"82 00 18 00", 2},         // second element non-minimal
		{"a2 6161 01 6161 02", 4},  // the duplicate key
		{"a1 6161 83 01 02 f7", 6}, // undefined inside the array
		{"01 02", 1},               // trailing byte
		{"a1 6161 d8 2b 40", 3},    // the tag
		{"82 62 6161 62 c328", 4},  // the invalid text
		{"a1 6161 81 d8 2a 40", 4}, // the CID without prefix
		{"83 01 02 fb 0000000000000000", 3},
	}
	for _, c := range cases {
		_, err := Unmarshal(testutil.Unhex(t, c.hex))
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%s: error %v is not a *DecodeError", c.hex, err)
			continue
		}
		if de.Offset != c.offset {
			t.Errorf("%s: offset %d, want %d (%v)", c.hex, de.Offset, c.offset, err)
		}
	}
}

// Limits that need inputs too large to write by hand.
func TestLimits(t *testing.T) {
	// MaxContainerLen elements decode; one more does not.
	ok := append(AppendArrayHeader(nil, MaxContainerLen), make([]byte, MaxContainerLen)...)
	if v, err := Unmarshal(ok); err != nil || len(v.([]any)) != MaxContainerLen {
		t.Errorf("array of MaxContainerLen: %v", err)
	}
	tooMany := append(AppendArrayHeader(nil, MaxContainerLen+1), make([]byte, MaxContainerLen+1)...)
	if _, err := Unmarshal(tooMany); !errors.Is(err, ErrContainerSize) {
		t.Errorf("array of MaxContainerLen+1: %v, want ErrContainerSize", err)
	}

	// Keys up to MaxKeyLen bytes.
	key := strings.Repeat("k", MaxKeyLen)
	in := AppendNull(AppendText(AppendMapHeader(nil, 1), key))
	if _, err := Unmarshal(in); err != nil {
		t.Errorf("key of MaxKeyLen: %v", err)
	}
	in = AppendNull(AppendText(AppendMapHeader(nil, 1), key+"k"))
	if _, err := Unmarshal(in); !errors.Is(err, ErrKeySize) {
		t.Errorf("key of MaxKeyLen+1: %v, want ErrKeySize", err)
	}

	// CIDs up to MaxCIDLen bytes: an identity-hash CID of the right size.
	identityCID := func(n int) []byte { // n = binary CID length
		digest := n - 4
		b := []byte{0x01, 0x55, 0x00, byte(digest)}
		return append(b, bytes.Repeat([]byte{7}, digest)...)
	}
	for _, c := range []struct {
		n    int
		rule error
	}{{MaxCIDLen, nil}, {MaxCIDLen + 1, ErrCID}} {
		bin := identityCID(c.n)
		in := AppendBytes([]byte{0xd8, 42}, append([]byte{0}, bin...))
		_, err := Unmarshal(in)
		if !errors.Is(err, c.rule) && !(c.rule == nil && err == nil) {
			t.Errorf("CID of %d bytes: %v, want %v", c.n, err, c.rule)
		}
	}

	// Nesting: MaxDepth+1 levels of items decode (the top level is 0).
	deep := strings.Repeat("81", MaxDepth) + "00"
	if _, err := Unmarshal(testutil.Unhex(t, deep)); err != nil {
		t.Errorf("%d nested arrays: %v", MaxDepth, err)
	}
	deepMaps := strings.Repeat("a1 6161", MaxDepth+1) + "00"
	if _, err := Unmarshal(testutil.Unhex(t, deepMaps)); !errors.Is(err, ErrDepth) {
		t.Errorf("%d nested maps: %v, want ErrDepth", MaxDepth+1, err)
	}
}

// Every strict prefix of a valid nested item is truncated input, never a
// panic or another error.
func TestTruncationAtEveryOffset(t *testing.T) {
	full := testutil.Unhex(t, "a6"+
		"61 61 1a 00010000"+ // a: 65536
		"61 62 3b 7fffffffffffffff"+ // b: MinInt64
		"61 63 83 f5 f4 f6"+ // c: [true, false, null]
		"61 64 "+cidTag11+ // d: CID
		"61 65 a1 61 66 44 01020304"+ // e: {f: bytes}
		"62 6767 78 18 "+strings.Repeat("7a", 24)) // gg: 24-byte text
	if _, err := Unmarshal(full); err != nil {
		t.Fatalf("the full item must decode: %v", err)
	}
	for i := range full {
		if _, err := Unmarshal(full[:i]); !errors.Is(err, ErrTruncated) {
			t.Errorf("prefix of %d bytes: %v, want ErrTruncated", i, err)
		}
		if err := Validate(full[:i]); !errors.Is(err, ErrTruncated) {
			t.Errorf("Validate prefix of %d bytes: %v, want ErrTruncated", i, err)
		}
	}
}

// canonicalCases pairs values with their canonical encoding, written by hand
// from RFC 8949 §3 and the DAG-CBOR rules; they decode back to the same value.
var canonicalCases = []struct {
	name string
	v    any
	hex  string
}{
	{"0", int64(0), "00"},
	{"23", int64(23), "17"},
	{"24", int64(24), "18 18"},
	{"255", int64(255), "18 ff"},
	{"256", int64(256), "19 0100"},
	{"65535", int64(65535), "19 ffff"},
	{"65536", int64(65536), "1a 00010000"},
	{"2^32-1", int64(math.MaxUint32), "1a ffffffff"},
	{"2^32", int64(math.MaxUint32 + 1), "1b 0000000100000000"},
	{"MaxInt64", int64(math.MaxInt64), "1b 7fffffffffffffff"},
	{"-1", int64(-1), "20"},
	{"-24", int64(-24), "37"},
	{"-25", int64(-25), "38 18"},
	{"-256", int64(-256), "38 ff"},
	{"-257", int64(-257), "39 0100"},
	{"-65536", int64(-65536), "39 ffff"},
	{"-65537", int64(-65537), "3a 00010000"},
	{"-2^32", int64(-(math.MaxUint32 + 1)), "3a ffffffff"},
	{"-2^32-1", int64(-(math.MaxUint32 + 2)), "3b 0000000100000000"},
	{"MinInt64", int64(math.MinInt64), "3b 7fffffffffffffff"},
	{"false", false, "f4"},
	{"true", true, "f5"},
	{"null", nil, "f6"},
	{"empty text", "", "60"},
	{"text", "hello", "65 68656c6c6f"},
	{"non-ASCII text", "ü", "62 c3bc"},
	{"text of 24 bytes", strings.Repeat("a", 24), "78 18" + strings.Repeat("61", 24)},
	{"empty bytes", []byte{}, "40"},
	{"bytes", []byte{1, 2, 3}, "43 010203"},
	{"empty array", []any{}, "80"},
	{"array of 24", make([]any, 24), "98 18" + strings.Repeat("f6", 24)},
	{"empty map", map[string]any{}, "a0"},
	{"keys length-first", map[string]any{"aa": int64(1), "b": int64(2), "c": int64(3)}, "a3 6162 02 6163 03 626161 01"},
	{"keys bytewise within a length", map[string]any{"b": int64(1), "B": int64(2), "a": int64(3)}, "a3 6142 02 6161 03 6162 01"},
	{"empty key first", map[string]any{"a": nil, "": nil}, "a2 60 f6 6161 f6"},
	{"commit key order", map[string]any{"did": nil, "version": int64(3), "data": nil, "rev": nil, "prev": nil, "sig": nil},
		"a6 63646964 f6 63726576 f6 63736967 f6 6464617461 f6 6470726576 f6 6776657273696f6e 03"},
	{"empty MST node", map[string]any{"e": []any{}, "l": nil}, "a2 6165 80 616c f6"},
	{"nested", map[string]any{"x": []any{map[string]any{"y": []byte{0xff}}}}, "a1 6178 81 a1 6179 41ff"},
}

func TestCanonicalEncoding(t *testing.T) {
	for _, c := range canonicalCases {
		want := testutil.Unhex(t, c.hex)
		got, err := Marshal(c.v)
		if err != nil {
			t.Errorf("%s: Marshal: %v", c.name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: Marshal = %x, want %x", c.name, got, want)
		}
		back, err := Unmarshal(want)
		if err != nil {
			t.Errorf("%s: Unmarshal: %v", c.name, err)
			continue
		}
		if !reflect.DeepEqual(back, c.v) {
			t.Errorf("%s: Unmarshal = %#v, want %#v", c.name, back, c.v)
		}
	}
}

func TestCanonicalCID(t *testing.T) {
	c := cid11(t)
	got, err := Marshal(map[string]any{"l": c})
	if err != nil {
		t.Fatal(err)
	}
	if want := testutil.Unhex(t, "a1 616c "+cidTag11); !bytes.Equal(got, want) {
		t.Errorf("Marshal = %x, want %x", got, want)
	}
	// The empty MST node has a well-known CID (sync-spec §4.4).
	node := testutil.Unhex(t, "a2 6165 80 616c f6")
	if got := SumCBOR(node).String(); got != "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm" {
		t.Errorf("empty node CID %s", got)
	}
	// CIDv0 links are read and written back unchanged (tag 42 around 0x00 +
	// the bare multihash).
	v0 := "d8 2a 58 23 00 1220" + digest11
	v, err := Unmarshal(testutil.Unhex(t, v0))
	if err != nil {
		t.Fatal(err)
	}
	if v.(cid.Cid).Version() != 0 {
		t.Errorf("decoded %v, want a CIDv0", v)
	}
	if b, _ := Marshal(v); !bytes.Equal(b, testutil.Unhex(t, v0)) {
		t.Errorf("CIDv0 re-encoded as %x", b)
	}
}

func TestMarshalRejects(t *testing.T) {
	deep := nestedArrays(int64(0), MaxDepth+1)
	cases := []struct {
		name string
		v    any
		rule error
	}{
		{"invalid UTF-8 text", "\xff", ErrUTF8},
		{"invalid UTF-8 key", map[string]any{"\xff": nil}, ErrUTF8},
		{"undefined CID", cid.Undef, ErrCID},
		{"too deep", deep, ErrDepth},
	}
	for _, c := range cases {
		if _, err := Marshal(c.v); !errors.Is(err, c.rule) {
			t.Errorf("%s: %v, want %v", c.name, err, c.rule)
		}
	}
	for _, v := range []any{1.5, float32(1), uint64(1), map[string]string{}, []int{}, struct{}{}} {
		if _, err := Marshal(v); err == nil {
			t.Errorf("Marshal(%T) succeeded", v)
		}
	}
}

// The Decoder reads fixed shapes item by item, as the commit and MST codecs do.
func TestDecoderFixedShape(t *testing.T) {
	// {"e": [{"k": h'61', "p": 0, "t": null, "v": CID}], "l": CID}
	in := testutil.Unhex(t, "a2 6165 81 a4 616b 4161 6170 00 6174 f6 6176 "+cidTag11+" 616c "+cidTag11)
	d := NewDecoder(in)
	if k, err := d.Peek(); err != nil || k != KindMap {
		t.Fatalf("Peek = %v, %v", k, err)
	}
	n, err := d.ReadMapHeader()
	if err != nil || n != 2 {
		t.Fatalf("ReadMapHeader = %d, %v", n, err)
	}
	key, err := d.ReadMapKey(nil)
	if err != nil || string(key) != "e" {
		t.Fatalf("key %q, %v", key, err)
	}
	if n, err := d.ReadArrayHeader(); err != nil || n != 1 {
		t.Fatalf("ReadArrayHeader = %d, %v", n, err)
	}
	if n, err := d.ReadMapHeader(); err != nil || n != 4 {
		t.Fatalf("entry header = %d, %v", n, err)
	}
	var prev []byte
	for _, want := range []string{"k", "p", "t", "v"} {
		if prev, err = d.ReadMapKey(prev); err != nil || string(prev) != want {
			t.Fatalf("entry key %q, %v; want %q", prev, err, want)
		}
		switch want {
		case "k":
			if b, err := d.ReadBytes(); err != nil || string(b) != "a" {
				t.Fatalf("k = %q, %v", b, err)
			}
		case "p":
			if p, err := d.ReadUint(); err != nil || p != 0 {
				t.Fatalf("p = %d, %v", p, err)
			}
		case "t":
			if c, err := d.ReadNullableCID(); err != nil || c.Defined() {
				t.Fatalf("t = %v, %v", c, err)
			}
		case "v":
			if c, err := d.ReadNullableCID(); err != nil || !c.Equals(cid11(t)) {
				t.Fatalf("v = %v, %v", c, err)
			}
		}
	}
	if key, err = d.ReadMapKey(key); err != nil || string(key) != "l" {
		t.Fatalf("key %q, %v", key, err)
	}
	if d.Remaining() != 41 {
		t.Errorf("Remaining = %d, want 41", d.Remaining())
	}
	if c, err := d.ReadCID(); err != nil || !c.Equals(cid11(t)) {
		t.Fatalf("l = %v, %v", c, err)
	}
	if err := d.Done(); err != nil || d.Offset() != len(in) {
		t.Errorf("Done = %v at %d of %d", err, d.Offset(), len(in))
	}
}

func TestDecoderTypeErrors(t *testing.T) {
	cases := []struct {
		hex  string
		read func(*Decoder) error
		rule error
	}{
		{"01", func(d *Decoder) error { _, err := d.ReadText(); return err }, ErrType},
		{"20", func(d *Decoder) error { _, err := d.ReadUint(); return err }, ErrType},
		{"60", func(d *Decoder) error { _, err := d.ReadBytes(); return err }, ErrType},
		{"40", func(d *Decoder) error { _, err := d.ReadCID(); return err }, ErrType},
		{"f6", func(d *Decoder) error { _, err := d.ReadBool(); return err }, ErrType},
		{"80", func(d *Decoder) error { _, err := d.ReadMapHeader(); return err }, ErrType},
		{"a0", func(d *Decoder) error { _, err := d.ReadArrayHeader(); return err }, ErrType},
		{"61 61", func(d *Decoder) error { _, err := d.ReadInt(); return err }, ErrType},
		{"f93c00", func(d *Decoder) error { _, err := d.ReadInt(); return err }, ErrFloat},
		{"f7", func(d *Decoder) error { _, err := d.ReadNullableCID(); return err }, ErrUndefined},
		{"", func(d *Decoder) error { _, err := d.ReadNull(); return err }, ErrTruncated},
		{"", func(d *Decoder) error { _, err := d.Peek(); return err }, ErrTruncated},
		{"6161", func(d *Decoder) error { _, err := d.ReadMapKey([]byte("b")); return err }, ErrKeyOrder},
		{"6162", func(d *Decoder) error { _, err := d.ReadMapKey([]byte("b")); return err }, ErrDuplicateKey},
		{"01", func(d *Decoder) error { _, err := d.ReadMapKey(nil); return err }, ErrMapKeyType},
	}
	for _, c := range cases {
		d := NewDecoder(testutil.Unhex(t, c.hex))
		if err := c.read(d); !errors.Is(err, c.rule) {
			t.Errorf("%s: %v, want %v", c.hex, err, c.rule)
		}
	}
	// A failed typed read leaves the decoder where it was, so the caller
	// can read the item as another type.
	d := NewDecoder(testutil.Unhex(t, "20"))
	if _, err := d.ReadUint(); err == nil {
		t.Fatal("ReadUint of -1 succeeded")
	}
	if v, err := d.ReadInt(); err != nil || v != -1 {
		t.Errorf("ReadInt after failed ReadUint = %d, %v", v, err)
	}
	// ReadNull reports false without consuming a non-null item.
	d = NewDecoder(testutil.Unhex(t, "05"))
	if null, err := d.ReadNull(); null || err != nil || d.Offset() != 0 {
		t.Errorf("ReadNull on 5 = %v, %v at %d", null, err, d.Offset())
	}
}

func TestCompareKeys(t *testing.T) {
	// "é" is 2 bytes (c3 a9): after the other 2-byte keys, before "aaa".
	ordered := []string{"", "a", "b", "z", "aa", "ab", "ba", "é", "aaa"}
	for i := range ordered {
		for j := range ordered {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := CompareKeys([]byte(ordered[i]), []byte(ordered[j])); got != want {
				t.Errorf("CompareKeys(%q, %q) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
	shuffled := []string{"aaa", "é", "b", "", "ab", "z", "aa", "a", "ba"}
	SortKeys(shuffled)
	if !reflect.DeepEqual(shuffled, ordered) {
		t.Errorf("SortKeys = %q, want %q", shuffled, ordered)
	}
}

func TestSumRaw(t *testing.T) {
	// The CID of the empty blob: raw codec, sha2-256 of nothing.
	if got := SumRaw(nil).String(); got != "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku" {
		t.Errorf("SumRaw(nil) = %s", got)
	}
	if !IsBlessed(SumRaw(nil), CodecRaw) || IsBlessed(SumRaw(nil), CodecDagCBOR) {
		t.Error("IsBlessed on a raw CID")
	}
	if !IsBlessed(cid11(t), CodecDagCBOR) {
		t.Error("IsBlessed on a dag-cbor CID")
	}
	v0, err := cid.Cast(testutil.Unhex(t, "1220"+digest11))
	if err != nil {
		t.Fatal(err)
	}
	if IsBlessed(v0, CodecDagCBOR) {
		t.Error("IsBlessed on a CIDv0")
	}
}

// Nested containers that each claim as many elements as there are bytes
// left must not make the decoder allocate in proportion to the claims: the
// input below is 100 kB and used to allocate 100 MB before failing.
func TestAllocationBounded(t *testing.T) {
	const n = 100000
	var in []byte
	for range MaxDepth {
		in = AppendArrayHeader(in, n)
	}
	in = append(in, make([]byte, n)...) // the innermost array is complete
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Unmarshal(in)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("Unmarshal: %v, want ErrTruncated", err)
	}
	// The innermost array really holds n elements: 1.6 MB, about 9 MB with
	// append's growth. Preallocating every claim costs 100 MB.
	if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(16<<20); got > limit {
		t.Errorf("allocated %d bytes for a %d-byte input, limit %d", got, len(in), limit)
	}
}
