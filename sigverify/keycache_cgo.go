//go:build cgo && !gofuzz

package sigverify

import (
	"sync"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
)

// maxCachedKeys bounds the uncompressed encodings kept (about 100 bytes
// each with the map's overhead: ≈6.5 MB when full).
var maxCachedKeys = 65_536

// uncompressedKeys remembers the 65-byte uncompressed encoding of the keys
// verified recently. atcrypto computes it on every call (a field inversion:
// ≈8 µs of the ≈50 µs a commit's signature costs on the relay ingest
// benchmark), while a relay meets the same key, the same parsed
// *PublicKeyK256 held by the identity cache, on every commit of an account.
// Entries are keyed by the pointer, which the map keeps alive, so an address
// is never reused for another key while it is cached. When full, one
// arbitrary entry makes room for each new one.
var uncompressedKeys = struct {
	sync.Mutex
	m map[*atcrypto.PublicKeyK256][]byte
}{m: make(map[*atcrypto.PublicKeyK256][]byte)}

// uncompressed returns k's uncompressed encoding, from the cache when it
// can. The slice must not be modified.
func uncompressed(k *atcrypto.PublicKeyK256) []byte {
	uncompressedKeys.Lock()
	b, ok := uncompressedKeys.m[k]
	uncompressedKeys.Unlock()
	if ok {
		return b
	}
	b = k.UncompressedBytes()
	uncompressedKeys.Lock()
	if len(uncompressedKeys.m) >= maxCachedKeys {
		for old := range uncompressedKeys.m {
			delete(uncompressedKeys.m, old)
			break
		}
	}
	uncompressedKeys.m[k] = b
	uncompressedKeys.Unlock()
	return b
}
