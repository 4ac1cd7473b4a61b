package xrpc

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error is an XRPC error response. Status, Name and Message are public: they
// become the HTTP status and the body {"error": Name, "message": Message}.
// Cause is private: it is logged (for 5xx) and returned by Unwrap, never
// sent. Header holds extra response headers, such as WWW-Authenticate on a
// 401, Retry-After on a 429 or Allow on a 405.
//
// Handlers return an *Error, possibly wrapped with %w, to choose the
// response; any other error becomes 500 InternalServerError. The
// constructors below use the lexicon error names and the status decisions of
// the package documentation.
type Error struct {
	Status  int
	Name    string
	Message string
	Cause   error
	Header  http.Header
}

// Error describes the response and the cause, for logs.
func (e *Error) Error() string {
	if e == nil {
		return "xrpc: <nil *Error>"
	}
	s := "xrpc: " + strconv.Itoa(e.Status) + " " + e.Name
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Cause
}

// WithCause returns a copy of e with the internal cause set.
func (e *Error) WithCause(cause error) *Error {
	c := *e
	c.Cause = cause
	return &c
}

// NewError returns an error with the given status, lexicon name and message.
// Prefer the named constructors; this is for names they do not cover.
func NewError(status int, name, message string) *Error {
	return &Error{Status: status, Name: name, Message: message}
}

// Names used by more than one constructor, and by the adapter itself.
const (
	NameInvalidRequest         = "InvalidRequest"
	NameAuthenticationRequired = "AuthenticationRequired"
	NameInternalServerError    = "InternalServerError"
	NameMethodNotImplemented   = "MethodNotImplemented"
	NamePayloadTooLarge        = "PayloadTooLarge"
)

// RepoNotFound: 404, no repository with that DID is held here.
func RepoNotFound(did string) *Error {
	return NewError(http.StatusNotFound, "RepoNotFound", "Could not find repo: "+did)
}

// RecordNotFound: 404, no record at that path (collection/rkey) or AT-URI.
func RecordNotFound(path string) *Error {
	return NewError(http.StatusNotFound, "RecordNotFound", "Could not locate record: "+path)
}

// BlobNotFound: 404, the repository holds no blob with that CID.
func BlobNotFound(cid string) *Error {
	return NewError(http.StatusNotFound, "BlobNotFound", "Blob not found: "+cid)
}

// BlockNotFound: 404, some requested blocks are missing; the message lists
// them.
func BlockNotFound(cids ...string) *Error {
	return NewError(http.StatusNotFound, "BlockNotFound", "Could not find blocks: "+strings.Join(cids, ", "))
}

// HeadNotFound: 404, the repository has no current commit.
func HeadNotFound(did string) *Error {
	return NewError(http.StatusNotFound, "HeadNotFound", "Could not find root for DID: "+did)
}

// HostNotFound: 404, the relay knows no host of that name.
func HostNotFound(hostname string) *Error {
	return NewError(http.StatusNotFound, "HostNotFound", "Host not found: "+hostname)
}

// RepoTakendown: 403, the repository is taken down.
func RepoTakendown(did string) *Error {
	return NewError(http.StatusForbidden, "RepoTakendown", "Repo has been takendown: "+did)
}

// RepoSuspended: 403, the repository is suspended (a temporary takedown).
func RepoSuspended(did string) *Error {
	return NewError(http.StatusForbidden, "RepoSuspended", "Repo has been suspended: "+did)
}

// RepoDeactivated: 403, the account owner deactivated the repository.
func RepoDeactivated(did string) *Error {
	return NewError(http.StatusForbidden, "RepoDeactivated", "Repo has been deactivated: "+did)
}

// HostBanned: 403, requestCrawl from a banned host.
func HostBanned(hostname string) *Error {
	return NewError(http.StatusForbidden, "HostBanned", "Host is banned: "+hostname)
}

// InvalidRequest: 400, the generic bad-request error (bad or missing
// parameters, bad input).
func InvalidRequest(message string) *Error {
	return NewError(http.StatusBadRequest, NameInvalidRequest, message)
}

// InvalidRequestf is InvalidRequest with a formatted message.
func InvalidRequestf(format string, args ...any) *Error {
	return InvalidRequest(fmt.Sprintf(format, args...))
}

// InvalidSwap: 400, a swapCommit or swapRecord precondition failed.
func InvalidSwap(message string) *Error {
	return NewError(http.StatusBadRequest, "InvalidSwap", message)
}

// FutureCursor: 400, a subscribeRepos cursor ahead of the stream. On an open
// stream it is an error frame instead; the status applies before the
// upgrade.
func FutureCursor() *Error {
	return NewError(http.StatusBadRequest, "FutureCursor", "Cursor in the future.")
}

// ConsumerTooSlow: 400, the subscriber fell too far behind. It is sent as an
// error frame on the stream; the status applies only if used before the
// upgrade.
func ConsumerTooSlow() *Error {
	return NewError(http.StatusBadRequest, "ConsumerTooSlow", "Stream consumer too slow")
}

// The createAccount errors of com.atproto.server.createAccount, all 400.

// InvalidHandle: 400, the handle is not acceptable here.
func InvalidHandle(message string) *Error {
	return NewError(http.StatusBadRequest, "InvalidHandle", message)
}

// HandleNotAvailable: 400, the handle is taken.
func HandleNotAvailable(handle string) *Error {
	return NewError(http.StatusBadRequest, "HandleNotAvailable", "Handle already taken: "+handle)
}

// UnsupportedDomain: 400, the handle's domain is not served here.
func UnsupportedDomain(message string) *Error {
	return NewError(http.StatusBadRequest, "UnsupportedDomain", message)
}

// UnresolvableDid: 400, the DID to adopt cannot be resolved.
func UnresolvableDid(did string) *Error {
	return NewError(http.StatusBadRequest, "UnresolvableDid", "Could not resolve DID: "+did)
}

// IncompatibleDidDoc: 400, the DID document does not fit the account.
func IncompatibleDidDoc(message string) *Error {
	return NewError(http.StatusBadRequest, "IncompatibleDidDoc", message)
}

// AuthRequired: 401 AuthenticationRequired, missing or wrong credentials.
// It carries a WWW-Authenticate header offering Bearer and Basic.
func AuthRequired(message string) *Error {
	return authRequired(message, (&Auth{}).challenges()...)
}

func authRequired(message string, challenges ...string) *Error {
	e := NewError(http.StatusUnauthorized, NameAuthenticationRequired, message)
	e.Header = http.Header{"Www-Authenticate": challenges}
	return e
}

// Forbidden: 403, authenticated but not allowed.
func Forbidden(message string) *Error {
	return NewError(http.StatusForbidden, "Forbidden", message)
}

// MethodNotAllowed: 405 with an Allow header and an InvalidRequest body, for
// a known method called with the wrong HTTP method.
func MethodNotAllowed(method string, allow ...string) *Error {
	msg := "Incorrect HTTP method (" + method + ")"
	if len(allow) > 0 {
		msg += " expected " + allow[0]
	}
	e := NewError(http.StatusMethodNotAllowed, NameInvalidRequest, msg)
	e.Header = http.Header{"Allow": {strings.Join(allow, ", ")}}
	return e
}

// PayloadTooLarge: 413, the request body is over limit bytes.
func PayloadTooLarge(limit int64) *Error {
	return NewError(http.StatusRequestEntityTooLarge, NamePayloadTooLarge,
		"Request body is larger than "+strconv.FormatInt(limit, 10)+" bytes")
}

// UnsupportedMediaType: 415, a body encoding the method does not accept.
func UnsupportedMediaType(message string) *Error {
	return NewError(http.StatusUnsupportedMediaType, "UnsupportedMediaType", message)
}

// RateLimitExceeded: 429 with Retry-After in whole seconds (at least 1).
func RateLimitExceeded(retryAfter time.Duration) *Error {
	secs := int64(math.Ceil(retryAfter.Seconds()))
	secs = max(secs, 1)
	e := NewError(http.StatusTooManyRequests, "RateLimitExceeded", "Rate Limit Exceeded")
	e.Header = http.Header{"Retry-After": {strconv.FormatInt(secs, 10)}}
	return e
}

// Internal: 500 InternalServerError with the fixed public message "Internal
// Server Error"; cause is logged, never sent. Returning a plain error from a
// handler has the same effect.
func Internal(cause error) *Error {
	e := NewError(http.StatusInternalServerError, NameInternalServerError, "Internal Server Error")
	e.Cause = cause
	return e
}

// MethodNotImplemented: 501, no such method here.
func MethodNotImplemented() *Error {
	return NewError(http.StatusNotImplemented, NameMethodNotImplemented, "Method Not Implemented")
}

// UpstreamFailure: 502, a service this one depends on failed.
func UpstreamFailure(message string) *Error {
	return NewError(http.StatusBadGateway, "UpstreamFailure", message)
}

// NotEnoughResources: 503, temporarily unable to serve.
func NotEnoughResources(message string) *Error {
	return NewError(http.StatusServiceUnavailable, "NotEnoughResources", message)
}

// UpstreamTimeout: 504, a service this one depends on did not answer in time.
func UpstreamTimeout(message string) *Error {
	return NewError(http.StatusGatewayTimeout, "UpstreamTimeout", message)
}
