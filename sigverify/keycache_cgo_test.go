//go:build cgo && !gofuzz

package sigverify

import (
	"errors"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
)

// The cache of uncompressed encodings stays within its bound, and a key
// met again (cached) or after its eviction still verifies its own
// signatures and refuses another key's.
func TestUncompressedKeyCache(t *testing.T) {
	old := maxCachedKeys
	maxCachedKeys = 3
	defer func() { maxCachedKeys = old }()

	type signer struct {
		pub *atcrypto.PublicKeyK256
		sig []byte
	}
	msg := []byte("a commit")
	var signers []signer
	for range 5 {
		priv, pub := testKey(t)
		sig, err := priv.HashAndSign(msg)
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, signer{pub.(*atcrypto.PublicKeyK256), sig})
	}
	for round := range 3 {
		for i, s := range signers {
			if err := Verify(s.pub, msg, s.sig); err != nil {
				t.Fatalf("round %d, key %d: own signature refused: %v", round, i, err)
			}
			other := signers[(i+1)%len(signers)]
			if err := Verify(s.pub, msg, other.sig); !errors.Is(err, atcrypto.ErrInvalidSignature) {
				t.Fatalf("round %d, key %d: another key's signature: %v", round, i, err)
			}
			uncompressedKeys.Lock()
			n := len(uncompressedKeys.m)
			uncompressedKeys.Unlock()
			if n > maxCachedKeys {
				t.Fatalf("%d keys cached, bound %d", n, maxCachedKeys)
			}
		}
	}
	for _, s := range signers {
		if got, want := uncompressed(s.pub), s.pub.UncompressedBytes(); string(got) != string(want) {
			t.Fatalf("cached encoding %x, want %x", got, want)
		}
	}
}
