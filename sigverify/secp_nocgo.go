//go:build !cgo || gofuzz

package sigverify

import "github.com/bluesky-social/indigo/atproto/atcrypto"

// Accelerated reports whether K-256 signatures are verified by
// libsecp256k1 (false here: built without cgo, so atcrypto does it).
const Accelerated = false

// verifyK256 is never called when Accelerated is false.
func verifyK256(k *atcrypto.PublicKeyK256, msg, sig []byte) error {
	return k.HashAndVerify(msg, sig)
}
