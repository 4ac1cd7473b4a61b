package plc

import (
	"errors"
	"fmt"
)

// Classes of rejected operations. Every error from ParseOp, DecodeOp,
// CheckConstraints, Validate and VerifyAuditLog is a *ValidationError
// wrapping one of these, so errors.Is(err, ErrBadSignature) works.
var (
	ErrMalformed    = errors.New("malformed operation")                     // shape, JSON, CBOR, prev syntax
	ErrTooLarge     = errors.New("operation too large")                     // over MaxOpBytes of DAG-CBOR
	ErrLimit        = errors.New("operation exceeds a limit")               // counts, lengths, duplicates
	ErrBadKey       = errors.New("invalid key")                             // malformed or unsupported did:key
	ErrBadEndpoint  = errors.New("invalid service endpoint")                // not an http(s) URL
	ErrBadSignature = errors.New("invalid signature")                       // encoding, curve math, or not by an allowed key
	ErrDIDMismatch  = errors.New("genesis hash does not match the DID")     // DID is not the genesis derivation
	ErrMisordered   = errors.New("operations not correctly ordered")        // prev missing, unknown, or not null on genesis
	ErrTombstoned   = errors.New("DID is tombstoned")                       // prev is a tombstone
	ErrLateRecovery = errors.New("recovery outside the 72 h window")        // nullifies an op older than RecoveryWindow
	ErrAuditLog     = errors.New("audit log inconsistent with its entries") // VerifyAuditLog: flags, CIDs or order wrong
)

// ValidationError is a rejected operation: Kind is one of the classes
// above, Detail says what exactly.
type ValidationError struct {
	Kind   error
	Detail string
}

func (e *ValidationError) Error() string { return "plc: " + e.Message() }

// Message is the error without the package prefix, as a directory shows it
// to the client.
func (e *ValidationError) Message() string {
	if e.Detail == "" {
		return e.Kind.Error()
	}
	return e.Kind.Error() + ": " + e.Detail
}

func (e *ValidationError) Unwrap() error { return e.Kind }

func reject(kind error, format string, args ...any) error {
	return &ValidationError{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

func malformed(format string, args ...any) error { return reject(ErrMalformed, format, args...) }
