package dagcbor

import (
	"encoding/binary"
	"math"

	"github.com/ipfs/go-cid"
)

// The Append* functions write canonical DAG-CBOR items to the end of b and
// return the extended slice, in the style of strconv.AppendInt. Hand-written
// encoders of fixed shapes (commits, MST nodes, frames) call them directly and
// must themselves write map keys in canonical order (see CompareKeys).

// appendHead writes an item head in its shortest form.
func appendHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= math.MaxUint8:
		return append(b, m|24, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, m|25), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, m|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, m|27), n)
}

// AppendNull writes null.
func AppendNull(b []byte) []byte { return append(b, 0xf6) }

// AppendBool writes a boolean.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xf5)
	}
	return append(b, 0xf4)
}

// AppendInt writes a signed integer.
func AppendInt(b []byte, v int64) []byte {
	if v < 0 {
		return appendHead(b, majorNegInt, uint64(-1-v))
	}
	return appendHead(b, majorUint, uint64(v))
}

// AppendUint writes a non-negative integer.
func AppendUint(b []byte, v uint64) []byte { return appendHead(b, majorUint, v) }

// AppendText writes a text string. The caller guarantees valid UTF-8.
func AppendText(b []byte, s string) []byte {
	return append(appendHead(b, majorText, uint64(len(s))), s...)
}

// AppendBytes writes a byte string.
func AppendBytes(b []byte, p []byte) []byte {
	return append(appendHead(b, majorBytes, uint64(len(p))), p...)
}

// AppendCID writes a CID link: tag 42 around 0x00 + the binary CID.
func AppendCID(b []byte, c cid.Cid) []byte {
	k := c.KeyString()
	b = append(b, 0xd8, 42)
	b = appendHead(b, majorBytes, uint64(len(k)+1))
	b = append(b, 0x00)
	return append(b, k...)
}

// AppendNullableCID writes c, or null when c is cid.Undef.
func AppendNullableCID(b []byte, c cid.Cid) []byte {
	if !c.Defined() {
		return AppendNull(b)
	}
	return AppendCID(b, c)
}

// AppendArrayHeader writes the head of an array of n elements.
func AppendArrayHeader(b []byte, n int) []byte { return appendHead(b, majorArray, uint64(n)) }

// AppendMapHeader writes the head of a map of n entries.
func AppendMapHeader(b []byte, n int) []byte { return appendHead(b, majorMap, uint64(n)) }
