package dagcbor

import (
	"crypto/sha256"

	"github.com/ipfs/go-cid"
)

// Multicodec codes of the two CID kinds atproto uses.
const (
	CodecDagCBOR = 0x71 // records, MST nodes, commits
	CodecRaw     = 0x55 // blobs
)

// SumCBOR returns the CIDv1 (dag-cbor, sha2-256) of an encoded block.
func SumCBOR(data []byte) cid.Cid { return sum(CodecDagCBOR, data) }

// SumRaw returns the CIDv1 (raw, sha2-256) of blob bytes.
func SumRaw(data []byte) cid.Cid { return sum(CodecRaw, data) }

// sum builds the 36-byte binary CID directly; go-cid's Prefix.Sum goes
// through the multihash registry and allocates several times per call.
func sum(codec byte, data []byte) cid.Cid {
	d := sha256.Sum256(data)
	var b [36]byte
	b[0], b[1], b[2], b[3] = 0x01, codec, 0x12, 0x20
	copy(b[4:], d[:])
	c, err := cid.Cast(b[:])
	if err != nil {
		panic("dagcbor: building a sha2-256 CID failed: " + err.Error())
	}
	return c
}

// IsBlessed reports whether c has the form atproto requires for new links:
// CIDv1, sha2-256 with a 32-byte digest, and the given codec.
func IsBlessed(c cid.Cid, codec uint64) bool {
	b := c.KeyString()
	return len(b) == 36 && b[0] == 0x01 && uint64(b[1]) == codec && b[2] == 0x12 && b[3] == 0x20
}
