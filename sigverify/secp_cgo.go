//go:build cgo && !gofuzz

package sigverify

import (
	"crypto/sha256"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/ethereum/go-ethereum/crypto/secp256k1"
)

// Accelerated reports whether K-256 signatures are verified by
// libsecp256k1 (true in cgo builds).
const Accelerated = true

// verifyK256 checks sig with libsecp256k1 after the compact/low-S rules.
func verifyK256(k *atcrypto.PublicKeyK256, msg, sig []byte) error {
	if !compactLowS(sig) {
		return fmt.Errorf("sigverify: %w", atcrypto.ErrInvalidSignature)
	}
	digest := sha256.Sum256(msg)
	if !secp256k1.VerifySignature(uncompressed(k), digest[:], sig) {
		return fmt.Errorf("sigverify: %w", atcrypto.ErrInvalidSignature)
	}
	return nil
}
