package sigverify

import (
	"crypto/rand"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"math/big"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

// signatureFixture is one entry of interop/crypto/signature-fixtures.json.
type signatureFixture struct {
	Comment         string   `json:"comment"`
	MessageBase64   string   `json:"messageBase64"`
	Algorithm       string   `json:"algorithm"`
	PublicKeyDid    string   `json:"publicKeyDid"`
	SignatureBase64 string   `json:"signatureBase64"`
	ValidSignature  bool     `json:"validSignature"`
	Tags            []string `json:"tags"`
}

func TestSignatureFixtures(t *testing.T) {
	var fixtures []signatureFixture
	testutil.FixtureJSON(t, "interop/crypto/signature-fixtures.json", &fixtures)
	if len(fixtures) == 0 {
		t.Fatal("no fixtures")
	}
	k256 := 0
	for _, fx := range fixtures {
		t.Run(fx.Comment, func(t *testing.T) {
			key, err := atcrypto.ParsePublicDIDKey(fx.PublicKeyDid)
			if err != nil {
				t.Fatal(err)
			}
			msg := unbase64(t, fx.MessageBase64)
			sig := unbase64(t, fx.SignatureBase64)
			_, isK256 := key.(*atcrypto.PublicKeyK256)
			if isK256 {
				k256++
			}
			err = Verify(key, msg, sig)
			if got := err == nil; got != fx.ValidSignature {
				t.Fatalf("Verify valid=%v (err %v), fixture says %v", got, err, fx.ValidSignature)
			}
			if want := key.HashAndVerify(msg, sig); (err == nil) != (want == nil) {
				t.Errorf("Verify err %v, atcrypto err %v", err, want)
			}
			if isK256 && err != nil && !errors.Is(err, atcrypto.ErrInvalidSignature) {
				t.Errorf("error %v is not atcrypto.ErrInvalidSignature", err)
			}
		})
	}
	if k256 == 0 {
		t.Error("fixtures hold no K-256 key")
	}
}

// unbase64 decodes the fixtures' unpadded standard base64.
func unbase64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testKey makes a fresh K-256 key pair.
func testKey(t testing.TB) (atcrypto.PrivateKey, atcrypto.PublicKey) {
	t.Helper()
	priv, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := priv.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

var bigOrder = new(big.Int).SetBytes(order[:])

func TestHighS(t *testing.T) {
	priv, pub := testKey(t)
	msg := []byte("a commit")
	sig, err := priv.HashAndSign(msg)
	if err != nil {
		t.Fatal(err)
	}
	high := withS(sig, new(big.Int).Sub(bigOrder, new(big.Int).SetBytes(sig[32:])))
	// The high-S form is a valid ECDSA signature: lenient verification passes.
	if err := pub.(*atcrypto.PublicKeyK256).HashAndVerifyLenient(msg, high); err != nil {
		t.Fatalf("lenient check refuses the high-S twin: %v", err)
	}
	if err := Verify(pub, msg, sig); err != nil {
		t.Fatalf("low-S signature refused: %v", err)
	}
	if err := Verify(pub, msg, high); !errors.Is(err, atcrypto.ErrInvalidSignature) {
		t.Fatalf("high-S signature: got %v, want ErrInvalidSignature", err)
	}
}

// withS returns a copy of sig with s set to v.
func withS(sig []byte, v *big.Int) []byte {
	out := append([]byte(nil), sig...)
	v.FillBytes(out[32:64])
	return out
}

// withR returns a copy of sig with r set to v.
func withR(sig []byte, v *big.Int) []byte {
	out := append([]byte(nil), sig...)
	v.FillBytes(out[:32])
	return out
}

func TestDER(t *testing.T) {
	priv, pub := testKey(t)
	msg := []byte("a commit")
	sig, err := priv.HashAndSign(msg)
	if err != nil {
		t.Fatal(err)
	}
	der, err := asn1.Marshal(struct{ R, S *big.Int }{
		new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:]),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(pub, msg, der); !errors.Is(err, atcrypto.ErrInvalidSignature) {
		t.Fatalf("DER signature: got %v, want ErrInvalidSignature", err)
	}
}

// TestEdgeSignatures checks scalars at and around the range limits, and
// lengths around 64, against the rule: valid iff 64 bytes, 0<r<n, 0<s≤n/2
// and the arithmetic agrees. Only the untouched signature is valid.
func TestEdgeSignatures(t *testing.T) {
	priv, pub := testKey(t)
	msg := []byte("edge")
	sig, err := priv.HashAndSign(msg)
	if err != nil {
		t.Fatal(err)
	}
	one := big.NewInt(1)
	half := new(big.Int).SetBytes(halfOrder[:])

	cases := map[string][]byte{
		"r=0":            withR(sig, big.NewInt(0)),
		"r=n":            withR(sig, bigOrder),
		"r=2^256-1":      withR(sig, new(big.Int).Sub(new(big.Int).Lsh(one, 256), one)),
		"r=n-1":          withR(sig, new(big.Int).Sub(bigOrder, one)),
		"s=0":            withS(sig, big.NewInt(0)),
		"s=n":            withS(sig, bigOrder),
		"s=n/2":          withS(sig, half),
		"s=n/2+1":        withS(sig, new(big.Int).Add(half, one)),
		"s=1":            withS(sig, one),
		"r=s=0":          make([]byte, 64),
		"all ff":         bytesOf(0xff, 64),
		"empty":          nil,
		"63 bytes":       sig[:63],
		"65 bytes":       append(append([]byte(nil), sig...), 0),
		"65 recoverable": append(append([]byte(nil), sig...), 1),
	}
	for name, bad := range cases {
		want := pub.HashAndVerify(msg, bad)
		got := Verify(pub, msg, bad)
		if got == nil || want == nil {
			t.Errorf("%s: Verify=%v atcrypto=%v, both should refuse", name, got, want)
		}
	}
	if err := Verify(pub, msg, sig); err != nil {
		t.Errorf("untouched signature refused: %v", err)
	}
}

func bytesOf(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// TestCompactLowS compares the range check with a math/big model.
func TestCompactLowS(t *testing.T) {
	half := new(big.Int).Rsh(bigOrder, 1)
	if got := new(big.Int).SetBytes(halfOrder[:]); got.Cmp(half) != 0 {
		t.Fatalf("halfOrder = %x, want %x", got, half)
	}
	model := func(sig []byte) bool {
		if len(sig) != 64 {
			return false
		}
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return r.Sign() > 0 && r.Cmp(bigOrder) < 0 && s.Sign() > 0 && s.Cmp(half) <= 0
	}
	one := big.NewInt(1)
	var inputs [][]byte
	for _, r := range []*big.Int{big.NewInt(0), one, new(big.Int).Sub(bigOrder, one), bigOrder, new(big.Int).Add(bigOrder, one)} {
		for _, s := range []*big.Int{big.NewInt(0), one, half, new(big.Int).Add(half, one), bigOrder} {
			inputs = append(inputs, withS(withR(make([]byte, 64), r), s))
		}
	}
	for range 2000 {
		sig := make([]byte, 64)
		rand.Read(sig)
		sig[0] >>= uint(sig[1] % 8) // reach both sides of n and n/2
		sig[32] >>= uint(sig[33] % 8)
		inputs = append(inputs, sig)
	}
	for _, sig := range inputs {
		if got, want := compactLowS(sig), model(sig); got != want {
			t.Errorf("compactLowS(%x) = %v, model says %v", sig, got, want)
		}
	}
}

// TestRandomAgree signs random messages and checks the verdict of Verify
// and atcrypto on the signature, on another message, and on random bytes.
func TestRandomAgree(t *testing.T) {
	priv, pub := testKey(t)
	_, other := testKey(t)
	for i := range 50 {
		msg := make([]byte, i*7)
		rand.Read(msg)
		sig, err := priv.HashAndSign(msg)
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(pub, msg, sig); err != nil {
			t.Fatalf("valid signature refused: %v", err)
		}
		if err := Verify(other, msg, sig); err == nil {
			t.Fatal("signature accepted under another key")
		}
		if err := Verify(pub, append(msg, 0), sig); err == nil {
			t.Fatal("signature accepted for another message")
		}
		junk := make([]byte, 64)
		rand.Read(junk)
		if err := Verify(pub, msg, junk); err == nil {
			t.Fatal("random bytes accepted as a signature")
		}
	}
}

func TestP256FallsBack(t *testing.T) {
	priv, err := atcrypto.GeneratePrivateKeyP256()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := priv.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("p-256 commit")
	sig, err := priv.HashAndSign(msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(pub, msg, sig); err != nil {
		t.Fatalf("valid P-256 signature refused: %v", err)
	}
	if err := Verify(pub, []byte("other"), sig); !errors.Is(err, atcrypto.ErrInvalidSignature) {
		t.Fatalf("wrong message: got %v, want ErrInvalidSignature", err)
	}
}

func TestNoKey(t *testing.T) {
	if err := Verify(nil, []byte("m"), make([]byte, 64)); !errors.Is(err, ErrNoKey) {
		t.Errorf("nil key: got %v, want ErrNoKey", err)
	}
	var k *atcrypto.PublicKeyK256
	if err := Verify(k, []byte("m"), make([]byte, 64)); !errors.Is(err, ErrNoKey) {
		t.Errorf("nil *PublicKeyK256: got %v, want ErrNoKey", err)
	}
}

func TestImports(t *testing.T) {
	testutil.CheckImports(t, ".",
		"github.com/bluesky-social/indigo/atproto/atcrypto",
		"github.com/ethereum/go-ethereum/crypto/secp256k1")
}
