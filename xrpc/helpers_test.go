package xrpc

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// logBuffer collects log output safely from concurrent handlers.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logRecords decodes the JSON log lines.
func (b *logBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(b.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func newLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// serve runs one request through h and returns the recorded response.
func serve(h http.Handler, method, target string, body io.Reader, header http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, body)
	for k, vs := range header {
		r.Header[k] = vs
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// runHandler serves h as the query com.example.test and returns the
// response.
func runHandler(t *testing.T, opts Options, h HandlerFunc) *httptest.ResponseRecorder {
	t.Helper()
	s := NewServer(opts)
	s.Query("com.example.test", h)
	return serve(s, http.MethodGet, "/xrpc/com.example.test", nil, nil)
}

// wantError checks an error response: status, JSON content type, and a
// body of exactly {"error": name, "message": ...}; it returns the message.
func wantError(t *testing.T, w *httptest.ResponseRecorder, status int, name string) string {
	t.Helper()
	if w.Code != status {
		t.Errorf("status %d, want %d (body %s)", w.Code, status, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("error body %q: %v", w.Body, err)
	}
	if len(body) != 2 {
		t.Errorf("error body has keys %v, want error and message", body)
	}
	if got, _ := body["error"].(string); got != name {
		t.Errorf("error name %q, want %q", got, name)
	}
	msg, ok := body["message"].(string)
	if !ok || msg == "" {
		t.Errorf("message %v, want a non-empty string", body["message"])
	}
	return msg
}
