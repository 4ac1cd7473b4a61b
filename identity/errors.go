package identity

import (
	"errors"

	indigo "github.com/bluesky-social/indigo/atproto/identity"
)

// Error classes. Every error a Resolver returns wraps one of these (test with
// errors.Is) and names the DID or handle it is about. The classes that indigo
// already defines are the same values, so errors.Is works with either name.
var (
	// ErrDIDNotFound: the DID's directory or host answered that the DID does
	// not exist (HTTP 404, or NXDOMAIN for a did:web host).
	ErrDIDNotFound = indigo.ErrDIDNotFound
	// ErrDIDResolutionFailed: anything else that kept a DID document from
	// being fetched and accepted: network errors, timeouts, other HTTP
	// statuses, a malformed document, a document whose id is another DID.
	ErrDIDResolutionFailed = indigo.ErrDIDResolutionFailed
	// ErrUnsupportedDIDMethod: a DID that is neither did:plc nor did:web
	// (including did:web with a path). No network request is made.
	ErrUnsupportedDIDMethod = errors.New("unsupported DID method")

	// ErrHandleNotFound: neither DNS nor HTTPS maps the handle to a DID.
	ErrHandleNotFound = indigo.ErrHandleNotFound
	// ErrHandleResolutionFailed: handle resolution failed for another reason
	// (network error, timeout, several DIDs in DNS, a malformed answer).
	ErrHandleResolutionFailed = indigo.ErrHandleResolutionFailed
	// ErrHandleMismatch: the handle resolves to a DID whose document does not
	// claim the handle back.
	ErrHandleMismatch = indigo.ErrHandleMismatch
	// ErrHandleReservedTLD: the handle's top-level domain is one atproto
	// disallows (.local, .onion, .invalid, ...). No network request is made.
	ErrHandleReservedTLD = indigo.ErrHandleReservedTLD
	// ErrInvalidHandle: the handle is "handle.invalid", the marker for "no
	// verified handle", which cannot be looked up.
	ErrInvalidHandle = indigo.ErrInvalidHandle

	// ErrNoSigningKey: the DID document has no usable #atproto verification
	// method (missing, wrong controller, unsupported type, bad key bytes).
	ErrNoSigningKey = errors.New("DID document has no usable #atproto signing key")
	// ErrNoPDS: the DID document has no usable #atproto_pds service (missing,
	// wrong type, or an endpoint that is not an acceptable origin).
	ErrNoPDS = errors.New("DID document has no usable #atproto_pds endpoint")

	// ErrResponseTooLarge: a directory or host sent a body over the limit
	// (MaxResponseBytes).
	ErrResponseTooLarge = errors.New("response body too large")
	// ErrForbiddenAddress: the default HTTP client refused to connect to a
	// loopback, private, link-local or unspecified address because
	// Options.AllowInsecure is off.
	ErrForbiddenAddress = errors.New("connection to a non-public address refused")
)
