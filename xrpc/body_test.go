package xrpc

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type crawlInput struct {
	Hostname string `json:"hostname"`
}

func jsonRequest(body, contentType string) *http.Request {
	r := httptest.NewRequest("POST", "/xrpc/com.atproto.sync.requestCrawl", strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	return r
}

func wantStatus(t *testing.T, err error, status int, name string) {
	t.Helper()
	var xe *Error
	if !errors.As(err, &xe) {
		t.Fatalf("error %v is not an *Error", err)
	}
	if xe.Status != status || xe.Name != name {
		t.Errorf("got %d %s (%s), want %d %s", xe.Status, xe.Name, xe.Message, status, name)
	}
}

func TestDecodeJSONContentType(t *testing.T) {
	for ct, ok := range map[string]bool{
		"application/json":                  true,
		"application/json; charset=utf-8":   true,
		"application/json; charset=UTF-8":   true,
		"Application/JSON":                  true,
		"":                                  false,
		"text/plain":                        false,
		"application/jsonx":                 false,
		"application/json; charset=latin1":  false,
		"application/x-www-form-urlencoded": false,
		"application/json; =":               false, // malformed parameters
	} {
		var in crawlInput
		err := DecodeJSON(jsonRequest(`{"hostname":"pds.example.com"}`, ct), &in, 1024)
		if ok {
			if err != nil || in.Hostname != "pds.example.com" {
				t.Errorf("%q: %+v, %v", ct, in, err)
			}
			continue
		}
		wantStatus(t, err, 400, "InvalidRequest")
		if !strings.Contains(err.Error(), "Content-Type") {
			t.Errorf("%q: message %q does not mention Content-Type", ct, err)
		}
	}
}

func TestDecodeJSONBody(t *testing.T) {
	for _, tc := range []struct {
		body string
		ok   bool
		want string // hostname, or a fragment of the message
	}{
		{`{"hostname":"a.example.com"}`, true, "a.example.com"},
		{` {"hostname":"a.example.com","unknownField":[1,2],"x":{}} `, true, "a.example.com"},
		{`{}`, true, ""},
		{``, false, "empty"},
		{`   `, false, "empty"},
		{`{`, false, "Invalid JSON"},
		{`{"hostname":"a"}x`, false, "Invalid JSON"},
		{`{"hostname":"a"}{}`, false, "Invalid JSON"},
		{`[]`, false, "object"},
		{`null`, false, "object"},
		{`"hostname"`, false, "object"},
		{`{"hostname":5}`, false, `"hostname"`},
		{"{\"hostname\":\"\xff\"}", false, "UTF-8"},
	} {
		var in crawlInput
		err := DecodeJSON(jsonRequest(tc.body, "application/json"), &in, 1024)
		if tc.ok {
			if err != nil || in.Hostname != tc.want {
				t.Errorf("%q: %+v, %v", tc.body, in, err)
			}
			continue
		}
		wantStatus(t, err, 400, "InvalidRequest")
		var xe *Error
		errors.As(err, &xe)
		if !strings.Contains(xe.Message, tc.want) {
			t.Errorf("%q: message %q lacks %q", tc.body, xe.Message, tc.want)
		}
	}
}

func TestDecodeJSONSizeLimit(t *testing.T) {
	body := `{"hostname":"` + strings.Repeat("a", 49) + `"}` // 64 bytes
	if len(body) != 64 {
		t.Fatalf("body is %d bytes", len(body))
	}
	for _, known := range []bool{true, false} {
		req := func() *http.Request {
			r := jsonRequest(body, "application/json")
			if !known {
				r.Body = io.NopCloser(io.MultiReader(strings.NewReader(body)))
				r.ContentLength = -1
			}
			return r
		}
		var in crawlInput
		if err := DecodeJSON(req(), &in, 64); err != nil {
			t.Errorf("length known=%v: exactly the limit: %v", known, err)
		}
		err := DecodeJSON(req(), &in, 63)
		wantStatus(t, err, 413, "PayloadTooLarge")
	}
}

// The route's limit, hit while DecodeJSON reads, is a 413 too.
func TestDecodeJSONUnderRouteLimit(t *testing.T) {
	s := NewServer(Options{MaxBodyBytes: 16})
	s.Procedure("com.atproto.sync.requestCrawl", func(w http.ResponseWriter, r *http.Request) error {
		var in crawlInput
		if err := DecodeJSON(r, &in, 1<<20); err != nil {
			return err
		}
		return nil
	})
	body := io.MultiReader(strings.NewReader(`{"hostname":"pds.example.com"}`))
	w := serve(s, "POST", "/xrpc/com.atproto.sync.requestCrawl", body, http.Header{"Content-Type": {"application/json"}})
	wantError(t, w, 413, "PayloadTooLarge")
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestReadBody(t *testing.T) {
	r := httptest.NewRequest("POST", "/", strings.NewReader("abc"))
	if b, err := ReadBody(r, 3); err != nil || string(b) != "abc" {
		t.Errorf("%q, %v", b, err)
	}
	r = httptest.NewRequest("POST", "/", strings.NewReader("abcd"))
	_, err := ReadBody(r, 3)
	wantStatus(t, err, 413, "PayloadTooLarge")

	// A zero limit means the default.
	r = httptest.NewRequest("POST", "/", strings.NewReader(strings.Repeat("x", DefaultMaxBodyBytes)))
	if b, err := ReadBody(r, 0); err != nil || len(b) != DefaultMaxBodyBytes {
		t.Errorf("default limit: %d bytes, %v", len(b), err)
	}

	// A client that sends less than it announced.
	r = httptest.NewRequest("POST", "/", failingReader{})
	_, err = ReadBody(r, 10)
	wantStatus(t, err, 400, "InvalidRequest")
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Error("the cause is lost")
	}
}
