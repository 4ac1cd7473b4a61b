package sigverify

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
)

// ErrNoKey is returned when Verify is given no key to check against.
var ErrNoKey = errors.New("sigverify: no public key")

// compactSize is the length of an r||s signature.
const compactSize = 64

// order is n, the order of the secp256k1 group, big-endian.
var order = [32]byte{
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
	0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b,
	0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
}

// halfOrder is floor(n/2): the largest s atproto accepts.
var halfOrder = [32]byte{
	0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d,
	0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
}

var zero [32]byte

// Verify checks that sig is key's signature of msg under atproto's rules
// (SHA-256, compact r||s, low S). It accepts and rejects exactly what
// key.HashAndVerify does, and returns atcrypto.ErrInvalidSignature for a
// signature that does not verify.
func Verify(key atcrypto.PublicKey, msg, sig []byte) error {
	switch k := key.(type) {
	case nil:
		return ErrNoKey
	case *atcrypto.PublicKeyK256:
		if k == nil {
			return ErrNoKey
		}
		if Accelerated {
			return verifyK256(k, msg, sig)
		}
	}
	if err := key.HashAndVerify(msg, sig); err != nil {
		return fmt.Errorf("sigverify: %w", err)
	}
	return nil
}

// compactLowS reports whether sig is a 64-byte r||s with r in [1, n) and s
// in [1, n/2]: the signatures atcrypto passes on to the curve arithmetic.
func compactLowS(sig []byte) bool {
	if len(sig) != compactSize {
		return false
	}
	r, s := sig[:32], sig[32:]
	if bytes.Equal(r, zero[:]) || bytes.Compare(r, order[:]) >= 0 {
		return false
	}
	return !bytes.Equal(s, zero[:]) && bytes.Compare(s, halfOrder[:]) <= 0
}
