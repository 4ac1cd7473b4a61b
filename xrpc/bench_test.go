package xrpc

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

// discardWriter is a ResponseWriter that keeps nothing, so the benchmarks
// measure the framework, not a recorder.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

func benchServer(b *testing.B) *Server {
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	s := NewServer(Options{Metrics: m})
	s.Query("com.atproto.sync.getLatestCommit", func(w http.ResponseWriter, r *http.Request) error {
		p, err := ParamsFrom(r)
		if err != nil {
			return err
		}
		did, err := p.DID("did")
		if err != nil {
			return err
		}
		return WriteJSON(w, 200, struct {
			CID string `json:"cid"`
			Rev string `json:"rev"`
		}{did.String(), "3jzfcijpj2z2a"})
	})
	s.Query("com.atproto.sync.getRepoStatus", func(http.ResponseWriter, *http.Request) error {
		return RepoNotFound("did:plc:abc")
	})
	return s
}

// BenchmarkServeQuery: one query through routing, the adapter, parameter
// parsing, JSON output and metrics.
func BenchmarkServeQuery(b *testing.B) {
	s := benchServer(b)
	r := httptest.NewRequest("GET", "/xrpc/com.atproto.sync.getLatestCommit?did=did:plc:ewvi7nxzyoun6zhxrhs64oiz", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		s.ServeHTTP(w, r)
	}
}

// BenchmarkServeError: a lexicon error response.
func BenchmarkServeError(b *testing.B) {
	s := benchServer(b)
	r := httptest.NewRequest("GET", "/xrpc/com.atproto.sync.getRepoStatus?did=did:plc:abc", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		s.ServeHTTP(w, r)
	}
}

// BenchmarkServeUnknown: the 501 for an unregistered NSID.
func BenchmarkServeUnknown(b *testing.B) {
	s := benchServer(b)
	r := httptest.NewRequest("GET", "/xrpc/com.example.nope", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		s.ServeHTTP(w, r)
	}
}

// BenchmarkParamsGetBlocks: a getBlocks query with 20 CIDs.
func BenchmarkParamsGetBlocks(b *testing.B) {
	q := url.Values{"did": {"did:plc:ewvi7nxzyoun6zhxrhs64oiz"}}
	for i := range 20 {
		q.Add("cids", dagcbor.SumCBOR([]byte{0x18, byte(i + 24)}).String())
	}
	r := httptest.NewRequest("GET", "/xrpc/com.atproto.sync.getBlocks?"+q.Encode(), nil)
	b.SetBytes(int64(len(r.URL.RawQuery)))
	b.ReportAllocs()
	for b.Loop() {
		p, err := ParamsFrom(r)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.DID("did"); err != nil {
			b.Fatal(err)
		}
		if cs, err := p.CIDs("cids"); err != nil || len(cs) != 20 {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeJSON: a requestCrawl input.
func BenchmarkDecodeJSON(b *testing.B) {
	const body = `{"hostname":"pds.example.com"}`
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/xrpc/com.atproto.sync.requestCrawl", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		var in crawlInput
		if err := DecodeJSON(r, &in, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAdminAuth: the constant-time admin check on every admin request.
func BenchmarkAdminAuth(b *testing.B) {
	a := &Auth{AdminPassword: "correct horse battery staple"}
	r := httptest.NewRequest("GET", "/admin/hosts", nil)
	r.SetBasicAuth("admin", "correct horse battery staple")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, err := a.Authenticate(r); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
