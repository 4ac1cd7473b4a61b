package sigverify

import (
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
)

// BenchmarkVerify compares Verify with atcrypto's HashAndVerify on a
// commit-sized (≈150-byte) message.
func BenchmarkVerify(b *testing.B) {
	msg := make([]byte, 150)
	for i := range msg {
		msg[i] = byte(i)
	}
	gen := map[string]func() (atcrypto.PrivateKey, error){
		"K-256": func() (atcrypto.PrivateKey, error) { return atcrypto.GeneratePrivateKeyK256() },
		"P-256": func() (atcrypto.PrivateKey, error) { return atcrypto.GeneratePrivateKeyP256() },
	}
	for _, curve := range []string{"K-256", "P-256"} {
		priv, err := gen[curve]()
		if err != nil {
			b.Fatal(err)
		}
		pub, err := priv.PublicKey()
		if err != nil {
			b.Fatal(err)
		}
		sig, err := priv.HashAndSign(msg)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(curve+"/sigverify", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := Verify(pub, msg, sig); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(curve+"/atcrypto", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := pub.HashAndVerify(msg, sig); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
