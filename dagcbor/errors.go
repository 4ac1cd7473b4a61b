package dagcbor

import (
	"errors"
	"fmt"
)

// The rules a strict decoder enforces. Every decoding error wraps exactly one
// of these, so callers can test with errors.Is and users read which rule broke.
var (
	ErrTruncated     = errors.New("truncated input")
	ErrTrailing      = errors.New("trailing bytes after the top-level item")
	ErrNonMinimal    = errors.New("integer or length not in its shortest form")
	ErrIndefinite    = errors.New("indefinite length not allowed")
	ErrFloat         = errors.New("floats are not allowed in the atproto data model")
	ErrUndefined     = errors.New("undefined is not allowed")
	ErrSimple        = errors.New("simple value other than false, true, null")
	ErrTag           = errors.New("tag other than 42 (CID)")
	ErrCIDPrefix     = errors.New("CID link without the 0x00 multibase prefix")
	ErrCID           = errors.New("invalid CID")
	ErrMapKeyType    = errors.New("map key is not a text string")
	ErrKeyOrder      = errors.New("map keys not in canonical order (length first, then bytes)")
	ErrDuplicateKey  = errors.New("duplicate map key")
	ErrUTF8          = errors.New("text string is not valid UTF-8")
	ErrIntRange      = errors.New("integer outside the signed 64-bit range")
	ErrDepth         = errors.New("nesting too deep")
	ErrContainerSize = errors.New("array or map has too many elements")
	ErrKeySize       = errors.New("map key too long")
	ErrReserved      = errors.New("reserved additional-information value")
	ErrType          = errors.New("unexpected CBOR type")
)

// DecodeError reports a strict-decoding failure: which rule (Rule, one of the
// Err* values above) and the byte offset where it was detected.
type DecodeError struct {
	Rule   error
	Offset int
	Detail string
}

func (e *DecodeError) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("dagcbor: %v at offset %d: %s", e.Rule, e.Offset, e.Detail)
	}
	return fmt.Sprintf("dagcbor: %v at offset %d", e.Rule, e.Offset)
}

func (e *DecodeError) Unwrap() error { return e.Rule }

func decErr(rule error, off int, detail string) error {
	return &DecodeError{Rule: rule, Offset: off, Detail: detail}
}
