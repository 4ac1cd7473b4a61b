package conformance

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/mr-tron/base58"

	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

type signatureFixture struct {
	Comment            string   `json:"comment"`
	MessageBase64      string   `json:"messageBase64"`
	Algorithm          string   `json:"algorithm"`
	DIDDocSuite        string   `json:"didDocSuite"`
	PublicKeyDID       string   `json:"publicKeyDid"`
	PublicKeyMultibase string   `json:"publicKeyMultibase"`
	SignatureBase64    string   `json:"signatureBase64"`
	ValidSignature     bool     `json:"validSignature"`
	Tags               []string `json:"tags"`
}

// The message every signature fixture signs: DAG-CBOR {"hello": "world"}.
const helloWorldCBOR = "a16568656c6c6f65776f726c64"

func TestSignatureFixtures(t *testing.T) {
	var rows []signatureFixture
	testutil.FixtureJSON(t, "interop/crypto/signature-fixtures.json", &rows)
	if len(rows) != 6 {
		t.Fatalf("%d signature fixtures, want 6", len(rows))
	}
	for _, row := range rows {
		t.Run(row.Comment, func(t *testing.T) { checkSignatureFixture(t, row) })
	}
}

func checkSignatureFixture(t *testing.T, row signatureFixture) {
	// Fixture fields are base64 without padding.
	msg, err := base64.RawStdEncoding.DecodeString(row.MessageBase64)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(msg) != helloWorldCBOR {
		t.Fatalf("message %x, want %s", msg, helloWorldCBOR)
	}
	sig, err := base64.RawStdEncoding.DecodeString(row.SignatureBase64)
	if err != nil {
		t.Fatal(err)
	}

	fromDID, err := atcrypto.ParsePublicDIDKey(row.PublicKeyDID)
	if err != nil {
		t.Fatalf("ParsePublicDIDKey: %v", err)
	}
	// publicKeyMultibase is 'z' + base58btc of the compressed point, with no
	// multicodec prefix: the curve comes from the algorithm.
	if row.PublicKeyMultibase == "" || row.PublicKeyMultibase[0] != 'z' {
		t.Fatalf("multibase %q is not base58btc", row.PublicKeyMultibase)
	}
	raw, err := base58.Decode(row.PublicKeyMultibase[1:])
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 33 {
		t.Fatalf("compressed key is %d bytes, want 33", len(raw))
	}
	var fromBytes atcrypto.PublicKey
	var wantPrefix string
	switch row.Algorithm {
	case "ES256":
		fromBytes, err = atcrypto.ParsePublicBytesP256(raw)
		wantPrefix = "did:key:zDna"
	case "ES256K":
		fromBytes, err = atcrypto.ParsePublicBytesK256(raw)
		wantPrefix = "did:key:zQ3s"
	default:
		t.Fatalf("unknown algorithm %q", row.Algorithm)
	}
	if err != nil {
		t.Fatalf("parsing compressed key: %v", err)
	}

	if !fromDID.Equal(fromBytes) || !fromBytes.Equal(fromDID) {
		t.Error("did:key and multibase keys differ")
	}
	if got := fromDID.DIDKey(); got != row.PublicKeyDID {
		t.Errorf("did:key round trip: %s, want %s", got, row.PublicKeyDID)
	}
	if got := fromBytes.DIDKey(); got != row.PublicKeyDID {
		t.Errorf("did:key from compressed bytes: %s, want %s", got, row.PublicKeyDID)
	}
	if got := fromDID.DIDKey(); len(got) < len(wantPrefix) || got[:len(wantPrefix)] != wantPrefix {
		t.Errorf("did:key %s lacks the %s prefix of its curve", got, wantPrefix)
	}
	if !slices.Equal(fromDID.Bytes(), raw) {
		t.Errorf("compressed bytes %x, want %x", fromDID.Bytes(), raw)
	}

	for name, key := range map[string]atcrypto.PublicKey{"did:key": fromDID, "multibase": fromBytes} {
		err := key.HashAndVerify(msg, sig)
		if row.ValidSignature && err != nil {
			t.Errorf("%s: valid signature rejected: %v", name, err)
		}
		if !row.ValidSignature && err == nil {
			t.Errorf("%s: invalid signature accepted", name)
		}
	}

	// Why the invalid ones are invalid: a high-S signature is mathematically
	// correct (the lenient check accepts it, so only the low-S rule rejects
	// it); a DER signature is not the 64-byte compact form at all.
	switch {
	case slices.Contains(row.Tags, "high-s"):
		if err := fromDID.HashAndVerifyLenient(msg, sig); err != nil {
			t.Errorf("high-S signature should verify leniently: %v", err)
		}
	case slices.Contains(row.Tags, "der-encoded"):
		if len(sig) == 64 {
			t.Error("DER fixture signature is 64 bytes")
		}
		if err := fromDID.HashAndVerifyLenient(msg, sig); err == nil {
			t.Error("DER signature verified leniently")
		}
	default:
		if !row.ValidSignature {
			t.Errorf("invalid fixture without a known tag: %v", row.Tags)
		}
	}

	// Signatures do not verify other messages, and random signatures do not
	// verify this message.
	other := slices.Clone(msg)
	other[len(other)-1] ^= 1
	if err := fromDID.HashAndVerify(other, sig); err == nil {
		t.Error("signature verified a different message")
	}
	if err := fromDID.HashAndVerify(randomBytes(t, 32), sig); err == nil {
		t.Error("signature verified a random message")
	}
	if err := fromDID.HashAndVerify(msg, randomBytes(t, 64)); err == nil {
		t.Error("random 64-byte signature verified")
	}
	if err := fromDID.HashAndVerify(msg, []byte{1, 2, 3}); err == nil {
		t.Error("3-byte signature verified")
	}
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

type didKeyFixture struct {
	PrivateKeyBytesHex    string `json:"privateKeyBytesHex"`
	PrivateKeyBytesBase58 string `json:"privateKeyBytesBase58"`
	PublicDIDKey          string `json:"publicDidKey"`
}

func TestW3CDIDKeyFixtures(t *testing.T) {
	for _, c := range []struct {
		file  string
		rows  int
		parse func([]byte) (atcrypto.PrivateKey, error)
	}{
		{"interop/crypto/w3c_didkey_K256.json", 5, func(b []byte) (atcrypto.PrivateKey, error) { return atcrypto.ParsePrivateBytesK256(b) }},
		{"interop/crypto/w3c_didkey_P256.json", 1, func(b []byte) (atcrypto.PrivateKey, error) { return atcrypto.ParsePrivateBytesP256(b) }},
	} {
		var rows []didKeyFixture
		testutil.FixtureJSON(t, c.file, &rows)
		if len(rows) != c.rows {
			t.Fatalf("%s: %d rows, want %d", c.file, len(rows), c.rows)
		}
		for _, row := range rows {
			var raw []byte
			var err error
			switch {
			case row.PrivateKeyBytesHex != "":
				raw, err = hex.DecodeString(row.PrivateKeyBytesHex)
			case row.PrivateKeyBytesBase58 != "":
				raw, err = base58.Decode(row.PrivateKeyBytesBase58)
			default:
				t.Fatalf("%s: row without a private key", c.file)
			}
			if err != nil {
				t.Fatal(err)
			}
			priv, err := c.parse(raw)
			if err != nil {
				t.Fatalf("%s: private key: %v", c.file, err)
			}
			pub, err := priv.PublicKey()
			if err != nil {
				t.Fatal(err)
			}
			if got := pub.DIDKey(); got != row.PublicDIDKey {
				t.Errorf("%s: did:key %s, want %s", c.file, got, row.PublicDIDKey)
			}
			parsed, err := atcrypto.ParsePublicDIDKey(row.PublicDIDKey)
			if err != nil {
				t.Fatalf("%s: ParsePublicDIDKey(%s): %v", c.file, row.PublicDIDKey, err)
			}
			if !parsed.Equal(pub) {
				t.Errorf("%s: parsed did:key differs from the derived public key", c.file)
			}
			// A signature made with the fixture's private key verifies under
			// the key parsed from the fixture's did:key.
			msg := []byte("reservoir conformance")
			sig, err := priv.HashAndSign(msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := parsed.HashAndVerify(msg, sig); err != nil {
				t.Errorf("%s: own signature rejected: %v", c.file, err)
			}
		}
	}
}
