package car

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
)

// Multihash codes the reader can verify.
const (
	hashIdentity = 0x00
	hashSHA256   = 0x12
)

// maxCIDLen bounds the binary CID at the start of a section. A sha2-256 CID
// is 36 bytes (34 for CIDv0); the bound only matters for identity CIDs,
// which inline their data in the digest.
const maxCIDLen = 256

// cidInfo is what the reader needs from a section's CID prefix.
type cidInfo struct {
	n         int    // length of the binary CID
	hash      uint64 // multihash function code
	digestOff int    // offset of the digest within the binary CID
}

var errCIDShort = errors.New("CID continues past the available bytes")

// parseCIDPrefix reads the lengths of the binary CID at the start of p:
// CIDv0 (a bare sha2-256 multihash, 12 20 <32 bytes>) or CIDv1 (version,
// codec, multihash code, digest length, digest). It returns errCIDShort when
// p ends before the CID does; cid.Cast validates the rest afterwards.
func parseCIDPrefix(p []byte) (cidInfo, error) {
	if len(p) >= 2 && p[0] == hashSHA256 && p[1] == 32 {
		return cidInfo{n: 34, hash: hashSHA256, digestOff: 2}, nil
	}
	off := 0
	var fields [4]uint64 // version, codec, hash, digest length
	for i := range fields {
		v, n, err := uvarint(p[off:])
		if err == errVarintShort {
			return cidInfo{}, errCIDShort
		}
		if err != nil {
			return cidInfo{}, fmt.Errorf("CID field %d: varint %w", i, err)
		}
		fields[i] = v
		off += n
	}
	if fields[0] != 1 {
		return cidInfo{}, fmt.Errorf("CID version %d", fields[0])
	}
	if fields[3] > maxCIDLen-uint64(off) {
		return cidInfo{}, fmt.Errorf("CID with a %d-byte digest is longer than %d bytes", fields[3], maxCIDLen)
	}
	return cidInfo{n: off + int(fields[3]), hash: fields[2], digestOff: off}, nil
}

// verifyBlock checks that data hashes to c. sha2-256 (with its full 32-byte
// digest) is computed directly; identity CIDs must carry data as their
// digest; any other hash function is refused: atproto uses none, and
// PDS-ref rejects them too.
func verifyBlock(c cid.Cid, info cidInfo, data []byte) error {
	digest := c.KeyString()[info.digestOff:]
	switch info.hash {
	case hashSHA256:
		if len(digest) != sha256.Size {
			return fmt.Errorf("%w: sha2-256 digest of %d bytes, want %d", ErrUnsupportedHash, len(digest), sha256.Size)
		}
		sum := sha256.Sum256(data)
		if string(sum[:]) != digest {
			return fmt.Errorf("%w: %s", ErrHashMismatch, c)
		}
	case hashIdentity:
		if string(data) != digest {
			return fmt.Errorf("%w: identity %s", ErrHashMismatch, c)
		}
	default:
		return fmt.Errorf("%w: multihash code 0x%x in %s", ErrUnsupportedHash, info.hash, c)
	}
	return nil
}
