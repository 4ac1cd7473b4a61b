// Package plc implements did:plc, the DID method of atproto accounts:
// operations, their canonical encoding and signatures, DID derivation, the
// validation rules a directory applies, the DID documents it serves, and a
// client for any directory (plc.directory or `reservoir plc`).
//
// # Operations
//
// A DID's history is a log of signed operations, each naming the CID of
// the one before it in "prev":
//
//	plc_operation  {type, rotationKeys, verificationMethods, alsoKnownAs, services, prev, sig}
//	plc_tombstone  {type, prev, sig}                          deactivates the DID
//	create         {type, signingKey, recoveryKey, handle, service, prev: null, sig}
//
// The last is the legacy genesis format. Many DIDs are derived from one, so
// logs that start with a create must still verify (Normalize reads it as
// rotationKeys [recoveryKey, signingKey], verificationMethods.atproto =
// signingKey, alsoKnownAs ["at://"+handle], atproto_pds = service), but a
// directory never accepts a new one (CheckConstraints).
//
// An operation is hashed and signed over its DAG-CBOR encoding (map keys
// sorted by length, then bytewise; "prev" present even when null; "prev"
// a CID *string*, not a link). The signature covers the encoding without
// "sig" (UnsignedCBOR); the CID and the DID are computed over the encoding
// with it (SignedCBOR, CID). Signatures are ECDSA over SHA-256, 64-byte
// r‖s with a low S, in base64url without padding: 86 characters, trailing
// bits zero. Anything else is refused, since a second encoding of the same
// signature would give the same operation a second CID.
//
// The DID is "did:plc:" + the first 24 characters of base32-lower(SHA-256(
// signed genesis)) (DIDFromGenesis).
//
// # Parsing and validation
//
// ParseOp (JSON) and DecodeOp (DAG-CBOR) check the shape only, strictly:
// exact field sets, JSON types, prev a canonical dag-cbor CID string, a
// non-empty sig. Validate then decides what a directory decides, in the
// reference directory's order (did-method-plc: packages/lib/src/data.ts,
// operations.ts; packages/server/src/constraints.ts):
//
//   - CheckConstraints: at most MaxOpBytes (4000) of DAG-CBOR; up to 10
//     alsoKnownAs of at most 258 characters, no duplicates; up to 10
//     services (id ≤ 32, type ≤ 256, endpoint ≤ 512); up to 10
//     verification methods (id ≤ 32, a syntactically valid did:key ≤ 256
//     characters, any key type); 1 to 5 rotation keys, each a canonical
//     K-256 or P-256 did:key. Lengths count UTF-16 units, as JavaScript does.
//   - genesis (empty log): not a tombstone, prev null, signed by one of its
//     own rotation keys, and the DID must be its derivation (exactly: the
//     reference's prefix match would accept longer identifiers).
//   - update: prev names an operation P of the active (not nullified) log;
//     P is not a tombstone; the operation is signed by one of P's rotation
//     keys.
//   - fork: if operations follow P, the new one nullifies them, but only if
//     it is signed by a key listed before the key that signed the first of
//     them in P's rotationKeys, and that first one is at most
//     RecoveryWindow (72 h) old. Exactly 72 h is still inside. A tombstone
//     can be undone this way too.
//
// Deliberate differences from the reference directory: rotation keys must
// not repeat (the spec says so), service endpoints must be http(s) URLs with
// a host, prev must be the canonical base32 CID string, unknown fields are
// refused rather than stripped, and no per-DID rate limit is applied (this
// directory serves private networks and tests).
//
// Every rejection is a *ValidationError whose Kind is one of the Err*
// classes (ErrBadSignature, ErrLateRecovery, ...). VerifyAuditLog replays a
// whole audit log through the hard rules (not the size limits, which old
// operations predate) and checks the nullified flags against the replay.
//
// # Building operations
//
// CreateGenesis builds and signs the genesis of an Account (handle,
// endpoint, signing key, rotation keys). Update copies the last operation
// with prev set and applies Changes (SetHandle, SetSigningKey, SetEndpoint,
// SetRotationKeys); NewTombstone ends the log. Sign signs any of them.
// Keys are indigo atcrypto keys.
//
// # Documents and the client
//
// Data gives the state after an operation (/{did}/data); its Document is
// the DID document (/{did}): verification methods as Multikey with id
// "<did>#<id>", services with id "#<id>", the suite context of each
// K-256/P-256 key. JSON output writes map keys in canonical order, the
// order plc.directory serves.
//
// Client calls a directory with a timeout and a response size limit on
// every call, parses what comes back strictly, and maps failures to
// *DirectoryError wrapping ErrNotFound, ErrDeactivated, ErrRejected,
// ErrConflict or ErrDirectory. CreateAccount is what a host's createAccount
// calls: build, sign, submit, return the DID.
//
// # Concurrency
//
// Operations are plain values: concurrent reads are safe, Sign writes.
// Everything else is a pure function, and a Client may be shared.
package plc
