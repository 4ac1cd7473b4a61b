package plc_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/plc"
)

const someDID = syntax.DID("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")

// fakeDirectory answers every request with status and body.
func fakeDirectory(t *testing.T, status int, body string) *plc.Client {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(ts.Close)
	return &plc.Client{BaseURL: ts.URL + "/"}
}

func TestClientMapsErrors(t *testing.T) {
	cases := []struct {
		status int
		body   string
		kind   error
		msg    string
	}{
		{404, `{"message":"DID not registered: did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}`, plc.ErrNotFound, "DID not registered: did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"},
		{404, `{"message":"DID not available: did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}`, plc.ErrDeactivated, "DID not available"},
		{410, `{"message":"DID not available"}`, plc.ErrDeactivated, "DID not available"},
		{400, `{"message":"Invalid signature"}`, plc.ErrRejected, "Invalid signature"},
		{409, `{"message":"Proposed prev does not match"}`, plc.ErrConflict, "Proposed prev"},
		{500, `<html>oops</html>`, plc.ErrDirectory, "Internal Server Error"},
		{429, ``, plc.ErrDirectory, "Too Many Requests"},
	}
	for _, tc := range cases {
		c := fakeDirectory(t, tc.status, tc.body)
		_, err := c.Data(context.Background(), someDID)
		var de *plc.DirectoryError
		if !errors.Is(err, tc.kind) || !errors.As(err, &de) || de.Status != tc.status || !strings.Contains(de.Message, tc.msg) {
			t.Errorf("%d %s: %v, want %v with message %q", tc.status, tc.body, err, tc.kind, tc.msg)
		}
	}
}

func TestClientChecksAnswers(t *testing.T) {
	ctx := context.Background()
	other := `{"@context":[],"id":"did:plc:bbbbbbbbbbbbbbbbbbbbbbbb","alsoKnownAs":[],"verificationMethod":[],"service":[]}`
	if _, err := fakeDirectory(t, 200, other).Resolve(ctx, someDID); err == nil {
		t.Error("Resolve accepted the document of another DID")
	}
	if _, err := fakeDirectory(t, 200, `{"did":"did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"}`).Data(ctx, someDID); err == nil {
		t.Error("Data accepted the data of another DID")
	}
	if _, err := fakeDirectory(t, 200, `[{"type":"plc_tombstone"}]`).Log(ctx, someDID); !errors.Is(err, plc.ErrMalformed) {
		t.Errorf("Log of a malformed operation: %v", err)
	}
	if _, err := fakeDirectory(t, 200, `not json`).Last(ctx, someDID); !errors.Is(err, plc.ErrMalformed) {
		t.Errorf("Last of garbage: %v", err)
	}
	k := newK256(t)
	g, did := genesis(t, k, k)
	gj, _ := g.MarshalJSON()
	wrongCID := `[{"did":"` + did.String() + `","operation":` + string(gj) + `,"cid":"` + validPrev + `","nullified":false,"createdAt":"2025-01-01T00:00:00.000Z"}]`
	if _, err := fakeDirectory(t, 200, wrongCID).AuditLog(ctx, did); !errors.Is(err, plc.ErrAuditLog) {
		t.Errorf("AuditLog with a wrong cid: %v", err)
	}
	otherDID := strings.Replace(wrongCID, validPrev, g.CID().String(), 1)
	if _, err := fakeDirectory(t, 200, otherDID).AuditLog(ctx, someDID); err == nil {
		t.Error("AuditLog accepted entries of another DID")
	}
	if log, err := fakeDirectory(t, 200, otherDID).AuditLog(ctx, did); err != nil || len(log) != 1 {
		t.Errorf("AuditLog of a good entry: %v", err)
	}
}

func TestClientLimits(t *testing.T) {
	big := fakeDirectory(t, 200, `{"did":"`+strings.Repeat("a", 2<<20)+`"}`)
	if _, err := big.Data(context.Background(), someDID); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("2 MiB answer: %v", err)
	}
	big.MaxResponseBytes = 4 << 20
	if _, err := big.Data(context.Background(), someDID); err == nil || strings.Contains(err.Error(), "larger than") {
		t.Errorf("with a 4 MiB limit the answer should be read (and fail on the DID): %v", err)
	}

	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	c := &plc.Client{BaseURL: slow.URL, Timeout: 50 * time.Millisecond}
	start := time.Now()
	_, err := c.Data(context.Background(), someDID)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow directory: %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("timeout took %s", d)
	}
}
