package plc

import (
	"slices"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
)

// RecoveryWindow is how long after an operation a rotation key of higher
// authority may still fork the log before it, nullifying it and everything
// after it.
const RecoveryWindow = 72 * time.Hour

// LogEntry is one operation in a DID's audit log, as a directory serves
// it at /{did}/log/audit: the operation, its CID, whether a recovery
// nullified it, and when the directory accepted it.
type LogEntry struct {
	DID       syntax.DID
	Op        Op
	CID       cid.Cid
	Nullified bool
	CreatedAt time.Time
}

// Accepted is what Validate decides about a valid operation.
type Accepted struct {
	Prev      cid.Cid   // the operation it follows; cid.Undef for a genesis
	Nullified []cid.Cid // operations it forks away, oldest first; empty if none
}

// Validate decides whether a directory that holds log for did accepts op
// at time now. log is the DID's audit log in acceptance order; nullified
// entries are ignored. The rules, in the reference directory's order:
//
//   - op passes CheckConstraints, and a regular operation has 1 to 5
//     supported rotation keys;
//   - on an empty log, op is a genesis: not a tombstone, prev null, signed
//     by one of its own rotation keys, and did is DIDFromGenesis(op);
//   - otherwise op.prev names an operation P of the active log that is not
//     a tombstone (ErrTombstoned) and op is signed by a rotation key of P;
//   - if operations follow P, op forks them away: it must be signed by a
//     key listed before the key that signed the first of them in P's
//     rotation keys, and that first one must be at most RecoveryWindow
//     old (ErrLateRecovery). They are returned as Nullified.
//
// Errors are *ValidationError.
func Validate(did syntax.DID, log []LogEntry, op Op, now time.Time) (Accepted, error) {
	if err := CheckConstraints(op); err != nil {
		return Accepted{}, err
	}
	return validateNext(did, active(log), op, now)
}

// active returns the entries of log that are not nullified.
func active(log []LogEntry) []LogEntry {
	out := make([]LogEntry, 0, len(log))
	for _, e := range log {
		if !e.Nullified {
			out = append(out, e)
		}
	}
	return out
}

// validateNext applies the hard rules, those every operation of a log
// must satisfy whenever it was accepted.
func validateNext(did syntax.DID, active []LogEntry, op Op, now time.Time) (Accepted, error) {
	if n := Normalize(op); n != nil {
		if err := checkRotationKeys(n.RotationKeys, false); err != nil {
			return Accepted{}, err
		}
	}
	if len(active) == 0 {
		return Accepted{}, validateGenesis(did, op)
	}
	if op.PrevCID() == "" {
		return Accepted{}, reject(ErrMisordered, "%s already has operations, so prev must name one of them", did)
	}
	prev, err := cid.Decode(op.PrevCID())
	if err != nil {
		return Accepted{}, malformed("prev %q is not a CID: %v", op.PrevCID(), err)
	}
	i := slices.IndexFunc(active, func(e LogEntry) bool { return e.CID.Equals(prev) })
	if i < 0 {
		return Accepted{}, reject(ErrMisordered, "prev %s is not an active operation of %s", prev, did)
	}
	last := Normalize(active[i].Op)
	if last == nil {
		return Accepted{}, reject(ErrTombstoned, "prev %s is the tombstone of %s", prev, did)
	}
	forked := active[i+1:]
	if len(forked) == 0 {
		if _, err := VerifySignature(op, last.RotationKeys); err != nil {
			return Accepted{}, err
		}
		return Accepted{Prev: prev}, nil
	}
	disputed, err := VerifySignature(forked[0].Op, last.RotationKeys)
	if err != nil {
		return Accepted{}, reject(ErrBadSignature, "the operation to nullify, %s, is not signed by a rotation key of %s", forked[0].CID, prev)
	}
	stronger := last.RotationKeys[:slices.Index(last.RotationKeys, disputed)]
	if _, err := VerifySignature(op, stronger); err != nil {
		return Accepted{}, reject(ErrBadSignature, "a fork at %s must be signed by a rotation key of higher authority than %s, which signed %s", prev, disputed, forked[0].CID)
	}
	if lapsed := now.Sub(forked[0].CreatedAt); lapsed > RecoveryWindow {
		return Accepted{}, reject(ErrLateRecovery, "%s was accepted %s ago, more than %s", forked[0].CID, lapsed.Round(time.Second), RecoveryWindow)
	}
	acc := Accepted{Prev: prev}
	for _, e := range forked {
		acc.Nullified = append(acc.Nullified, e.CID)
	}
	return acc, nil
}

func validateGenesis(did syntax.DID, op Op) error {
	if _, ok := op.(*Tombstone); ok {
		return reject(ErrMisordered, "%s has no operations, and a tombstone cannot be the first", did)
	}
	if op.PrevCID() != "" {
		return reject(ErrMisordered, "%s has no operations, so this one must be a genesis with prev null", did)
	}
	if _, err := VerifySignature(op, Normalize(op).RotationKeys); err != nil {
		return err
	}
	derived, err := DIDFromGenesis(op)
	if err != nil {
		return err
	}
	if derived != did {
		return reject(ErrDIDMismatch, "the genesis operation derives %s, not %s", derived, did)
	}
	return nil
}
