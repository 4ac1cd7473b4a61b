package dagcbor

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

type dataModelFixture struct {
	JSON       json.RawMessage `json:"json"`
	CBORBase64 string          `json:"cbor_base64"`
	CID        string          `json:"cid"`
}

func loadDataModelFixtures(t testing.TB) []dataModelFixture {
	var rows []dataModelFixture
	testutil.FixtureJSON(t, "interop/data-model/data-model-fixtures.json", &rows)
	if len(rows) != 3 {
		t.Fatalf("%d data-model fixtures, want 3", len(rows))
	}
	return rows
}

// Every fixture: the JSON and the CBOR decode to the same value, re-encoding
// either gives exactly the fixture bytes, whose CID is the fixture CID, and
// the value survives the JSON form.
func TestDataModelFixtures(t *testing.T) {
	for i, row := range loadDataModelFixtures(t) {
		// Fixture base64 has no padding.
		want, err := base64.RawStdEncoding.DecodeString(row.CBORBase64)
		if err != nil {
			t.Fatal(err)
		}
		fromJSON, err := FromJSON(row.JSON)
		if err != nil {
			t.Fatalf("fixture %d: FromJSON: %v", i, err)
		}
		fromCBOR, err := Unmarshal(want)
		if err != nil {
			t.Fatalf("fixture %d: Unmarshal: %v", i, err)
		}
		if !reflect.DeepEqual(fromJSON, fromCBOR) {
			t.Errorf("fixture %d: JSON and CBOR values differ:\n json %#v\n cbor %#v", i, fromJSON, fromCBOR)
		}
		for name, v := range map[string]any{"json": fromJSON, "cbor": fromCBOR} {
			got, err := Marshal(v)
			if err != nil {
				t.Fatalf("fixture %d: Marshal(%s): %v", i, name, err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("fixture %d: Marshal(%s) = %x\nwant %x", i, name, got, want)
			}
		}
		if got := SumCBOR(want).String(); got != row.CID {
			t.Errorf("fixture %d: CID %s, want %s", i, got, row.CID)
		}
		if _, err := UnmarshalRecord(want); err != nil {
			t.Errorf("fixture %d: UnmarshalRecord: %v", i, err)
		}
		if _, err := ParseRecordJSON(row.JSON); err != nil {
			t.Errorf("fixture %d: ParseRecordJSON: %v", i, err)
		}

		js, err := ToJSON(fromCBOR)
		if err != nil {
			t.Fatalf("fixture %d: ToJSON: %v", i, err)
		}
		back, err := FromJSON(js)
		if err != nil {
			t.Fatalf("fixture %d: FromJSON(ToJSON): %v\n%s", i, err, js)
		}
		if !reflect.DeepEqual(back, fromCBOR) {
			t.Errorf("fixture %d: model → JSON → model changed the value:\n%s", i, js)
		}
		// The JSON we write means the same as the fixture's JSON to any
		// JSON reader.
		var a, b any
		if err := json.Unmarshal(js, &a); err != nil {
			t.Fatalf("fixture %d: ToJSON wrote invalid JSON: %v", i, err)
		}
		if err := json.Unmarshal(row.JSON, &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("fixture %d: ToJSON differs from the fixture JSON:\n%s", i, js)
		}
	}
}

// The second fixture holds one of each special type; check the decoded types
// and values against the fixture text directly.
func TestDataModelFixtureTypes(t *testing.T) {
	row := loadDataModelFixtures(t)[1]
	v, err := FromJSON(row.JSON)
	if err != nil {
		t.Fatal(err)
	}
	m := v.(map[string]any)
	if c, ok := m["a"].(cid.Cid); !ok || c.String() != "bafyreidfayvfuwqa7qlnopdjiqrxzs6blmoeu4rujcjtnci5beludirz2a" {
		t.Errorf("a = %#v, want the $link CID", m["a"])
	}
	wantBytes, _ := base64.RawStdEncoding.DecodeString("nFERjvLLiw9qm45JrqH9QTzyC2Lu1Xb4ne6+sBrCzI0")
	if b, ok := m["b"].([]byte); !ok || !bytes.Equal(b, wantBytes) {
		t.Errorf("b = %#v, want the $bytes", m["b"])
	}
	blob, err := ParseBlob(m["c"].(map[string]any))
	if err != nil {
		t.Fatal(err)
	}
	want := Blob{Ref: testutil.MustCID(t, "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity"), MimeType: "image/jpeg", Size: 10000}
	if blob != want {
		t.Errorf("blob %+v, want %+v", blob, want)
	}
}

type dataModelCase struct {
	Note string          `json:"note"`
	JSON json.RawMessage `json:"json"`
}

func loadCases(t testing.TB, file string, n int) []dataModelCase {
	var rows []dataModelCase
	testutil.FixtureJSON(t, file, &rows)
	if len(rows) != n {
		t.Fatalf("%s: %d cases, want %d", file, len(rows), n)
	}
	return rows
}

func TestDataModelValid(t *testing.T) {
	for _, c := range loadCases(t, "interop/data-model/data-model-valid.json", 5) {
		rec, err := ParseRecordJSON(c.JSON)
		if err != nil {
			t.Errorf("%s: %v", c.Note, err)
			continue
		}
		// Valid records also pass through CBOR unchanged.
		b, err := Marshal(rec)
		if err != nil {
			t.Errorf("%s: Marshal: %v", c.Note, err)
			continue
		}
		back, err := UnmarshalRecord(b)
		if err != nil || !reflect.DeepEqual(back, rec) {
			t.Errorf("%s: CBOR round trip: %v", c.Note, err)
		}
	}
}

func TestDataModelValidIntegerLikeFloat(t *testing.T) {
	c := loadCases(t, "interop/data-model/data-model-valid.json", 5)[1]
	rec, err := ParseRecordJSON(c.JSON)
	if err != nil {
		t.Fatal(err)
	}
	if a := rec["rcrd"].(map[string]any)["a"]; a != int64(123) {
		t.Errorf("123.0 decoded as %#v, want int64(123)", a)
	}
}

// Each invalid case must fail, and with the class of error its note names.
func TestDataModelInvalid(t *testing.T) {
	want := map[string]error{
		"top-level not an object":        ErrDataModel,
		"float":                          ErrFloat,
		"record with $type null":         ErrDataModel,
		"record with $type wrong type":   ErrDataModel,
		"record with empty $type string": ErrDataModel,
		"blob with string size":          ErrDataModel,
		"blob with missing key":          ErrDataModel,
		"bytes with wrong field type":    ErrDataModel,
		"bytes with extra fields":        ErrDataModel,
		"link with wrong field type":     ErrCID,
		"link with bogus CID":            ErrCID,
		"link with extra fields":         ErrCID,
	}
	for _, c := range loadCases(t, "interop/data-model/data-model-invalid.json", 12) {
		_, err := ParseRecordJSON(c.JSON)
		if err == nil {
			t.Errorf("%s: accepted", c.Note)
			continue
		}
		rule, ok := want[c.Note]
		if !ok {
			t.Errorf("%s: case not in the expectation table", c.Note)
			continue
		}
		if !errors.Is(err, rule) || !errors.Is(err, ErrDataModel) {
			t.Errorf("%s: error %v, want %v and %v", c.Note, err, rule, ErrDataModel)
		}
		if errors.Is(err, ErrInvalidJSON) {
			t.Errorf("%s: well-formed JSON reported as invalid JSON: %v", c.Note, err)
		}
	}
}
