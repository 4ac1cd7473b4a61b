package xrpc

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// tokens is a TokenChecker over a map; the token "broken" fails as a
// database error would.
type tokens map[string]string

func (m tokens) AccountForToken(_ context.Context, token string) (string, error) {
	switch token {
	case "broken":
		return "", errors.New("accounts db: connection refused")
	case "suspended":
		return "", Forbidden("Account is suspended")
	case "no-did":
		return "", nil
	}
	if did, ok := m[token]; ok {
		return did, nil
	}
	return "", fmt.Errorf("host: token: %w", ErrInvalidToken)
}

var _ TokenChecker = tokens(nil)

const alice = "did:plc:alice"

func testAuth() *Auth {
	return &Auth{AdminPassword: "correct horse", Tokens: tokens{"tok-alice": alice}}
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// callerEcho reports the caller the middleware recorded.
func callerEcho(w http.ResponseWriter, r *http.Request) error {
	c, ok := CallerFrom(r.Context())
	return WriteJSON(w, 200, map[string]any{"authenticated": ok, "admin": c.Admin, "did": c.DID})
}

func authRequest(h HandlerFunc, authorization string) *httptest.ResponseRecorder {
	s := NewServer(Options{})
	s.Query("com.example.auth", h)
	var header http.Header
	if authorization != "" {
		header = http.Header{"Authorization": {authorization}}
	}
	return serve(s, "GET", "/xrpc/com.example.auth", nil, header)
}

const (
	anonymous = `{"admin":false,"authenticated":false,"did":""}`
	asAdmin   = `{"admin":true,"authenticated":true,"did":""}`
	asAlice   = `{"admin":false,"authenticated":true,"did":"did:plc:alice"}`
)

func TestAuthMiddleware(t *testing.T) {
	a := testAuth()
	for _, tc := range []struct {
		name          string
		mw            func(HandlerFunc) HandlerFunc
		authorization string
		status        int
		body          string // success body, or the error name
	}{
		{"admin ok", a.RequireAdmin, basic("admin", "correct horse"), 200, asAdmin},
		{"admin wrong password", a.RequireAdmin, basic("admin", "wrong"), 401, "AuthenticationRequired"},
		{"admin password prefix", a.RequireAdmin, basic("admin", "correct"), 401, "AuthenticationRequired"},
		{"admin wrong user", a.RequireAdmin, basic("root", "correct horse"), 401, "AuthenticationRequired"},
		{"admin missing", a.RequireAdmin, "", 401, "AuthenticationRequired"},
		{"admin malformed basic", a.RequireAdmin, "Basic !!!", 401, "AuthenticationRequired"},
		{"admin by bearer", a.RequireAdmin, "Bearer tok-alice", 403, "Forbidden"},
		{"admin unknown bearer", a.RequireAdmin, "Bearer nope", 401, "AuthenticationRequired"},
		{"auth admin", a.RequireAuth, basic("admin", "correct horse"), 200, asAdmin},
		{"auth bearer", a.RequireAuth, "Bearer tok-alice", 200, asAlice},
		{"auth bearer lower-case scheme", a.RequireAuth, "bearer tok-alice", 200, asAlice},
		{"auth unknown bearer", a.RequireAuth, "Bearer tok-bob", 401, "AuthenticationRequired"},
		{"auth empty bearer", a.RequireAuth, "Bearer ", 401, "AuthenticationRequired"},
		{"auth missing", a.RequireAuth, "", 401, "AuthenticationRequired"},
		{"auth other scheme", a.RequireAuth, "Digest username=admin", 401, "AuthenticationRequired"},
		{"auth checker fails", a.RequireAuth, "Bearer broken", 500, "InternalServerError"},
		{"auth checker answers", a.RequireAuth, "Bearer suspended", 403, "Forbidden"},
		{"auth checker without DID", a.RequireAuth, "Bearer no-did", 500, "InternalServerError"},
		{"optional none", a.OptionalAuth, "", 200, anonymous},
		{"optional admin", a.OptionalAuth, basic("admin", "correct horse"), 200, asAdmin},
		{"optional bearer", a.OptionalAuth, "Bearer tok-alice", 200, asAlice},
		{"optional wrong password", a.OptionalAuth, basic("admin", "nope"), 401, "AuthenticationRequired"},
		{"optional unknown bearer", a.OptionalAuth, "Bearer tok-bob", 401, "AuthenticationRequired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := authRequest(tc.mw(callerEcho), tc.authorization)
			if tc.status == 200 {
				if w.Code != 200 || w.Body.String() != tc.body {
					t.Errorf("%d %s, want %s", w.Code, w.Body, tc.body)
				}
				return
			}
			wantError(t, w, tc.status, tc.body)
			if strings.Contains(w.Body.String(), "connection refused") {
				t.Errorf("the checker's error leaked: %s", w.Body)
			}
			if tc.status == 401 && len(w.Header().Values("Www-Authenticate")) == 0 {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

// With no admin password configured, admin auth never succeeds, whatever
// is sent.
func TestAdminDisabledWithEmptyPassword(t *testing.T) {
	a := &Auth{}
	for _, authz := range []string{basic("admin", ""), basic("admin", "x"), basic("", ""), "Basic ", ""} {
		w := authRequest(a.RequireAdmin(callerEcho), authz)
		wantError(t, w, 401, "AuthenticationRequired")
		w = authRequest(a.RequireAuth(callerEcho), authz)
		wantError(t, w, 401, "AuthenticationRequired")
	}
	// And without a TokenChecker, no bearer token is valid.
	wantError(t, authRequest(a.RequireAuth(callerEcho), "Bearer anything"), 401, "AuthenticationRequired")
}

func TestAuthChallenges(t *testing.T) {
	a := &Auth{AdminPassword: "pw", Realm: "reservoir"}
	w := authRequest(a.RequireAdmin(callerEcho), "")
	if got := w.Header().Values("Www-Authenticate"); len(got) != 1 || got[0] != `Basic realm="reservoir", charset="UTF-8"` {
		t.Errorf("admin challenge %q", got)
	}
	w = authRequest(a.RequireAuth(callerEcho), "")
	if got := w.Header().Values("Www-Authenticate"); len(got) != 2 || got[0] != `Bearer realm="reservoir"` {
		t.Errorf("auth challenges %q", got)
	}
}

func TestAuthHandlerNotRunOnFailure(t *testing.T) {
	ran := false
	h := func(http.ResponseWriter, *http.Request) error { ran = true; return nil }
	a := testAuth()
	authRequest(a.RequireAdmin(h), "")
	authRequest(a.RequireAuth(h), "Bearer nope")
	authRequest(a.OptionalAuth(h), basic("admin", "nope"))
	if ran {
		t.Error("a handler ran without valid credentials")
	}
}

func TestAuthenticate(t *testing.T) {
	a := testAuth()
	r := httptest.NewRequest("GET", "/", nil)
	if c, ok, err := a.Authenticate(r); ok || err != nil || c != (Caller{}) {
		t.Errorf("anonymous: %v %v %v", c, ok, err)
	}
	r.Header.Set("Authorization", "Bearer tok-alice")
	if c, ok, err := a.Authenticate(r); !ok || err != nil || c.DID != alice || c.Admin {
		t.Errorf("bearer: %v %v %v", c, ok, err)
	}
}

func TestCallerContext(t *testing.T) {
	if _, ok := CallerFrom(context.Background()); ok {
		t.Error("a caller in an empty context")
	}
	ctx := WithCaller(context.Background(), Caller{DID: alice})
	if c, ok := CallerFrom(ctx); !ok || c.DID != alice {
		t.Errorf("%v %v", c, ok)
	}
}

func TestIsSelfOrAdmin(t *testing.T) {
	for _, tc := range []struct {
		c    Caller
		did  string
		want bool
	}{
		{Caller{Admin: true}, alice, true},
		{Caller{DID: alice}, alice, true},
		{Caller{DID: alice}, "did:plc:bob", false},
		{Caller{}, "", false}, // anonymous is nobody, even for an empty DID
		{Caller{}, alice, false},
	} {
		if got := tc.c.IsSelfOrAdmin(tc.did); got != tc.want {
			t.Errorf("%+v.IsSelfOrAdmin(%q) = %v", tc.c, tc.did, got)
		}
	}
}
