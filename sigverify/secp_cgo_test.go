//go:build cgo && !gofuzz

package sigverify

import (
	"crypto/sha256"
	"math/big"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/ethereum/go-ethereum/crypto/secp256k1"
)

// TestLibsecp256k1Rules shows that go-ethereum's VerifySignature, on its
// own, already refuses what compactLowS refuses: high S (libsecp256k1's
// secp256k1_ecdsa_verify rejects a non-normalized S) and r or s ≥ n
// (secp256k1_ecdsa_signature_parse_compact reports overflow).
func TestLibsecp256k1Rules(t *testing.T) {
	if !Accelerated {
		t.Fatal("cgo build without the libsecp256k1 path")
	}
	priv, pub := testKey(t)
	msg := []byte("a commit")
	sig, err := priv.HashAndSign(msg)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(msg)
	key := pub.(*atcrypto.PublicKeyK256).UncompressedBytes()
	if !secp256k1.VerifySignature(key, digest[:], sig) {
		t.Fatal("libsecp256k1 refuses a valid low-S signature")
	}
	s := new(big.Int).SetBytes(sig[32:])
	high := withS(sig, new(big.Int).Sub(bigOrder, s))
	if secp256k1.VerifySignature(key, digest[:], high) {
		t.Error("libsecp256k1 accepts the high-S twin")
	}
	if secp256k1.VerifySignature(key, digest[:], withS(sig, bigOrder)) {
		t.Error("libsecp256k1 accepts s=n")
	}
	if secp256k1.VerifySignature(key, digest[:], withR(sig, bigOrder)) {
		t.Error("libsecp256k1 accepts r=n")
	}
	if secp256k1.VerifySignature(key, digest[:], withS(sig, big.NewInt(0))) {
		t.Error("libsecp256k1 accepts s=0")
	}
}
