package sigverify

import (
	"math/big"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
)

// FuzzVerifyAgrees is the differential check: for one of a few fixed keys,
// a message, and a mutation of that key's real signature of the message,
// Verify and atcrypto's HashAndVerify reach the same verdict.
//
// mutation selects what happens to the signature: 0 keeps it, 1 flips the
// bit at pos, 2 makes S high (n-s), 3 sets byte pos to val, 4 truncates it
// to pos%80 bytes, 5 verifies it against another message, 6 replaces it
// with the raw bytes of extra.
func FuzzVerifyAgrees(f *testing.F) {
	keys := make([]atcrypto.PrivateKey, 3)
	for i := range keys {
		priv, err := atcrypto.GeneratePrivateKeyK256()
		if err != nil {
			f.Fatal(err)
		}
		keys[i] = priv
	}
	pubs := make([]atcrypto.PublicKey, len(keys))
	for i, k := range keys {
		pub, err := k.PublicKey()
		if err != nil {
			f.Fatal(err)
		}
		pubs[i] = pub
	}
	seeds := []struct {
		msg                     string
		key, mutation, pos, val uint8
		extra                   []byte
	}{
		{"a commit", 0, 0, 0, 0, nil},
		{"a commit", 1, 1, 40, 0, nil},
		{"", 2, 2, 0, 0, nil},
		{"x", 0, 3, 63, 0xff, nil},
		{"x", 0, 3, 0, 0xff, nil},
		{"y", 1, 4, 63, 0, nil},
		{"y", 1, 4, 70, 0, nil},
		{"z", 2, 5, 0, 0, nil},
		{"z", 2, 6, 0, 0, make([]byte, 64)},
		{"z", 0, 6, 0, 0, bytesOf(0xff, 64)},
	}
	for _, s := range seeds {
		f.Add([]byte(s.msg), s.key, s.mutation, s.pos, s.val, s.extra)
	}
	f.Fuzz(func(t *testing.T, msg []byte, key, mutation, pos, val uint8, extra []byte) {
		priv, pub := keys[int(key)%len(keys)], pubs[int(key)%len(keys)]
		sig, err := priv.HashAndSign(msg)
		if err != nil {
			t.Fatal(err)
		}
		checked := msg
		switch mutation % 7 {
		case 1:
			sig[int(pos)%len(sig)] ^= 1 << (val % 8)
		case 2:
			sig = withS(sig, new(big.Int).Sub(bigOrder, new(big.Int).SetBytes(sig[32:])))
		case 3:
			sig[int(pos)%len(sig)] = val
		case 4:
			n := int(pos) % 80
			if n <= len(sig) {
				sig = sig[:n]
			} else {
				sig = append(sig, make([]byte, n-len(sig))...)
			}
		case 5:
			checked = append(append([]byte(nil), msg...), val)
		case 6:
			sig = extra
		}
		got := Verify(pub, checked, sig)
		want := pub.HashAndVerify(checked, sig)
		if (got == nil) != (want == nil) {
			t.Fatalf("Verify=%v atcrypto=%v for sig %x msg %x", got, want, sig, checked)
		}
		if mutation%7 == 0 && got != nil {
			t.Fatalf("untouched signature refused: %v", got)
		}
	})
}
