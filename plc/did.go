package plc

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// identifierLen is the length of a did:plc identifier: 24 base32 characters.
const identifierLen = 24

var base32Lower = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// DIDFromGenesis derives the DID of a signed genesis operation (a regular
// operation with prev null, or a legacy create): "did:plc:" followed by the
// first 24 characters of the lowercase base32 of the SHA-256 of its signed
// DAG-CBOR encoding.
func DIDFromGenesis(op Op) (syntax.DID, error) {
	switch o := op.(type) {
	case *Operation:
		if o.Prev != "" {
			return "", reject(ErrMisordered, "not a genesis operation: prev is %s", o.Prev)
		}
	case *LegacyCreate:
	default:
		return "", reject(ErrMisordered, "a %s cannot be a genesis operation", op.Type())
	}
	if op.Signature() == "" {
		return "", reject(ErrBadSignature, "the DID is derived from the signed genesis operation, and this one is unsigned")
	}
	sum := sha256.Sum256(op.SignedCBOR())
	return syntax.DID("did:plc:" + base32Lower.EncodeToString(sum[:])[:identifierLen]), nil
}

// IsPLC reports whether did has the did:plc syntax: "did:plc:" and 24
// characters of the lowercase base32 alphabet.
func IsPLC(did string) bool {
	id, ok := strings.CutPrefix(did, "did:plc:")
	if !ok || len(id) != identifierLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || '2' <= c && c <= '7') {
			return false
		}
	}
	return true
}
