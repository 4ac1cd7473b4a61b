package xrpc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// AdminUser is the user name of admin HTTP Basic auth.
const AdminUser = "admin"

const defaultRealm = "xrpc"

// TokenChecker resolves a bearer token to the DID of its account. For a
// token it does not know it returns an error matching ErrInvalidToken (401);
// an *Error it returns is answered as is; any other error is internal (500).
type TokenChecker interface {
	AccountForToken(ctx context.Context, token string) (did string, err error)
}

// ErrInvalidToken is the class of errors a TokenChecker returns for a token
// that names no account.
var ErrInvalidToken = errors.New("xrpc: invalid token")

// Caller is who made an authenticated request: the admin, or the account
// with DID.
type Caller struct {
	Admin bool
	DID   string
}

// IsSelfOrAdmin reports whether the caller is the admin or the account did:
// the callers that see a repository past the takedown and deactivation
// gate.
func (c Caller) IsSelfOrAdmin(did string) bool { return c.Admin || (c.DID != "" && c.DID == did) }

type callerKey struct{}

// WithCaller returns ctx carrying c, as the auth middleware does.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller recorded by RequireAdmin, RequireAuth or
// OptionalAuth, and false for an anonymous request.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// Auth checks credentials: HTTP Basic with user "admin" and AdminPassword,
// or "Authorization: Bearer TOKEN" resolved by Tokens. An empty
// AdminPassword disables admin auth (every admin attempt gets 401); a nil
// Tokens rejects every bearer token. Its methods are safe for concurrent
// use; do not change the fields while serving.
type Auth struct {
	AdminPassword string
	Tokens        TokenChecker
	// Realm names the protection space in WWW-Authenticate (default "xrpc").
	Realm string
}

func (a *Auth) realm() string {
	if a.Realm == "" {
		return defaultRealm
	}
	return a.Realm
}

const challengeBearer = "Bearer"

func basicChallenge(realm string) string {
	return `Basic realm="` + realm + `", charset="UTF-8"`
}

// RequireAdmin lets only the admin through: no or invalid credentials get
// 401 (challenging for Basic), a valid bearer token 403 Forbidden.
func (a *Auth) RequireAdmin(h HandlerFunc) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		challenge := []string{basicChallenge(a.realm())}
		c, ok, err := a.authenticate(r, challenge)
		switch {
		case err != nil:
			return err
		case !ok:
			return authRequired("Admin authentication required", challenge...)
		case !c.Admin:
			return Forbidden("Admin authentication required")
		}
		return h(w, r.WithContext(WithCaller(r.Context(), c)))
	}
}

// RequireAuth lets the admin or any bearer-token account through and
// records the Caller; others get 401.
func (a *Auth) RequireAuth(h HandlerFunc) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		challenges := a.challenges()
		c, ok, err := a.authenticate(r, challenges)
		switch {
		case err != nil:
			return err
		case !ok:
			return authRequired("Authentication required", challenges...)
		}
		return h(w, r.WithContext(WithCaller(r.Context(), c)))
	}
}

// OptionalAuth records the Caller when the request carries valid
// credentials and serves anonymous requests as they are; credentials that
// are present but invalid get 401 rather than silently counting as
// anonymous.
func (a *Auth) OptionalAuth(h HandlerFunc) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		c, ok, err := a.authenticate(r, a.challenges())
		switch {
		case err != nil:
			return err
		case ok:
			r = r.WithContext(WithCaller(r.Context(), c))
		}
		return h(w, r)
	}
}

func (a *Auth) challenges() []string {
	return []string{challengeBearer + ` realm="` + a.realm() + `"`, basicChallenge(a.realm())}
}

// Authenticate checks the request's Authorization header. It returns false
// and no error when there is none; an error (401, or 500 when the
// TokenChecker fails) when the credentials are malformed, wrong or of
// another scheme.
func (a *Auth) Authenticate(r *http.Request) (Caller, bool, error) {
	return a.authenticate(r, a.challenges())
}

func (a *Auth) authenticate(r *http.Request, challenges []string) (Caller, bool, error) {
	header := r.Header.Get("Authorization")
	if header == "" {
		return Caller{}, false, nil
	}
	fail := func(msg string) (Caller, bool, error) {
		return Caller{}, false, authRequired(msg, challenges...)
	}
	scheme, rest, _ := strings.Cut(header, " ")
	switch {
	case strings.EqualFold(scheme, "Basic"):
		user, pass, ok := r.BasicAuth()
		if !ok {
			return fail("Malformed Basic credentials")
		}
		if !a.adminOK(user, pass) {
			return fail("Invalid admin credentials")
		}
		return Caller{Admin: true}, true, nil
	case strings.EqualFold(scheme, "Bearer"):
		token := strings.TrimSpace(rest)
		if token == "" {
			return fail("Empty bearer token")
		}
		if a.Tokens == nil {
			return fail("Invalid token")
		}
		did, err := a.Tokens.AccountForToken(r.Context(), token)
		var xe *Error
		switch {
		case errors.As(err, &xe):
			return Caller{}, false, err
		case errors.Is(err, ErrInvalidToken):
			return Caller{}, false, authRequired("Invalid token", challenges...).WithCause(err)
		case err != nil:
			return Caller{}, false, fmt.Errorf("xrpc: checking bearer token: %w", err)
		case did == "":
			return Caller{}, false, errors.New("xrpc: checking bearer token: no DID for a valid token")
		}
		return Caller{DID: did}, true, nil
	}
	return fail("Unsupported authorization scheme")
}

// adminOK compares in constant time; hashing first keeps the time
// independent of the password's length too.
func (a *Auth) adminOK(user, pass string) bool {
	if a.AdminPassword == "" {
		return false
	}
	gotUser, wantUser := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(AdminUser))
	gotPass, wantPass := sha256.Sum256([]byte(pass)), sha256.Sum256([]byte(a.AdminPassword))
	userOK := subtle.ConstantTimeCompare(gotUser[:], wantUser[:])
	passOK := subtle.ConstantTimeCompare(gotPass[:], wantPass[:])
	return userOK&passOK == 1
}
