package client

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// APIError is an XRPC error response: the HTTP status and the body
// {"error": Name, "message": Message}. Name is the lexicon error name
// (RepoNotFound, RepoTakendown, ...) or, when the body had none, the
// status's generic name (InvalidRequest, RateLimitExceeded, ...). Compare
// it with the sentinels: errors.Is(err, client.ErrRepoNotFound).
type APIError struct {
	Method  string // the NSID called
	Status  int
	Name    string
	Message string
	// RetryAfter is what the server asked the client to wait (Retry-After,
	// or RateLimit-Reset on a 429), zero when it said nothing.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	s := "client: " + e.Method + ": " + strconv.Itoa(e.Status) + " " + e.Name
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Is matches the sentinel of e's name (ErrRepoNotFound for "RepoNotFound",
// ...) and, for names that are aliases in some implementation, the sentinel
// they stand for: the reference relay's RepoDeleted and RepoInactive are
// ErrRepoUnavailable, as are the lexicon's RepoTakendown, RepoSuspended and
// RepoDeactivated.
func (e *APIError) Is(target error) bool {
	if s, ok := sentinels[e.Name]; ok && s == target {
		return true
	}
	switch target {
	case ErrRepoUnavailable:
		return unavailableNames[e.Name]
	case ErrRateLimited:
		return e.Status == http.StatusTooManyRequests
	}
	return false
}

// Temporary reports whether the failure may go away by itself: 429, and the
// 5xx statuses other than 501 (spec:xrpc).
func (e *APIError) Temporary() bool {
	return retryableStatus(e.Status)
}

// Sentinels, one per lexicon error name of com.atproto.sync (and the
// generic names a client meets most). A *APIError matches the sentinel of
// its Name under errors.Is.
var (
	ErrRepoNotFound       = errors.New("RepoNotFound")
	ErrRecordNotFound     = errors.New("RecordNotFound")
	ErrBlobNotFound       = errors.New("BlobNotFound")
	ErrBlockNotFound      = errors.New("BlockNotFound")
	ErrHeadNotFound       = errors.New("HeadNotFound")
	ErrHostNotFound       = errors.New("HostNotFound")
	ErrHostBanned         = errors.New("HostBanned")
	ErrRepoTakendown      = errors.New("RepoTakendown")
	ErrRepoSuspended      = errors.New("RepoSuspended")
	ErrRepoDeactivated    = errors.New("RepoDeactivated")
	ErrInvalidRequest     = errors.New("InvalidRequest")
	ErrAuthRequired       = errors.New("AuthenticationRequired")
	ErrMethodNotSupported = errors.New("MethodNotImplemented")
	// ErrRateLimited matches any 429 (RateLimitExceeded).
	ErrRateLimited = errors.New("RateLimitExceeded")
	// ErrRepoUnavailable matches every "the repository exists but is not
	// served" error: RepoTakendown, RepoSuspended, RepoDeactivated, and the
	// reference relay's RepoDeleted and RepoInactive.
	ErrRepoUnavailable = errors.New("repository unavailable")
	// Stream error names (error frames of subscribeRepos).
	ErrFutureCursor    = errors.New("FutureCursor")
	ErrConsumerTooSlow = errors.New("ConsumerTooSlow")
)

var sentinels = map[string]error{
	"RepoNotFound":           ErrRepoNotFound,
	"RecordNotFound":         ErrRecordNotFound,
	"BlobNotFound":           ErrBlobNotFound,
	"BlockNotFound":          ErrBlockNotFound,
	"HeadNotFound":           ErrHeadNotFound,
	"HostNotFound":           ErrHostNotFound,
	"HostBanned":             ErrHostBanned,
	"RepoTakendown":          ErrRepoTakendown,
	"RepoSuspended":          ErrRepoSuspended,
	"RepoDeactivated":        ErrRepoDeactivated,
	"InvalidRequest":         ErrInvalidRequest,
	"AuthenticationRequired": ErrAuthRequired,
	"MethodNotImplemented":   ErrMethodNotSupported,
	"RateLimitExceeded":      ErrRateLimited,
	"FutureCursor":           ErrFutureCursor,
	"ConsumerTooSlow":        ErrConsumerTooSlow,
}

var unavailableNames = map[string]bool{
	"RepoTakendown": true, "RepoSuspended": true, "RepoDeactivated": true,
	"RepoDeleted": true, "RepoInactive": true,
}

var notFoundNames = map[string]bool{
	"RepoNotFound": true, "RecordNotFound": true, "BlobNotFound": true, "BlockNotFound": true,
	"HeadNotFound": true, "HostNotFound": true, "RepoNotSynchronized": true,
}

// IsNotFound reports whether err is a "not found" answer: one of the
// *NotFound lexicon errors (or the relay's RepoNotSynchronized), or any 404.
func IsNotFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && (notFoundNames[e.Name] || e.Status == http.StatusNotFound)
}

// IsRepoUnavailable reports whether err says the repository exists but is
// not served (taken down, suspended, deactivated, deleted, inactive).
func IsRepoUnavailable(err error) bool { return errors.Is(err, ErrRepoUnavailable) }

// IsRateLimited reports whether err is a 429 answer.
func IsRateLimited(err error) bool { return errors.Is(err, ErrRateLimited) }

// Errors of the client itself (not of the server's answers).
var (
	// ErrBadURL: a service URL that is not http(s):// or ws(s):// with a host.
	ErrBadURL = errors.New("client: invalid service URL")
	// ErrInvalidArgument: a parameter the lexicon would refuse (a DID or CID
	// that does not parse), caught before any request.
	ErrInvalidArgument = errors.New("client: invalid argument")
	// ErrBadResponse: a 2xx answer whose body does not have the lexicon's
	// shape (missing fields, unparsable CIDs or DIDs, wrong content).
	ErrBadResponse = errors.New("client: malformed response")
	// ErrResponseTooLarge: a JSON body longer than Client.MaxJSONBytes.
	ErrResponseTooLarge = errors.New("client: response too large")
	// ErrBlobMismatch: a blob's bytes do not hash to the CID asked for.
	ErrBlobMismatch = errors.New("client: blob does not match its CID")
	// ErrCursorLoop: a paginated listing returned a cursor it had already
	// returned, which would loop forever.
	ErrCursorLoop = errors.New("client: listing cursor repeats")
	// ErrTimeout: no response (or no body bytes) within Client.Timeout.
	ErrTimeout = errors.New("client: timed out")
)

func badResponse(method, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrBadResponse, method, fmt.Sprintf(format, args...))
}
