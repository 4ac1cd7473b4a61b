// Package sigverify checks atproto commit signatures, using libsecp256k1
// (through cgo) for K-256 keys where it can and atcrypto otherwise.
//
// # Why
//
// A relay verifies the signature of every #commit it ingests. indigo's
// atcrypto verifies K-256 (secp256k1) signatures in pure Go in ≈100–170 µs;
// libsecp256k1, reached through go-ethereum's cgo binding
// (github.com/ethereum/go-ethereum/crypto/secp256k1), does the same check in
// roughly half that. See BENCHMARKS.md for the measured numbers.
//
// # What is accepted
//
// [Verify] makes exactly the decisions atcrypto's HashAndVerify makes:
//
//   - the message is hashed with SHA-256 and the digest is verified;
//   - the signature is the 64-byte compact form r||s, big-endian; DER
//     (ASN.1) signatures and any other length are refused;
//   - r and s must both lie in [1, n), n the group order;
//   - s must be "low": s ≤ n/2 (floor). atproto requires it so that a
//     signature cannot be turned into a second valid one by negating s.
//
// The length, range and low-S rules are checked here, in Go, before
// libsecp256k1 is called, so the equivalence does not hang on the C
// library's parsing details. libsecp256k1 enforces them as well
// (secp256k1_ecdsa_signature_parse_compact refuses r or s ≥ n, and
// secp256k1_ecdsa_verify refuses a non-normalized, high S); the tests show
// both layers.
//
// A refused K-256 signature yields [atcrypto.ErrInvalidSignature] (wrapped),
// the sentinel atcrypto returns, on both paths; other key types return
// whatever their HashAndVerify returns, wrapped.
//
// # Which path runs
//
// K-256 keys (*atcrypto.PublicKeyK256) use libsecp256k1 when the binary is
// built with cgo ([Accelerated] is true). Builds without cgo
// (CGO_ENABLED=0), or with the gofuzz tag that go-ethereum's binding
// excludes, fall back to key.HashAndVerify; so does every other key type
// (P-256). Keys are still parsed by atcrypto: only the verification
// arithmetic moves.
//
// # The key cache
//
// libsecp256k1 takes the key in its 65-byte uncompressed form, which
// atcrypto recomputes on every call (a field inversion, ≈8 µs). The cgo path
// keeps the encodings of up to 65,536 recently used keys, by the parsed
// key's pointer (keycache_cgo.go): a relay verifies every commit of an
// account with the one key its identity cache holds. It is a memo of a pure
// function, bounded, and the only state of the package.
//
// # Concurrency
//
// [Verify] is safe for concurrent use. The libsecp256k1 context that
// go-ethereum creates at init is read-only during verification.
package sigverify
