package dagcbor

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

// FuzzUnmarshal checks the canonical-form property: whatever the strict
// decoder accepts, Marshal writes back byte for byte, because every value has
// exactly one encoding. It also checks that Validate agrees with Unmarshal
// and that accepted values survive the JSON form.
func FuzzUnmarshal(f *testing.F) {
	for _, c := range strictCases {
		f.Add(testutil.Unhex(f, c.hex))
	}
	for _, c := range canonicalCases {
		f.Add(testutil.Unhex(f, c.hex))
	}
	for _, row := range loadDataModelFixtures(f) {
		b, err := base64.RawStdEncoding.DecodeString(row.CBORBase64)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(samplePostCBOR(f))
	f.Add(sampleMSTNode(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Unmarshal(data)
		if verr := Validate(data); (verr == nil) != (err == nil) {
			t.Fatalf("Unmarshal error %v but Validate error %v", err, verr)
		}
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not a *DecodeError: %v", err, err)
			}
			return
		}
		out, err := Marshal(v)
		if err != nil {
			t.Fatalf("Marshal of a decoded value: %v", err)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("not canonical: decoded %x, re-encoded %x", data, out)
		}
		js, err := ToJSON(v)
		if err != nil {
			// Only maps with a $link or $bytes key have no JSON form.
			if !errors.Is(err, ErrDataModel) || !(bytes.Contains(data, []byte("$link")) || bytes.Contains(data, []byte("$bytes"))) {
				t.Fatalf("ToJSON: %v", err)
			}
			return
		}
		back, err := FromJSON(js)
		if err != nil {
			t.Fatalf("FromJSON(ToJSON(v)): %v\n%s", err, js)
		}
		if !reflect.DeepEqual(back, v) {
			t.Fatalf("JSON round trip changed the value:\n%s", js)
		}
	})
}

// FuzzFromJSON: FromJSON never panics; what it accepts is well-formed JSON,
// equals what an independent encoding/json-based reader makes of it, and
// survives ToJSON and CBOR unchanged; what it refuses is refused for the
// reason it gives.
func FuzzFromJSON(f *testing.F) {
	for _, c := range fromJSONCases {
		f.Add([]byte(c.json))
	}
	for _, c := range fromJSONErrors {
		f.Add([]byte(c.json))
	}
	for _, row := range loadDataModelFixtures(f) {
		f.Add([]byte(row.JSON))
	}
	for _, file := range []string{"interop/data-model/data-model-valid.json", "interop/data-model/data-model-invalid.json"} {
		var rows []dataModelCase
		testutil.FixtureJSON(f, file, &rows)
		for _, r := range rows {
			f.Add([]byte(r.JSON))
		}
	}
	f.Add(samplePostJSON)
	f.Fuzz(func(t *testing.T, data []byte) {
		// The syntax-only checker agrees with encoding/json, except that
		// it also refuses invalid UTF-8 and lone surrogates.
		q := jsonParser{data: data}
		serr := q.checkSyntax()
		if serr == nil && !json.Valid(data) {
			t.Fatalf("checkSyntax accepts what encoding/json refuses: %q", data)
		}
		if serr != nil && json.Valid(data) && !errors.Is(serr, ErrUTF8) {
			t.Fatalf("checkSyntax refuses valid JSON %q: %v", data, serr)
		}
		v, err := FromJSON(data)
		if (serr == nil) != (err == nil || errors.Is(err, ErrDataModel)) {
			t.Fatalf("checkSyntax says %v, FromJSON says %v", serr, err)
		}
		if err != nil {
			checkFromJSONError(t, data, err)
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted JSON that encoding/json finds invalid: %q", data)
		}
		if ref, rerr := refFromJSON(data); !errors.Is(rerr, errRefCannot) && (rerr != nil || !reflect.DeepEqual(ref, v)) {
			t.Fatalf("reference reader disagrees: %#v, %v; FromJSON gave %#v", ref, rerr, v)
		}
		js, err := ToJSON(v)
		if err != nil {
			t.Fatalf("ToJSON: %v", err)
		}
		back, err := FromJSON(js)
		if err != nil || !reflect.DeepEqual(back, v) {
			t.Fatalf("JSON round trip: %v\n%s", err, js)
		}
		b, err := Marshal(v)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		cb, err := Unmarshal(b)
		if err != nil || !reflect.DeepEqual(cb, v) {
			t.Fatalf("CBOR round trip: %v", err)
		}
		if rec, err := ParseRecordJSON(data); err == nil {
			if err := ValidateRecord(rec); err != nil {
				t.Fatalf("ParseRecordJSON accepted what ValidateRecord refuses: %v", err)
			}
		}
	})
}

// checkFromJSONError checks that a FromJSON error is in exactly one class and
// that the class is right, using encoding/json and the reference reader as
// judges where they can tell.
func checkFromJSONError(t *testing.T, data []byte, err error) {
	invalid, model := errors.Is(err, ErrInvalidJSON), errors.Is(err, ErrDataModel)
	if invalid == model {
		t.Fatalf("error %v must be exactly one of ErrInvalidJSON, ErrDataModel", err)
	}
	if invalid && !errors.Is(err, ErrUTF8) && json.Valid(data) {
		t.Fatalf("reported invalid JSON, but encoding/json accepts %q: %v", data, err)
	}
	if model {
		if !json.Valid(data) {
			t.Fatalf("data-model error on invalid JSON %q: %v", data, err)
		}
		limit := errors.Is(err, ErrDuplicateKey) || errors.Is(err, ErrDepth) ||
			errors.Is(err, ErrContainerSize) || errors.Is(err, ErrKeySize)
		if _, rerr := refFromJSON(data); !limit && rerr == nil && !refHasDuplicateKeys(data) {
			t.Fatalf("refused %q (%v), but the reference reader accepts it", data, err)
		}
	}
}

// refHasDuplicateKeys reports whether any object in well-formed JSON data
// repeats a key, using encoding/json's token stream. The reference reader
// cannot judge such input: encoding/json keeps the last value.
func refHasDuplicateKeys(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		object    bool
		keys      map[string]bool
		expectKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.expectKey {
			if k, ok := tok.(string); ok {
				if top.keys[k] {
					return true
				}
				top.keys[k] = true
				top.expectKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, keys: map[string]bool{}, expectKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value (or a closed container) completed: the enclosing
		// object expects a key next.
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].expectKey = true
		}
	}
}
