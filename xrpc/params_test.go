package xrpc

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

func one(name, value string) Params { return ParamsOf(url.Values{name: {value}}) }

// wantParamError checks err is a 400 InvalidRequest naming the parameter.
func wantParamError(t *testing.T, err error, name string) {
	t.Helper()
	var xe *Error
	if !errors.As(err, &xe) {
		t.Fatalf("error %v is not an *Error", err)
	}
	if xe.Status != 400 || xe.Name != "InvalidRequest" {
		t.Errorf("got %d %s, want 400 InvalidRequest", xe.Status, xe.Name)
	}
	if !strings.Contains(xe.Message, `"`+name+`"`) {
		t.Errorf("message %q does not name %q", xe.Message, name)
	}
}

// The syntax accessors accept every valid line of the interop fixtures and
// reject every invalid one.
func TestParamsSyntaxFixtures(t *testing.T) {
	accessors := map[string]func(p Params) error{
		"did":          func(p Params) error { _, err := p.DID("x"); return err },
		"handle":       func(p Params) error { _, err := p.Handle("x"); return err },
		"nsid":         func(p Params) error { _, err := p.NSID("x"); return err },
		"recordkey":    func(p Params) error { _, err := p.RecordKey("x"); return err },
		"tid":          func(p Params) error { _, err := p.TID("x"); return err },
		"atidentifier": func(p Params) error { _, err := p.AtIdentifier("x"); return err },
		"aturi":        func(p Params) error { _, err := p.ATURI("x", true); return err },
	}
	for format, check := range accessors {
		t.Run(format, func(t *testing.T) {
			for _, line := range testutil.FixtureLines(t, "interop/syntax/"+format+"_syntax_valid.txt") {
				if err := check(one("x", line)); err != nil {
					t.Errorf("valid %q rejected: %v", line, err)
				}
			}
			for _, line := range testutil.FixtureLines(t, "interop/syntax/"+format+"_syntax_invalid.txt") {
				if err := check(one("x", line)); err == nil {
					t.Errorf("invalid %q accepted", line)
				} else {
					wantParamError(t, err, "x")
				}
			}
		})
	}
}

// CIDs must pass the lexicon syntax and also decode as CIDv1. A few lines of
// the valid syntax fixture are only syntax (no multibase decoder, or bytes
// that are no CID); they are rejected here.
func TestParamsCIDFixtures(t *testing.T) {
	notCIDs := map[string]bool{
		"mBcDxtdWx0aWhhc2g+":                 true, // bad base64 for the decoder
		"z7x3CtScH765HvShXT":                 true, // truncated
		"7134036155352661643226414134664076": true, // base8: no decoder
	}
	for _, line := range testutil.FixtureLines(t, "interop/syntax/cid_syntax_valid.txt") {
		c, err := one("cid", line).CID("cid")
		if notCIDs[line] {
			if err == nil {
				t.Errorf("%q accepted", line)
			}
			continue
		}
		if err != nil {
			t.Errorf("valid %q rejected: %v", line, err)
			continue
		}
		if want, _ := cid.Decode(line); !c.Equals(want) || c.Version() != 1 {
			t.Errorf("%q decoded to %s", line, c)
		}
	}
	for _, line := range testutil.FixtureLines(t, "interop/syntax/cid_syntax_invalid.txt") {
		_, err := one("cid", line).CID("cid")
		if err == nil {
			t.Errorf("invalid %q accepted", line)
		} else {
			wantParamError(t, err, "cid")
		}
	}
	// A CIDv0 without the "Qmb" prefix the syntax check rejects.
	_, err := one("cid", "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n").CID("cid")
	wantParamError(t, err, "cid")
	// The CID of a DAG-CBOR block round-trips.
	want := dagcbor.SumCBOR([]byte{0xa0})
	got, err := one("cid", want.String()).CID("cid")
	if err != nil || !got.Equals(want) {
		t.Errorf("%s: got %s, %v", want, got, err)
	}
}

func TestParamsRequiredAndEmpty(t *testing.T) {
	empty := ParamsOf(url.Values{"did": {""}, "since": {""}, "limit": {""}, "reverse": {""}, "cid": {""}})
	_, err := empty.DID("did")
	wantParamError(t, err, "did")
	if !strings.Contains(err.Error(), "Missing required parameter") {
		t.Errorf("message %q", err)
	}
	_, err = ParamsOf(nil).DID("did")
	wantParamError(t, err, "did")

	// Empty counts as absent for optional parameters: no error, the default.
	if v, err := empty.OptionalTID("since"); v != "" || err != nil {
		t.Errorf("since: %q, %v", v, err)
	}
	if v, err := empty.OptionalDID("did"); v != "" || err != nil {
		t.Errorf("OptionalDID: %q, %v", v, err)
	}
	if v, err := empty.Int("limit", 500, 1, 1000); v != 500 || err != nil {
		t.Errorf("limit: %d, %v", v, err)
	}
	if v, err := empty.Bool("reverse", true); !v || err != nil {
		t.Errorf("reverse: %v, %v", v, err)
	}
	if v, err := empty.OptionalCID("cid"); v.Defined() || err != nil {
		t.Errorf("OptionalCID: %v, %v", v, err)
	}
	if v, err := empty.String("cursor", false); v != "" || err != nil {
		t.Errorf("cursor: %q, %v", v, err)
	}
	_, err = empty.String("cursor", true)
	wantParamError(t, err, "cursor")
	if v, ok, err := empty.OptionalInt("limit"); ok || v != 0 || err != nil {
		t.Errorf("OptionalInt: %d %v %v", v, ok, err)
	}
	// An empty duplicate next to a value is no duplicate.
	p := ParamsOf(url.Values{"did": {"", "did:plc:abc", ""}})
	if v, err := p.DID("did"); v != "did:plc:abc" || err != nil {
		t.Errorf("did: %q, %v", v, err)
	}
}

func TestParamsScalarGivenTwice(t *testing.T) {
	p := ParamsOf(url.Values{"did": {"did:plc:abc", "did:plc:abc"}, "limit": {"1", "2"}})
	_, err := p.DID("did")
	wantParamError(t, err, "did")
	_, err = p.Int("limit", 5, 1, 10)
	wantParamError(t, err, "limit")
}

func TestParamsRepeated(t *testing.T) {
	q, err := url.ParseQuery("cids=a&cids=&cids=b&cids=a&other=x")
	if err != nil {
		t.Fatal(err)
	}
	p := ParamsOf(q)
	if got := p.Strings("cids"); !slices.Equal(got, []string{"a", "b", "a"}) {
		t.Errorf("Strings = %q", got)
	}
	if got := p.Strings("missing"); got != nil {
		t.Errorf("absent: %q", got)
	}

	c1, c2 := dagcbor.SumCBOR([]byte{0xa0}), dagcbor.SumRaw([]byte("blob"))
	p = ParamsOf(url.Values{"cids": {c1.String(), c2.String()}})
	got, err := p.CIDs("cids")
	if err != nil || len(got) != 2 || !got[0].Equals(c1) || !got[1].Equals(c2) {
		t.Errorf("CIDs = %v, %v", got, err)
	}
	_, err = ParamsOf(url.Values{"cids": {c1.String(), "nope"}}).CIDs("cids")
	wantParamError(t, err, "cids")
	_, err = ParamsOf(url.Values{"cids": {""}}).CIDs("cids")
	wantParamError(t, err, "cids")
}

func TestParamsInt(t *testing.T) {
	for _, tc := range []struct {
		raw string
		ok  bool
		v   int64
	}{
		{"1", true, 1}, {"500", true, 500}, {"1000", true, 1000}, {"007", true, 7},
		{"0", false, 0}, {"1001", false, 0}, {"-1", false, 0}, // out of [1, 1000]
		{"+5", false, 0}, {"5.0", false, 0}, {"1e3", false, 0}, {" 5", false, 0},
		{"5 ", false, 0}, {"0x10", false, 0}, {"1_000", false, 0}, {"ten", false, 0},
		{"-", false, 0}, {"99999999999999999999", false, 0},
	} {
		v, err := one("limit", tc.raw).Int("limit", 500, 1, 1000)
		if tc.ok != (err == nil) || (tc.ok && v != tc.v) {
			t.Errorf("%q: %d, %v", tc.raw, v, err)
		}
		if err != nil {
			wantParamError(t, err, "limit")
		}
	}
	if v, err := ParamsOf(nil).Int("limit", 200, 1, 1000); v != 200 || err != nil {
		t.Errorf("absent: %d, %v", v, err)
	}
	// Negative values where the range allows them (a cursor).
	if v, ok, err := one("cursor", "-3").OptionalInt("cursor"); v != -3 || !ok || err != nil {
		t.Errorf("OptionalInt(-3): %d %v %v", v, ok, err)
	}
	if v, ok, err := one("cursor", "9223372036854775807").OptionalInt("cursor"); v != 1<<63-1 || !ok || err != nil {
		t.Errorf("max int64: %d %v %v", v, ok, err)
	}
	_, _, err := one("cursor", "9223372036854775808").OptionalInt("cursor")
	wantParamError(t, err, "cursor")
}

func TestParamsBool(t *testing.T) {
	for _, tc := range []struct {
		raw   string
		ok, v bool
	}{
		{"true", true, true}, {"false", true, false},
		{"True", false, false}, {"TRUE", false, false}, {"1", false, false},
		{"0", false, false}, {"yes", false, false}, {"t", false, false},
	} {
		v, err := one("reverse", tc.raw).Bool("reverse", true)
		if tc.ok != (err == nil) || (tc.ok && v != tc.v) {
			t.Errorf("%q: %v, %v", tc.raw, v, err)
		}
		if err != nil {
			wantParamError(t, err, "reverse")
		}
	}
}

func TestParamsHandleNormalized(t *testing.T) {
	h, err := one("handle", "Alice.Example.COM").Handle("handle")
	if err != nil || h != "alice.example.com" {
		t.Errorf("%q, %v", h, err)
	}
	id, err := one("repo", "Alice.Example.COM").AtIdentifier("repo")
	if err != nil || id != "alice.example.com" {
		t.Errorf("handle identifier %q, %v", id, err)
	}
	id, err = one("repo", "did:plc:AbC").AtIdentifier("repo")
	if err != nil || id != "did:plc:AbC" {
		t.Errorf("DID identifier %q, %v (DIDs are case-sensitive)", id, err)
	}
}

func TestParamsOptionalFormats(t *testing.T) {
	if v, err := ParamsOf(nil).ATURI("uri", false); v != "" || err != nil {
		t.Errorf("ATURI absent: %q, %v", v, err)
	}
	_, err := one("uri", "http://x").ATURI("uri", false)
	wantParamError(t, err, "uri")
	_, err = one("since", "not-a-tid").OptionalTID("since")
	wantParamError(t, err, "since")
	_, err = one("did", "plc:abc").OptionalDID("did")
	wantParamError(t, err, "did")
	_, err = one("cid", "bafy").OptionalCID("cid")
	wantParamError(t, err, "cid")
}

func TestParamsFrom(t *testing.T) {
	for raw, ok := range map[string]bool{
		"did=did%3Aplc%3Aabc&limit=5": true,
		"":                            true,
		"did=%zz":                     false,
		"did=a;limit=5":               false,
	} {
		r := httptest.NewRequest("GET", "/xrpc/x", nil)
		r.URL.RawQuery = raw
		_, err := ParamsFrom(r)
		if ok != (err == nil) {
			t.Errorf("%q: %v", raw, err)
		}
		if err != nil {
			wantError(t, runHandler(t, Options{}, func(http.ResponseWriter, *http.Request) error { return err }), 400, "InvalidRequest")
		}
	}
}

// End to end: a handler's parameter error is a 400 naming the parameter.
func TestParamsThroughServer(t *testing.T) {
	s := NewServer(Options{})
	s.Query("com.atproto.sync.listBlobs", func(w http.ResponseWriter, r *http.Request) error {
		p, err := ParamsFrom(r)
		if err != nil {
			return err
		}
		did, err := p.DID("did")
		if err != nil {
			return err
		}
		since, err := p.OptionalTID("since")
		if err != nil {
			return err
		}
		limit, err := p.Int("limit", 500, 1, 1000)
		if err != nil {
			return err
		}
		return WriteJSON(w, 200, map[string]any{"did": did, "since": since, "limit": limit})
	})
	for _, tc := range []struct {
		query, want string
		status      int
	}{
		{"did=did:plc:abc&since=&limit=", `{"did":"did:plc:abc","limit":500,"since":""}`, 200},
		{"did=did:plc:abc&since=3jzfcijpj2z2a&limit=7&unknown=1", `{"did":"did:plc:abc","limit":7,"since":"3jzfcijpj2z2a"}`, 200},
		{"since=3jzfcijpj2z2a", `did`, 400},
		{"did=did:plc:abc&limit=1001", `limit`, 400},
		{"did=did:plc:abc&since=2024", `since`, 400},
	} {
		w := serve(s, "GET", "/xrpc/com.atproto.sync.listBlobs?"+tc.query, nil, nil)
		if tc.status == 200 {
			if w.Code != 200 || w.Body.String() != tc.want {
				t.Errorf("%s: %d %s", tc.query, w.Code, w.Body)
			}
			continue
		}
		if msg := wantError(t, w, 400, "InvalidRequest"); !strings.Contains(msg, `"`+tc.want+`"`) {
			t.Errorf("%s: message %q does not name %s", tc.query, msg, tc.want)
		}
	}
}
