package plc

import (
	"encoding/base64"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
)

// sigLen is the length of a signature's base64url form: 64 bytes, no padding.
const sigLen = 86

var sigEncoding = base64.RawURLEncoding.Strict()

// Sign signs op with key and sets its "sig": ECDSA over SHA-256 of the
// DAG-CBOR encoding without "sig", as 64-byte low-S r‖s in base64url
// without padding. Any previous signature is replaced.
func Sign(op Op, key atcrypto.PrivateKey) error {
	op.setSig("")
	sig, err := key.HashAndSign(op.UnsignedCBOR())
	if err != nil {
		return fmt.Errorf("plc: sign %s: %w", op.Type(), err)
	}
	op.setSig(sigEncoding.EncodeToString(sig))
	return nil
}

// VerifySignature checks op's signature against the allowed rotation keys
// in order and returns the first key that verifies it. The signature must
// be canonical: exactly 86 base64url characters without padding and with
// zero trailing bits, decoding to 64 bytes, with a low S. Errors wrap
// ErrBadSignature, or ErrBadKey if an allowed key does not parse.
func VerifySignature(op Op, allowed []string) (string, error) {
	sig, err := decodeSig(op.Signature())
	if err != nil {
		return "", err
	}
	msg := op.UnsignedCBOR()
	for _, k := range allowed {
		pub, err := ParseRotationKey(k)
		if err != nil {
			return "", err
		}
		if pub.HashAndVerify(msg, sig) == nil {
			return k, nil
		}
	}
	return "", reject(ErrBadSignature, "%s %s is not signed by any of %d allowed rotation keys", op.Type(), op.CID(), len(allowed))
}

func decodeSig(s string) ([]byte, error) {
	if len(s) != sigLen {
		return nil, reject(ErrBadSignature, "sig must be %d base64url characters without padding, got %d", sigLen, len(s))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, reject(ErrBadSignature, "sig has a character outside base64url at %d", i)
		}
	}
	sig, err := sigEncoding.DecodeString(s)
	if err != nil {
		return nil, reject(ErrBadSignature, "sig is not canonical base64url: %v", err)
	}
	return sig, nil
}
