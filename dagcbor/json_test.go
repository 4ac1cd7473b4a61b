package dagcbor

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"reflect"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

const (
	linkV1 = "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a" // from data-model-fixtures.json
	linkV0 = "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n"
)

// fromJSONCases are JSON inputs with the value they must decode to. Their
// inputs seed FuzzFromJSON.
var fromJSONCases = []struct {
	name string
	json string
	want any
}{
	{"zero", `0`, int64(0)},
	{"negative zero", `-0`, int64(0)},
	{"integer", `123`, int64(123)},
	{"negative", `-123`, int64(-123)},
	{"integer-like float", `123.0`, int64(123)},
	{"zero fraction", `0.000`, int64(0)},
	{"exponent", `1e2`, int64(100)},
	{"upper exponent with sign", `1E+2`, int64(100)},
	{"fraction and exponent", `1.5e1`, int64(15)},
	{"negative exponent, integral", `100e-2`, int64(1)},
	{"zero with huge exponent", `0e999999999999999999999`, int64(0)},
	{"negative zero float", `-0.0e5`, int64(0)},
	{"MaxInt64", `9223372036854775807`, int64(math.MaxInt64)},
	{"MinInt64", `-9223372036854775808`, int64(math.MinInt64)},
	{"MaxInt64 with fraction zeros", `9223372036854775807.000`, int64(math.MaxInt64)},
	{"MaxInt64 via exponent", `922337203685477580.7e1`, int64(math.MaxInt64)},
	{"MinInt64 via exponent", `-92233720368547758.08e2`, int64(math.MinInt64)},
	{"2^53+1 (beyond float64)", `9007199254740993`, int64(9007199254740993)},
	{"true", `true`, true},
	{"false", `false`, false},
	{"null", `null`, nil},
	{"whitespace", " \t\r\n[ 1 , { \"a\" : null } ] \n", []any{int64(1), map[string]any{"a": nil}}},
	{"empty string", `""`, ""},
	{"escapes", `"a\"b\\c\/d\b\f\n\r\t"`, "a\"b\\c/d\b\f\n\r\t"},
	{"unicode escape", `"\u00e9\u00E9"`, "éé"},
	{"surrogate pair", `"\ud83d\ude00"`, "😀"},
	{"NUL escape", `"\u0000"`, "\x00"},
	{"raw UTF-8", `"é😀⽘"`, "é😀⽘"},
	{"escape after UTF-8", `"é\n"`, "é\n"},
	{"empty array", `[]`, []any{}},
	{"empty object", `{}`, map[string]any{}},
	{"nested", `{"a":[[],{}],"b":{"c":[null]}}`, map[string]any{"a": []any{[]any{}, map[string]any{}}, "b": map[string]any{"c": []any{nil}}}},
	{"escaped key", `{"\u0061b":1}`, map[string]any{"ab": int64(1)}},
	{"empty key", `{"":1}`, map[string]any{"": int64(1)}},
	{"link", `{"$link":"` + linkV1 + `"}`, "link:" + linkV1},
	{"link with spaces", `{ "$link" : "` + linkV1 + `" }`, "link:" + linkV1},
	{"CIDv0 link", `{"$link":"` + linkV0 + `"}`, "link:" + linkV0},
	{"empty bytes", `{"$bytes":""}`, []byte{}},
	{"bytes", `{"$bytes":"AQID"}`, []byte{1, 2, 3}},
	{"bytes unpadded", `{"$bytes":"AQI"}`, []byte{1, 2}},
	{"bytes padded", `{"$bytes":"AQI="}`, []byte{1, 2}},
	{"bytes unpadded 1", `{"$bytes":"AQ"}`, []byte{1}},
	{"bytes padded 1", `{"$bytes":"AQ=="}`, []byte{1}},
	{"bytes with + and /", `{"$bytes":"+/8"}`, []byte{0xfb, 0xff}},
	{"other $ keys", `{"$type":"com.example.x","$foo":1}`, map[string]any{"$type": "com.example.x", "$foo": int64(1)}},
	{"$type alone is not special", `{"$type":""}`, map[string]any{"$type": ""}},
}

// fromJSONValue resolves the "link:" shorthand of the table.
func fromJSONValue(t testing.TB, v any) any {
	if s, ok := v.(string); ok && strings.HasPrefix(s, "link:") {
		return testutil.MustCID(t, strings.TrimPrefix(s, "link:"))
	}
	return v
}

func TestFromJSON(t *testing.T) {
	for _, c := range fromJSONCases {
		want := fromJSONValue(t, c.want)
		got, err := FromJSON([]byte(c.json))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %#v, want %#v", c.name, got, want)
		}
		// The independent encoding/json-based reader agrees.
		ref, err := refFromJSON([]byte(c.json))
		if !errors.Is(err, errRefCannot) && (err != nil || !reflect.DeepEqual(ref, want)) {
			t.Errorf("%s: reference reader gives %#v, %v", c.name, ref, err)
		}
		// And the value survives ToJSON.
		js, err := ToJSON(got)
		if err != nil {
			t.Errorf("%s: ToJSON: %v", c.name, err)
			continue
		}
		if back, err := FromJSON(js); err != nil || !reflect.DeepEqual(back, want) {
			t.Errorf("%s: round trip through %s: %#v, %v", c.name, js, back, err)
		}
	}
}

// fromJSONErrors are inputs FromJSON must refuse, with the rules the error
// must carry. They seed FuzzFromJSON too.
var fromJSONErrors = []struct {
	name  string
	json  string
	rules []error
}{
	// Numbers.
	{"above MaxInt64", `9223372036854775808`, []error{ErrDataModel, ErrIntRange}},
	{"below MinInt64", `-9223372036854775809`, []error{ErrDataModel, ErrIntRange}},
	{"20 digits", `18446744073709551616`, []error{ErrDataModel, ErrIntRange}},
	{"1e19", `1e19`, []error{ErrDataModel, ErrIntRange}},
	{"huge exponent", `1e400`, []error{ErrDataModel, ErrIntRange}},
	{"giant exponent", `1e99999999999999999999999999`, []error{ErrDataModel, ErrIntRange}},
	{"fraction", `123.456`, []error{ErrDataModel, ErrFloat}},
	{"half", `0.5`, []error{ErrDataModel, ErrFloat}},
	{"negative exponent", `1e-1`, []error{ErrDataModel, ErrFloat}},
	{"tiny fraction lost in float64", `1.0000000000000000001`, []error{ErrDataModel, ErrFloat}},
	{"tiny", `1e-400`, []error{ErrDataModel, ErrFloat}},
	{"giant negative exponent", `5e-99999999999999999999999999`, []error{ErrDataModel, ErrFloat}},
	{"float inside object", `{"a":{"b":[1.5]}}`, []error{ErrDataModel, ErrFloat}},
	{"leading zero", `01`, []error{ErrInvalidJSON}},
	{"trailing dot", `1.`, []error{ErrInvalidJSON}},
	{"leading dot", `.5`, []error{ErrInvalidJSON}},
	{"lone minus", `-`, []error{ErrInvalidJSON}},
	{"plus sign", `+1`, []error{ErrInvalidJSON}},
	{"empty exponent", `1e`, []error{ErrInvalidJSON}},
	{"signed empty exponent", `1e+`, []error{ErrInvalidJSON}},
	{"hex", `0x10`, []error{ErrInvalidJSON}},
	{"NaN", `NaN`, []error{ErrInvalidJSON}},
	{"Infinity", `-Infinity`, []error{ErrInvalidJSON}},
	{"double minus", `--1`, []error{ErrInvalidJSON}},

	// Strings.
	{"lone high surrogate", `"\ud83d"`, []error{ErrInvalidJSON, ErrUTF8}},
	{"lone low surrogate", `"\ude00"`, []error{ErrInvalidJSON, ErrUTF8}},
	{"high surrogate then letter", `"\ud83d\u0041"`, []error{ErrInvalidJSON, ErrUTF8}},
	{"high surrogate then text", `"\ud83dx"`, []error{ErrInvalidJSON, ErrUTF8}},
	{"invalid raw UTF-8", "\"\xff\"", []error{ErrInvalidJSON, ErrUTF8}},
	{"UTF-8 surrogate", "\"\xed\xa0\x80\"", []error{ErrInvalidJSON, ErrUTF8}},
	{"invalid UTF-8 in key", "{\"\xc3\x28\":1}", []error{ErrInvalidJSON, ErrUTF8}},
	{"raw control character", "\"a\x01\"", []error{ErrInvalidJSON}},
	{"raw newline", "\"a\nb\"", []error{ErrInvalidJSON}},
	{"unterminated", `"abc`, []error{ErrInvalidJSON}},
	{"unterminated after escape", `"ab\n`, []error{ErrInvalidJSON}},
	{"bad escape", `"\x41"`, []error{ErrInvalidJSON}},
	{"short unicode escape", `"\u12"`, []error{ErrInvalidJSON}},
	{"bad hex", `"\u12g4"`, []error{ErrInvalidJSON}},
	{"single quotes", `'a'`, []error{ErrInvalidJSON}},

	// Structure.
	{"empty input", ``, []error{ErrInvalidJSON}},
	{"whitespace only", "  \n", []error{ErrInvalidJSON}},
	{"byte-order mark", "\xef\xbb\xbf{}", []error{ErrInvalidJSON}},
	{"trailing comma in object", `{"a":1,}`, []error{ErrInvalidJSON}},
	{"trailing comma in array", `[1,]`, []error{ErrInvalidJSON}},
	{"missing colon", `{"a" 1}`, []error{ErrInvalidJSON}},
	{"bare key", `{a:1}`, []error{ErrInvalidJSON}},
	{"missing comma", `[1 2]`, []error{ErrInvalidJSON}},
	{"unclosed array", `[1`, []error{ErrInvalidJSON}},
	{"unclosed object", `{"a":1`, []error{ErrInvalidJSON}},
	{"trailing data", `{"a":1}x`, []error{ErrInvalidJSON}},
	{"two values", `{} {}`, []error{ErrInvalidJSON}},
	{"truncated literal", `tru`, []error{ErrInvalidJSON}},
	{"wrong literal", `nul1`, []error{ErrInvalidJSON}},
	{"capitalised literal", `True`, []error{ErrInvalidJSON}},
	{"comment", `[1 /* c */]`, []error{ErrInvalidJSON}},
	{"float then garbage", `0.00000000000000001A`, []error{ErrInvalidJSON}},
	{"float then unclosed", `[0.5`, []error{ErrInvalidJSON}},
	{"duplicate then trailing comma", `{"a":1,"a":2,}`, []error{ErrInvalidJSON}},
	{"too deep and unclosed", strings.Repeat("[", MaxDepth+5), []error{ErrInvalidJSON}},
	{"bad link then bad UTF-8", "[{\"$link\":\".\"},\"\xff\"]", []error{ErrInvalidJSON, ErrUTF8}},

	// Duplicate keys, also when only the unescaped forms are equal.
	{"duplicate key", `{"a":1,"a":1}`, []error{ErrDataModel, ErrDuplicateKey}},
	{"duplicate after unescaping", `{"a":1,"\u0061":2}`, []error{ErrDataModel, ErrDuplicateKey}},

	// $link.
	{"link with extra key", `{"$link":"` + linkV1 + `","x":1}`, []error{ErrDataModel, ErrCID}},
	{"link after another key", `{"x":1,"$link":"` + linkV1 + `"}`, []error{ErrDataModel, ErrCID}},
	{"link and bytes", `{"$link":"` + linkV1 + `","$bytes":""}`, []error{ErrDataModel, ErrCID}},
	{"link number", `{"$link":1234}`, []error{ErrDataModel, ErrCID}},
	{"link null", `{"$link":null}`, []error{ErrDataModel, ErrCID}},
	{"link object", `{"$link":{"$link":"` + linkV1 + `"}}`, []error{ErrDataModel, ErrCID}},
	{"link empty", `{"$link":""}`, []error{ErrDataModel, ErrCID}},
	{"link bogus", `{"$link":"."}`, []error{ErrDataModel, ErrCID}},
	{"link uppercase base32", `{"$link":"` + strings.ToUpper(linkV1) + `"}`, []error{ErrDataModel, ErrCID}},
	{"link base58 CIDv1", `{"$link":"zdpuAvGhSNq6Y4NH5cKKNGFsRwaxqT1cYv3PDYU2evMGZiogu"}`, []error{ErrDataModel, ErrCID}},
	{"link truncated", `{"$link":"` + linkV1[:40] + `"}`, []error{ErrDataModel, ErrCID}},

	// $bytes.
	{"bytes array", `{"$bytes":[1,2,3]}`, []error{ErrDataModel}},
	{"bytes with extra key", `{"$bytes":"AQID","other":"x"}`, []error{ErrDataModel}},
	{"bytes wrong padding", `{"$bytes":"AQ="}`, []error{ErrDataModel}},
	{"bytes too much padding", `{"$bytes":"AQI=="}`, []error{ErrDataModel}},
	{"bytes single char", `{"$bytes":"A"}`, []error{ErrDataModel}},
	{"bytes URL-safe", `{"$bytes":"-_8"}`, []error{ErrDataModel}},
	{"bytes non-zero trailing bits", `{"$bytes":"AR"}`, []error{ErrDataModel}},
	{"bytes with line break", `{"$bytes":"AQ\nID"}`, []error{ErrDataModel}},
	{"bytes with space", `{"$bytes":"AQ ID"}`, []error{ErrDataModel}},

	// Limits.
	{"too deep", strings.Repeat("[", MaxDepth+2) + strings.Repeat("]", MaxDepth+2), []error{ErrDataModel, ErrDepth}},
	{"scalar too deep", strings.Repeat("[", MaxDepth+1) + "1" + strings.Repeat("]", MaxDepth+1), []error{ErrDataModel, ErrDepth}},
	{"nested $link objects", strings.Repeat(`{"$link":`, 5000) + `"x"` + strings.Repeat("}", 5000), []error{ErrDataModel, ErrDepth}},
	{"nested $bytes arrays", strings.Repeat(`{"$bytes":[`, 100) + strings.Repeat("]}", 100), []error{ErrDataModel, ErrDepth}},
	{"key too long", `{"` + strings.Repeat("k", MaxKeyLen+1) + `":1}`, []error{ErrDataModel, ErrKeySize}},
}

func TestFromJSONErrors(t *testing.T) {
	for _, c := range fromJSONErrors {
		v, err := FromJSON([]byte(c.json))
		if err == nil {
			t.Errorf("%s: accepted as %#v", c.name, v)
			continue
		}
		for _, rule := range c.rules {
			if !errors.Is(err, rule) {
				t.Errorf("%s: error %v does not wrap %v", c.name, err, rule)
			}
		}
		// The classes are exclusive.
		if errors.Is(err, ErrInvalidJSON) == errors.Is(err, ErrDataModel) {
			t.Errorf("%s: error %v must be exactly one of ErrInvalidJSON, ErrDataModel", c.name, err)
		}
		// Where the input is not well-formed JSON, encoding/json agrees
		// (it does not check UTF-8, which it replaces).
		if errors.Is(err, ErrInvalidJSON) && !errors.Is(err, ErrUTF8) && json.Valid([]byte(c.json)) {
			t.Errorf("%s: reported invalid, but encoding/json finds it valid", c.name)
		}
		if errors.Is(err, ErrDataModel) && !json.Valid([]byte(c.json)) {
			t.Errorf("%s: reported as a data-model error, but it is not valid JSON", c.name)
		}
	}
}

func TestFromJSONLimits(t *testing.T) {
	// MaxDepth+1 levels decode (the top level is 0), as in CBOR.
	deep := strings.Repeat("[", MaxDepth) + "1" + strings.Repeat("]", MaxDepth)
	v, err := FromJSON([]byte(deep))
	if err != nil {
		t.Fatalf("%d nested arrays: %v", MaxDepth, err)
	}
	if _, err := Marshal(v); err != nil {
		t.Errorf("Marshal of the deepest JSON value: %v", err)
	}
	// A link at the deepest level: {"$link": s} is one scalar, not a level.
	deepLink := strings.Repeat("[", MaxDepth) + `{"$link":"` + linkV1 + `"}` + strings.Repeat("]", MaxDepth)
	v, err = FromJSON([]byte(deepLink))
	if err != nil {
		t.Fatalf("link at depth %d: %v", MaxDepth, err)
	}
	b, err := Marshal(v)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	back, err := Unmarshal(b)
	if err != nil || !reflect.DeepEqual(back, v) {
		t.Fatalf("CBOR round trip: %v", err)
	}
	js, err := ToJSON(back)
	if err != nil || string(js) != deepLink {
		t.Errorf("ToJSON = %s, %v", js, err)
	}
	// A key of MaxKeyLen bytes.
	if _, err := FromJSON([]byte(`{"` + strings.Repeat("k", MaxKeyLen) + `":1}`)); err != nil {
		t.Errorf("key of MaxKeyLen: %v", err)
	}
	// Containers of MaxContainerLen elements, and one more.
	for _, c := range []struct {
		n    int
		open string
		elem func(int) string
		shut string
	}{
		{MaxContainerLen, "[", func(int) string { return "0" }, "]"},
		{MaxContainerLen, "{", func(i int) string { return fmt.Sprintf(`"%d":0`, i) }, "}"},
	} {
		for _, n := range []int{c.n, c.n + 1} {
			var sb strings.Builder
			sb.WriteString(c.open)
			for i := range n {
				if i > 0 {
					sb.WriteByte(',')
				}
				sb.WriteString(c.elem(i))
			}
			sb.WriteString(c.shut)
			_, err := FromJSON([]byte(sb.String()))
			if n == c.n && err != nil {
				t.Errorf("%s of %d: %v", c.open, n, err)
			}
			if n > c.n && !errors.Is(err, ErrContainerSize) {
				t.Errorf("%s of %d: %v, want ErrContainerSize", c.open, n, err)
			}
		}
	}
}

// toJSONCases pair values with the exact JSON ToJSON writes, by hand.
var toJSONCases = []struct {
	name string
	v    any
	json string
}{
	{"null", nil, `null`},
	{"true", true, `true`},
	{"false", false, `false`},
	{"int64", int64(-5), `-5`},
	{"int", 7, `7`},
	{"int32", int32(-7), `-7`},
	{"uint32", uint32(math.MaxUint32), `4294967295`},
	{"MaxInt64", int64(math.MaxInt64), `9223372036854775807`},
	{"MinInt64", int64(math.MinInt64), `-9223372036854775808`},
	{"string", "abc", `"abc"`},
	{"escapes", "a\"b\\c\n\r\t\b\f\x01\x1f", `"a\"b\\c\n\r\t\b\f\u0001\u001f"`},
	{"non-ASCII kept", "é😀", `"é😀"`},
	{"slash not escaped", "a/b<>&", `"a/b<>&"`},
	{"bytes", []byte{1, 2, 3}, `{"$bytes":"AQID"}`},
	{"bytes without padding", []byte{1, 2}, `{"$bytes":"AQI"}`},
	{"bytes one", []byte{0xfb}, `{"$bytes":"+w"}`},
	{"empty bytes", []byte{}, `{"$bytes":""}`},
	{"nil bytes", []byte(nil), `{"$bytes":""}`},
	{"link", "link:" + linkV1, `{"$link":"` + linkV1 + `"}`},
	{"CIDv0 link", "link:" + linkV0, `{"$link":"` + linkV0 + `"}`},
	{"nil *cid.Cid", (*cid.Cid)(nil), `null`},
	{"empty array", []any{}, `[]`},
	{"array", []any{int64(1), "a", nil}, `[1,"a",null]`},
	{"empty map", map[string]any{}, `{}`},
	{"keys sorted bytewise", map[string]any{"b": int64(1), "aa": int64(2), "a": int64(3), "B": int64(4)}, `{"B":4,"a":3,"aa":2,"b":1}`},
	{"escaped key", map[string]any{"a\"b": nil}, `{"a\"b":null}`},
	{"other $ keys", map[string]any{"$type": "x", "$foo": true}, `{"$foo":true,"$type":"x"}`},
}

func TestToJSON(t *testing.T) {
	for _, c := range toJSONCases {
		got, err := ToJSON(fromJSONValue(t, c.v))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if string(got) != c.json {
			t.Errorf("%s: got %s, want %s", c.name, got, c.json)
		}
		if !json.Valid(got) {
			t.Errorf("%s: encoding/json finds %s invalid", c.name, got)
		}
	}
	// A *cid.Cid is written as its link.
	c := cid11(t)
	if got, err := ToJSON(&c); err != nil || string(got) != `{"$link":"`+c.String()+`"}` {
		t.Errorf("ToJSON(*cid.Cid) = %s, %v", got, err)
	}
}

func TestToJSONErrors(t *testing.T) {
	deep := nestedArrays(nil, MaxDepth+1)
	cases := []struct {
		name string
		v    any
		rule error
	}{
		{"map with $link key", map[string]any{"$link": linkV1}, ErrDataModel},
		{"map with $bytes key", map[string]any{"$bytes": "", "x": 1}, ErrDataModel},
		{"nested $link key", []any{map[string]any{"$link": nil}}, ErrDataModel},
		{"invalid UTF-8", "\xff", ErrUTF8},
		{"invalid UTF-8 key", map[string]any{"\xff": nil}, ErrUTF8},
		{"float", 1.5, ErrDataModel},
		{"uint64", uint64(1), ErrDataModel},
		{"undefined CID", cid.Undef, ErrCID},
		{"too deep", deep, ErrDepth},
	}
	for _, c := range cases {
		if _, err := ToJSON(c.v); !errors.Is(err, c.rule) || !errors.Is(err, ErrDataModel) {
			t.Errorf("%s: %v, want %v", c.name, err, c.rule)
		}
	}
}

// refFromJSON is an independent reader of the JSON form, built on
// encoding/json with exact big.Rat arithmetic for numbers. It is the model
// FromJSON is checked against; it does not detect duplicate keys, invalid
// UTF-8 or lone surrogates (encoding/json hides them) and has no limits.
func refFromJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidJSON, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data", ErrInvalidJSON)
	}
	return refConvert(v)
}

// errRefCannot: the reference reader cannot decide (a number whose exponent
// big.Rat cannot hold).
var errRefCannot = errors.New("reference reader cannot decide")

func refConvert(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		r, ok := new(big.Rat).SetString(string(x))
		if !ok { // big.Rat refuses exponents beyond its range
			return nil, errRefCannot
		}
		if !r.IsInt() || !r.Num().IsInt64() {
			return nil, fmt.Errorf("%w: number %s", ErrDataModel, x)
		}
		return r.Num().Int64(), nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			var err error
			if out[i], err = refConvert(e); err != nil {
				return nil, err
			}
		}
		return out, nil
	case map[string]any:
		if l, ok := x["$link"]; ok {
			s, isStr := l.(string)
			if len(x) != 1 || !isStr {
				return nil, fmt.Errorf("%w: $link", ErrDataModel)
			}
			c, err := cid.Decode(s)
			if err != nil || c.String() != s || len(c.Bytes()) > MaxCIDLen {
				return nil, fmt.Errorf("%w: $link %q", ErrDataModel, s)
			}
			return c, nil
		}
		if b, ok := x["$bytes"]; ok {
			s, isStr := b.(string)
			if len(x) != 1 || !isStr || strings.ContainsAny(s, "\r\n") {
				return nil, fmt.Errorf("%w: $bytes", ErrDataModel)
			}
			if !strings.HasSuffix(s, "=") {
				s += strings.Repeat("=", (4-len(s)%4)%4)
			}
			p, err := base64.StdEncoding.Strict().DecodeString(s)
			if err != nil {
				return nil, fmt.Errorf("%w: $bytes: %v", ErrDataModel, err)
			}
			return p, nil
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			var err error
			if out[k], err = refConvert(e); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return v, nil // nil, bool, string
}
