package plc_test

import (
	"crypto/elliptic"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"

	"github.com/reservoir-atproto/reservoir/plc"
)

// secp256k1's group order (SEC 2).
var k256Order, _ = new(big.Int).SetString("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16)

// highS returns the other valid signature of the same (r, s): (r, n-s).
func highS(sig string, order *big.Int) string {
	raw, _ := base64.RawURLEncoding.DecodeString(sig)
	s := new(big.Int).SetBytes(raw[32:])
	s.Sub(order, s)
	out := append(raw[:32:32], s.FillBytes(make([]byte, 32))...)
	return base64.RawURLEncoding.EncodeToString(out)
}

func TestSignAndVerify(t *testing.T) {
	for _, k := range []key{newK256(t), newP256(t)} {
		op, _ := genesis(t, k, k)
		if len(op.Sig) != 86 {
			t.Fatalf("signature of %d characters, want 86", len(op.Sig))
		}
		got, err := plc.VerifySignature(op, []string{newK256(t).did(), k.did()})
		if err != nil || got != k.did() {
			t.Fatalf("VerifySignature = %q, %v; want the signing key", got, err)
		}
		if _, err := plc.VerifySignature(op, []string{newP256(t).did(), newK256(t).did()}); err == nil {
			t.Fatal("verified against keys that did not sign")
		}
		op.AlsoKnownAs[0] = "at://mallory.test"
		_, err = plc.VerifySignature(op, []string{k.did()})
		wantKind(t, err, plc.ErrBadSignature)
	}
}

// Each non-canonical form of a valid signature is refused: a second
// encoding of the same signature would give the operation a second CID.
func TestSignatureEncodingStrict(t *testing.T) {
	k, p := newK256(t), newP256(t)
	kop, _ := genesis(t, k, k)
	// The "standard base64 alphabet" case needs a signature whose URL-safe
	// encoding has a '-' or '_' to swap (about 1 in 16 has neither).
	for !strings.ContainsAny(kop.Sig, "-_") {
		k = newK256(t)
		kop, _ = genesis(t, k, k)
	}
	pop, _ := genesis(t, p, p)
	// flipLowBit sets the lowest bit of the last character's 6-bit value:
	// one of the 4 bits past the 512 of the signature.
	flipLowBit := func(s string) string {
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		i := strings.IndexByte(alphabet, s[len(s)-1])
		return s[:len(s)-1] + string(alphabet[i^1])
	}
	cases := []struct {
		name string
		op   *plc.Operation
		key  key
		sig  string
	}{
		{"high-S K-256", kop, k, highS(kop.Sig, k256Order)},
		{"high-S P-256", pop, p, highS(pop.Sig, elliptic.P256().Params().N)},
		{"padding", kop, k, kop.Sig + "=="},
		{"standard base64 alphabet", kop, k, strings.NewReplacer("-", "+", "_", "/").Replace(kop.Sig)},
		{"trailing bits set", kop, k, flipLowBit(kop.Sig)},
		{"newline inside", kop, k, kop.Sig[:40] + "\n" + kop.Sig[40:85]},
		{"too short", kop, k, kop.Sig[:84]},
		{"empty", kop, k, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			op := tc.op.Clone()
			op.Sig = tc.sig
			_, err := plc.VerifySignature(op, []string{tc.key.did()})
			wantKind(t, err, plc.ErrBadSignature)
		})
	}
	// The high-S forms are mathematically valid: it is the low-S rule that
	// refuses them, not a broken signature.
	for _, c := range cases[:2] {
		raw, _ := base64.RawURLEncoding.DecodeString(c.sig)
		if err := c.key.pub.HashAndVerifyLenient(c.op.UnsignedCBOR(), raw); err != nil {
			t.Errorf("%s: the flipped signature does not verify leniently: %v", c.name, err)
		}
	}
	// "trailing bits set" must differ only in bits the decoder would drop.
	a, _ := base64.RawURLEncoding.DecodeString(kop.Sig)
	b, err := base64.RawURLEncoding.DecodeString(cases[4].sig) // lenient: ignores those bits
	if err != nil || string(a) != string(b) {
		t.Fatal("test bug: the trailing-bits case changed the signature bytes")
	}
}

// Sign replaces an existing signature instead of signing over it.
func TestSignReplaces(t *testing.T) {
	k := newK256(t)
	op, _ := genesis(t, k, k)
	op.Sig = "garbage"
	sign(t, op, k)
	if _, err := plc.VerifySignature(op, []string{k.did()}); err != nil {
		t.Fatalf("re-signed operation does not verify: %v", err)
	}
}
