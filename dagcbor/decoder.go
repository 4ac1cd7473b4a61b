package dagcbor

import (
	"encoding/binary"
	"math"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
)

// CBOR major types.
const (
	majorUint   = 0
	majorNegInt = 1
	majorBytes  = 2
	majorText   = 3
	majorArray  = 4
	majorMap    = 5
	majorTag    = 6
	majorSimple = 7
)

// Limits enforced by the decoder (MaxDepth by Unmarshal and Skip, the others
// by every read) and by FromJSON. They follow the atproto data-validation
// guide; MaxDepth is twice the guide's 32 so that records other
// implementations accept are not refused, while still bounding recursion.
const (
	MaxDepth        = 64
	MaxContainerLen = 128 * 1024
	MaxKeyLen       = 8192
	MaxCIDLen       = 100 // bytes of a binary CID
)

// Kind is the data-model type of the next item in a Decoder.
type Kind uint8

const (
	KindInvalid Kind = iota
	KindNull
	KindBool
	KindInt
	KindBytes
	KindText
	KindArray
	KindMap
	KindLink
)

func (k Kind) String() string {
	switch k {
	case KindNull:
		return "null"
	case KindBool:
		return "boolean"
	case KindInt:
		return "integer"
	case KindBytes:
		return "bytes"
	case KindText:
		return "string"
	case KindArray:
		return "array"
	case KindMap:
		return "map"
	case KindLink:
		return "cid-link"
	}
	return "invalid"
}

// Decoder reads strict DAG-CBOR items from a byte slice, one at a time. It is
// the building block for hand-written decoders of fixed shapes (commits, MST
// nodes, event frames) and for the generic Unmarshal. Every read enforces the
// canonical rules of the package doc. Byte and text results returned as
// []byte alias the input. A Decoder is not safe for concurrent use.
type Decoder struct {
	data []byte
	off  int
}

// NewDecoder returns a Decoder positioned at the start of data.
func NewDecoder(data []byte) *Decoder { return &Decoder{data: data} }

// Offset is the number of bytes consumed so far.
func (d *Decoder) Offset() int { return d.off }

// Remaining is the number of unread bytes.
func (d *Decoder) Remaining() int { return len(d.data) - d.off }

// Done returns ErrTrailing if any input is left unread.
func (d *Decoder) Done() error {
	if d.off != len(d.data) {
		return decErr(ErrTrailing, d.off, "")
	}
	return nil
}

// head reads an item head: major type and argument, enforcing the shortest
// form. Major type 7 is returned with its raw additional information as arg.
func (d *Decoder) head() (major byte, arg uint64, err error) {
	if d.off >= len(d.data) {
		return 0, 0, decErr(ErrTruncated, d.off, "")
	}
	start := d.off
	b := d.data[d.off]
	major, info := b>>5, b&0x1f
	if major == majorSimple {
		return major, uint64(info), nil // caller consumes
	}
	switch {
	case info < 24:
		d.off++
		return major, uint64(info), nil
	case info == 24:
		if len(d.data)-d.off < 2 {
			return 0, 0, decErr(ErrTruncated, start, "")
		}
		arg = uint64(d.data[d.off+1])
		if arg < 24 {
			return 0, 0, decErr(ErrNonMinimal, start, "")
		}
		d.off += 2
	case info == 25:
		if len(d.data)-d.off < 3 {
			return 0, 0, decErr(ErrTruncated, start, "")
		}
		arg = uint64(binary.BigEndian.Uint16(d.data[d.off+1:]))
		if arg <= math.MaxUint8 {
			return 0, 0, decErr(ErrNonMinimal, start, "")
		}
		d.off += 3
	case info == 26:
		if len(d.data)-d.off < 5 {
			return 0, 0, decErr(ErrTruncated, start, "")
		}
		arg = uint64(binary.BigEndian.Uint32(d.data[d.off+1:]))
		if arg <= math.MaxUint16 {
			return 0, 0, decErr(ErrNonMinimal, start, "")
		}
		d.off += 5
	case info == 27:
		if len(d.data)-d.off < 9 {
			return 0, 0, decErr(ErrTruncated, start, "")
		}
		arg = binary.BigEndian.Uint64(d.data[d.off+1:])
		if arg <= math.MaxUint32 {
			return 0, 0, decErr(ErrNonMinimal, start, "")
		}
		d.off += 9
	case info == 31:
		return 0, 0, decErr(ErrIndefinite, start, "")
	default:
		return 0, 0, decErr(ErrReserved, start, "")
	}
	return major, arg, nil
}

// Peek returns the kind of the next item without consuming it. Items that can
// never be valid (floats, undefined, tags other than 42, ...) return the rule
// they break.
func (d *Decoder) Peek() (Kind, error) {
	if d.off >= len(d.data) {
		return KindInvalid, decErr(ErrTruncated, d.off, "")
	}
	b := d.data[d.off]
	switch b >> 5 {
	case majorUint, majorNegInt:
		return KindInt, nil
	case majorBytes:
		return KindBytes, nil
	case majorText:
		return KindText, nil
	case majorArray:
		return KindArray, nil
	case majorMap:
		return KindMap, nil
	case majorTag:
		return KindLink, nil
	}
	switch b {
	case 0xf4, 0xf5:
		return KindBool, nil
	case 0xf6:
		return KindNull, nil
	}
	return KindInvalid, d.simpleErr()
}

// simpleErr classifies an invalid major-type-7 item at the current offset.
func (d *Decoder) simpleErr() error {
	switch info := d.data[d.off] & 0x1f; {
	case info == 23:
		return decErr(ErrUndefined, d.off, "")
	case info >= 25 && info <= 27:
		return decErr(ErrFloat, d.off, "")
	case info == 31:
		return decErr(ErrIndefinite, d.off, "break code")
	case info >= 28:
		return decErr(ErrReserved, d.off, "")
	}
	return decErr(ErrSimple, d.off, "")
}

func (d *Decoder) typeErr(want Kind) error {
	got, err := d.Peek()
	if err != nil {
		return err
	}
	return decErr(ErrType, d.off, "expected "+want.String()+", found "+got.String())
}

// ReadNull consumes a null if the next item is one, and reports whether it did.
func (d *Decoder) ReadNull() (bool, error) {
	if d.off >= len(d.data) {
		return false, decErr(ErrTruncated, d.off, "")
	}
	if d.data[d.off] == 0xf6 {
		d.off++
		return true, nil
	}
	return false, nil
}

// ReadBool reads a boolean.
func (d *Decoder) ReadBool() (bool, error) {
	if d.off < len(d.data) {
		switch d.data[d.off] {
		case 0xf4:
			d.off++
			return false, nil
		case 0xf5:
			d.off++
			return true, nil
		}
	}
	return false, d.typeErr(KindBool)
}

// ReadInt reads a signed integer (major type 0 or 1) that fits in int64.
func (d *Decoder) ReadInt() (int64, error) {
	start := d.off
	major, arg, err := d.head()
	if err != nil {
		return 0, err
	}
	switch major {
	case majorUint:
		if arg > math.MaxInt64 {
			d.off = start
			return 0, decErr(ErrIntRange, start, "")
		}
		return int64(arg), nil
	case majorNegInt:
		if arg > math.MaxInt64 {
			d.off = start
			return 0, decErr(ErrIntRange, start, "")
		}
		return -1 - int64(arg), nil
	}
	d.off = start
	return 0, d.typeErr(KindInt)
}

// ReadUint reads a non-negative integer.
func (d *Decoder) ReadUint() (uint64, error) {
	start := d.off
	major, arg, err := d.head()
	if err != nil {
		return 0, err
	}
	if major != majorUint {
		d.off = start
		return 0, d.typeErr(KindInt)
	}
	return arg, nil
}

// readLen reads the head of a string-like item of the given major type and
// returns its payload, checking it is present in full.
func (d *Decoder) readPayload(major byte, want Kind) ([]byte, error) {
	start := d.off
	m, n, err := d.head()
	if err != nil {
		return nil, err
	}
	if m != major {
		d.off = start
		return nil, d.typeErr(want)
	}
	if n > uint64(len(d.data)-d.off) {
		d.off = start
		return nil, decErr(ErrTruncated, start, "length beyond end of input")
	}
	p := d.data[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return p, nil
}

// ReadBytes reads a byte string. The result aliases the input.
func (d *Decoder) ReadBytes() ([]byte, error) { return d.readPayload(majorBytes, KindBytes) }

// ReadTextBytes reads a text string, checking UTF-8. The result aliases the input.
func (d *Decoder) ReadTextBytes() ([]byte, error) {
	start := d.off
	p, err := d.readPayload(majorText, KindText)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(p) {
		return nil, decErr(ErrUTF8, start, "")
	}
	return p, nil
}

// ReadText reads a text string.
func (d *Decoder) ReadText() (string, error) {
	p, err := d.ReadTextBytes()
	return string(p), err
}

// ReadCID reads a CID link (tag 42).
func (d *Decoder) ReadCID() (cid.Cid, error) {
	start := d.off
	major, arg, err := d.head()
	if err != nil {
		return cid.Undef, err
	}
	if major != majorTag {
		d.off = start
		return cid.Undef, d.typeErr(KindLink)
	}
	if arg != 42 {
		return cid.Undef, decErr(ErrTag, start, "")
	}
	if d.off < len(d.data) && d.data[d.off]>>5 != majorBytes {
		return cid.Undef, decErr(ErrCID, start, "tag 42 content is not a byte string")
	}
	p, err := d.readPayload(majorBytes, KindBytes)
	if err != nil {
		return cid.Undef, err
	}
	if len(p) == 0 || p[0] != 0x00 {
		return cid.Undef, decErr(ErrCIDPrefix, start, "")
	}
	if len(p)-1 > MaxCIDLen {
		return cid.Undef, decErr(ErrCID, start, "longer than MaxCIDLen bytes")
	}
	c, err := cid.Cast(p[1:])
	if err != nil {
		return cid.Undef, decErr(ErrCID, start, err.Error())
	}
	return c, nil
}

// ReadNullableCID reads a CID link or null; null gives cid.Undef.
func (d *Decoder) ReadNullableCID() (cid.Cid, error) {
	if null, err := d.ReadNull(); null || err != nil {
		return cid.Undef, err
	}
	return d.ReadCID()
}

// readContainer reads an array or map head and bounds its length.
func (d *Decoder) readContainer(major byte, want Kind) (int, error) {
	start := d.off
	m, n, err := d.head()
	if err != nil {
		return 0, err
	}
	if m != major {
		d.off = start
		return 0, d.typeErr(want)
	}
	if n > MaxContainerLen {
		return 0, decErr(ErrContainerSize, start, "")
	}
	// Every element takes at least one byte (two for a map entry): a length
	// beyond that is truncated input, and checking here bounds allocations.
	per := uint64(1)
	if major == majorMap {
		per = 2
	}
	if n*per > uint64(len(d.data)-d.off) {
		return 0, decErr(ErrTruncated, start, "length beyond end of input")
	}
	return int(n), nil
}

// ReadArrayHeader reads an array head and returns the element count.
func (d *Decoder) ReadArrayHeader() (int, error) { return d.readContainer(majorArray, KindArray) }

// ReadMapHeader reads a map head and returns the number of entries.
func (d *Decoder) ReadMapHeader() (int, error) { return d.readContainer(majorMap, KindMap) }

// ReadMapKey reads a map key and checks that it sorts strictly after prev in
// canonical order (pass nil for the first key). The result aliases the input.
func (d *Decoder) ReadMapKey(prev []byte) ([]byte, error) {
	start := d.off
	if d.off < len(d.data) && d.data[d.off]>>5 != majorText {
		if _, err := d.Peek(); err != nil {
			return nil, err
		}
		return nil, decErr(ErrMapKeyType, start, "")
	}
	k, err := d.ReadTextBytes()
	if err != nil {
		return nil, err
	}
	if len(k) > MaxKeyLen {
		return nil, decErr(ErrKeySize, start, "")
	}
	if prev != nil {
		switch CompareKeys(prev, k) {
		case 0:
			return nil, decErr(ErrDuplicateKey, start, string(k))
		case 1:
			return nil, decErr(ErrKeyOrder, start, string(k))
		}
	}
	return k, nil
}

// CompareKeys orders map keys canonically: shorter first, then bytewise.
func CompareKeys(a, b []byte) int {
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// Skip consumes the next item, whatever it is, validating it as strictly as
// Unmarshal would.
func (d *Decoder) Skip() error { return d.skip(0) }

func (d *Decoder) skip(depth int) error {
	if depth > MaxDepth {
		return decErr(ErrDepth, d.off, "")
	}
	k, err := d.Peek()
	if err != nil {
		return err
	}
	switch k {
	case KindNull:
		d.off++
		return nil
	case KindBool:
		_, err = d.ReadBool()
	case KindInt:
		_, err = d.ReadInt()
	case KindBytes:
		_, err = d.ReadBytes()
	case KindText:
		_, err = d.ReadTextBytes()
	case KindLink:
		_, err = d.ReadCID()
	case KindArray:
		var n int
		if n, err = d.ReadArrayHeader(); err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			if err := d.skip(depth + 1); err != nil {
				return err
			}
		}
	case KindMap:
		var n int
		if n, err = d.ReadMapHeader(); err != nil {
			return err
		}
		var prev []byte
		for i := 0; i < n; i++ {
			if prev, err = d.ReadMapKey(prev); err != nil {
				return err
			}
			if err := d.skip(depth + 1); err != nil {
				return err
			}
		}
	}
	return err
}

// Validate checks that data is exactly one strict DAG-CBOR item.
func Validate(data []byte) error {
	d := NewDecoder(data)
	if err := d.Skip(); err != nil {
		return err
	}
	return d.Done()
}
