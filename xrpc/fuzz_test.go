package xrpc

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Seeds: the query strings of the parameter tests.
var paramSeeds = []string{
	"did=did:plc:abc&since=&limit=",
	"did=did:plc:abc&since=3jzfcijpj2z2a&limit=7&unknown=1",
	"did=did%3Aplc%3Aabc&limit=5",
	"did=a;limit=5",
	"did=%zz",
	"cids=a&cids=&cids=b&cids=a&other=x",
	"cids=bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm",
	"limit=99999999999999999999&reverse=True",
	"limit=-0&cursor=-3&reverse=false",
	"collection=app.bsky.feed.post&rkey=self&did=did:web:example.com",
	"did=did:plc:abc&did=did:plc:abc",
	"handle=Alice.Example.COM&repo=did:plc:AbC",
	"cid=QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n",
	"",
}

// FuzzParams: no query string makes an accessor panic, every failure is a
// 400 InvalidRequest, and every accepted value passes the lexicon syntax.
func FuzzParams(f *testing.F) {
	for _, s := range paramSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r := httptest.NewRequest("GET", "/xrpc/x", nil)
		r.URL.RawQuery = raw
		p, err := ParamsFrom(r)
		if err != nil {
			check400(t, err)
			return
		}
		if v, err := p.DID("did"); err != nil {
			check400(t, err)
		} else if _, perr := syntax.ParseDID(v.String()); perr != nil {
			t.Errorf("DID %q accepted", v)
		}
		if v, err := p.OptionalTID("since"); err != nil {
			check400(t, err)
		} else if v != "" {
			if _, perr := syntax.ParseTID(v.String()); perr != nil {
				t.Errorf("TID %q accepted", v)
			}
		}
		if v, err := p.Int("limit", 500, 1, 1000); err != nil {
			check400(t, err)
		} else if v < 1 || v > 1000 {
			t.Errorf("limit %d out of range accepted", v)
		}
		if _, err := p.Bool("reverse", false); err != nil {
			check400(t, err)
		}
		if cs, err := p.CIDs("cids"); err != nil {
			check400(t, err)
		} else {
			for _, c := range cs {
				if c.Version() != 1 {
					t.Errorf("CIDv0 %s accepted", c)
				}
			}
		}
		for _, check := range []func() error{
			func() error { _, err := p.NSID("collection"); return err },
			func() error { _, err := p.RecordKey("rkey"); return err },
			func() error { _, err := p.Handle("handle"); return err },
			func() error { _, err := p.AtIdentifier("repo"); return err },
			func() error { _, err := p.OptionalCID("cid"); return err },
			func() error { _, _, err := p.OptionalInt("cursor"); return err },
		} {
			if err := check(); err != nil {
				check400(t, err)
			}
		}
	})
}

func check400(t *testing.T, err error) {
	t.Helper()
	var xe *Error
	if !errors.As(err, &xe) || xe.Status != 400 || xe.Name != "InvalidRequest" {
		t.Fatalf("error %v is not a 400 InvalidRequest", err)
	}
}

// FuzzDecodeJSON: any body and content type gives a decoded value, a 400
// or a 413; never a panic or a 500.
func FuzzDecodeJSON(f *testing.F) {
	for _, body := range []string{
		`{"hostname":"a.example.com"}`, `{}`, ``, `{`, `[]`, `null`, `{"hostname":5}`,
		`{"hostname":"a"}x`, "{\"hostname\":\"\xff\"}", `{"a":{"b":[1,2,{"c":null}]}}`,
	} {
		f.Add(body, "application/json")
	}
	f.Add(`{}`, "text/plain")
	f.Add(`{}`, "application/json; charset=latin1")
	f.Fuzz(func(t *testing.T, body, contentType string) {
		r := httptest.NewRequest("POST", "/xrpc/x", strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		var in struct {
			Hostname string         `json:"hostname"`
			Rest     map[string]any `json:"rest"`
		}
		err := DecodeJSON(r, &in, 256)
		if err == nil {
			if len(body) > 256 || !utf8.ValidString(body) {
				t.Errorf("accepted a body of %d bytes (valid UTF-8: %v)", len(body), utf8.ValidString(body))
			}
			return
		}
		var xe *Error
		if !errors.As(err, &xe) || (xe.Status != 400 && xe.Status != 413) {
			t.Fatalf("error %v is neither 400 nor 413", err)
		}
	})
}

// FuzzRouting: any path and method gets a well-formed answer.
func FuzzRouting(f *testing.F) {
	for _, p := range []string{"com.atproto.sync.getLatestCommit", "", "_health", "a/b", "com.example.nope", "%2F"} {
		for _, m := range []string{"GET", "HEAD", "POST", "PUT"} {
			f.Add(m, p)
		}
	}
	s := newTestServer()
	f.Fuzz(func(t *testing.T, method, nsid string) {
		if method == "" || strings.ContainsAny(method, " \t\r\n()<>@,;:\\\"/[]?={}") || !isASCIIPrintable(method) {
			return // not an HTTP token: no request carries it
		}
		u := &url.URL{Path: PathPrefix + nsid}
		r := httptest.NewRequest("GET", "/", nil)
		r.Method, r.URL = method, u
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		switch w.Code {
		case 200, 405, 501:
		default:
			t.Errorf("%s %q: status %d", method, nsid, w.Code)
		}
		if w.Code != 200 && w.Header().Get("Content-Type") != ContentTypeJSON {
			t.Errorf("%s %q: error without JSON", method, nsid)
		}
		if w.Code == 405 && w.Header().Get("Allow") == "" {
			t.Errorf("%s %q: 405 without Allow", method, nsid)
		}
	})
}

func isASCIIPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

var _ http.Handler = (*Server)(nil)
