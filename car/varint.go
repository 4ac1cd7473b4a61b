package car

import "errors"

// Varints in CAR files (section and header lengths, and the fields of a
// binary CID) are multiformats unsigned varints: little-endian base-128
// (LEB128), at most 9 bytes (63 bits), and minimal — a last byte of 0x00
// after another byte would encode the same number in more bytes than needed,
// which is refused so that every length has exactly one encoding.
const maxVarintLen = 9

var (
	errVarintNonMinimal = errors.New("not minimally encoded")
	errVarintOverlong   = errors.New("longer than 9 bytes")
	errVarintShort      = errors.New("ends early")
)

// uvarintLen is the number of bytes of the varint encoding of x.
func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// uvarint decodes a varint at the start of p, returning its value and
// length. errVarintShort means p ends before the varint does.
func uvarint(p []byte) (uint64, int, error) {
	var x uint64
	for i := 0; i < maxVarintLen; i++ {
		if i == len(p) {
			return 0, 0, errVarintShort
		}
		b := p[i]
		if b < 0x80 {
			if b == 0 && i > 0 {
				return 0, 0, errVarintNonMinimal
			}
			return x | uint64(b)<<(7*i), i + 1, nil
		}
		x |= uint64(b&0x7f) << (7 * i)
	}
	return 0, 0, errVarintOverlong
}
