package plc

import (
	"strings"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/mr-tron/base58"
)

const didKeyPrefix = "did:key:z"

// Multicodec prefixes (varint) of the two key types rotation keys may use.
var (
	multicodecK256 = []byte{0xe7, 0x01}
	multicodecP256 = []byte{0x80, 0x24}
)

// ParseRotationKey parses a rotation key: a did:key of a K-256 or P-256
// public key, in its canonical form (compressed point, the string exactly
// as the key formats itself). Errors wrap ErrBadKey.
func ParseRotationKey(didKey string) (atcrypto.PublicKey, error) {
	pub, err := atcrypto.ParsePublicDIDKey(didKey)
	if err != nil {
		return nil, reject(ErrBadKey, "rotation key %q: %v", didKey, err)
	}
	if pub.DIDKey() != didKey {
		return nil, reject(ErrBadKey, "rotation key %q is not in canonical form (want %q)", didKey, pub.DIDKey())
	}
	return pub, nil
}

// checkDIDKeySyntax is the only check verification methods get: since
// spec v0.2 they may hold any key type, so a did:key prefix and a
// base58btc multibase body are all that is required.
func checkDIDKeySyntax(didKey string) error {
	body, ok := strings.CutPrefix(didKey, didKeyPrefix)
	if !ok {
		return reject(ErrBadKey, "%q is not a did:key with a base58btc body", didKey)
	}
	raw, err := base58.Decode(body)
	if err != nil || len(raw) == 0 {
		return reject(ErrBadKey, "%q is not a did:key with a base58btc body", didKey)
	}
	return nil
}

// keyContext is the JSON-LD context the reference directory adds to a DID
// document for a verification method of this did:key: the suite of its
// curve, or "" for other key types.
func keyContext(didKey string) string {
	body, ok := strings.CutPrefix(didKey, didKeyPrefix)
	if !ok {
		return ""
	}
	raw, err := base58.Decode(body)
	if err != nil || len(raw) < 2 {
		return ""
	}
	switch {
	case raw[0] == multicodecK256[0] && raw[1] == multicodecK256[1]:
		return "https://w3id.org/security/suites/secp256k1-2019/v1"
	case raw[0] == multicodecP256[0] && raw[1] == multicodecP256[1]:
		return "https://w3id.org/security/suites/ecdsa-2019/v1"
	}
	return ""
}
