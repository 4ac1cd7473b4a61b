package repo

import (
	"errors"
	"fmt"
)

// The checks of sync-1.1 commit verification. A failed VerifyCommitMessage
// returns a *VerifyError whose Check is one of these, so callers can count
// failures by kind (Check.Error() is a stable, short label) and decide what
// to do: a signature failure warrants one identity refresh and a retry; a
// chain break or prevData mismatch marks the repository desynchronized.
var (
	ErrSignature        = errors.New("signature invalid")
	ErrRevOrder         = errors.New("rev not after the stored rev")
	ErrFutureRev        = errors.New("rev too far in the future")
	ErrInversion        = errors.New("inverted ops do not give prevData")
	ErrPrevDataMismatch = errors.New("prevData differs from the stored data")
	ErrChainBreak       = errors.New("since differs from the stored rev")
	ErrPrevDataMissing  = errors.New("prevData missing")
	ErrMissingBlock     = errors.New("block missing from the commit slice")
	ErrCIDMismatch      = errors.New("CID mismatch")
	ErrTooManyOps       = errors.New("too many ops")
	ErrTooLarge         = errors.New("blocks too large")
	ErrMalformed        = errors.New("malformed commit message")
	ErrRepoMismatch     = errors.New("message repo differs from the commit DID")
)

// VerifyError says which check of a commit message failed and why.
type VerifyError struct {
	Check  error // one of the Err* checks above
	Detail string
	Err    error // underlying cause, if any
}

func (e *VerifyError) Error() string {
	s := "repo: verify commit: " + e.Check.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap exposes both the check and the cause to errors.Is / errors.As.
func (e *VerifyError) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Check, e.Err}
	}
	return []error{e.Check}
}

func verr(check error, cause error, format string, args ...any) error {
	return &VerifyError{Check: check, Detail: fmt.Sprintf(format, args...), Err: cause}
}

// FailedCheck returns the check that err failed (one of the Err* values), or
// nil when err is not a verification failure.
func FailedCheck(err error) error {
	var ve *VerifyError
	if errors.As(err, &ve) {
		return ve.Check
	}
	return nil
}
