package dagcbor

import (
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
)

// Unmarshal decodes one strict DAG-CBOR item into the generic data model:
//
//	null → nil, boolean → bool, integer → int64, text → string,
//	bytes → []byte, cid-link → cid.Cid, array → []any, map → map[string]any
//
// The whole input must be consumed. Byte strings are copied.
func Unmarshal(data []byte) (any, error) {
	d := NewDecoder(data)
	v, err := d.ReadValue()
	if err != nil {
		return nil, err
	}
	if err := d.Done(); err != nil {
		return nil, err
	}
	return v, nil
}

// maxPrealloc bounds the room made for a container before its elements are
// read. A length is only checked against the bytes left, so nested
// containers could each claim nearly all of them: preallocating in full
// would let a 100 kB input allocate 100 MB (TestAllocationBounded).
const maxPrealloc = 256

// ReadValue decodes the next item into the generic data model (see Unmarshal).
func (d *Decoder) ReadValue() (any, error) { return d.readValue(0) }

func (d *Decoder) readValue(depth int) (any, error) {
	if depth > MaxDepth {
		return nil, decErr(ErrDepth, d.off, "")
	}
	k, err := d.Peek()
	if err != nil {
		return nil, err
	}
	switch k {
	case KindNull:
		d.off++
		return nil, nil
	case KindBool:
		return d.ReadBool()
	case KindInt:
		return d.ReadInt()
	case KindBytes:
		p, err := d.ReadBytes()
		if err != nil {
			return nil, err
		}
		return slices.Clone(p), nil
	case KindText:
		return d.ReadText()
	case KindLink:
		return d.ReadCID()
	case KindArray:
		n, err := d.ReadArrayHeader()
		if err != nil {
			return nil, err
		}
		arr := make([]any, 0, min(n, maxPrealloc))
		for range n {
			e, err := d.readValue(depth + 1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, e)
		}
		return arr, nil
	case KindMap:
		n, err := d.ReadMapHeader()
		if err != nil {
			return nil, err
		}
		m := make(map[string]any, min(n, maxPrealloc))
		var prev []byte
		for i := 0; i < n; i++ {
			if prev, err = d.ReadMapKey(prev); err != nil {
				return nil, err
			}
			if m[string(prev)], err = d.readValue(depth + 1); err != nil {
				return nil, err
			}
		}
		return m, nil
	}
	return nil, decErr(ErrType, d.off, "")
}

// Marshal encodes a generic data-model value (the types Unmarshal produces;
// int, int32, uint32 and *cid.Cid are also accepted) as canonical DAG-CBOR.
func Marshal(v any) ([]byte, error) { return Append(nil, v) }

// Append encodes v like Marshal, appending to b.
func Append(b []byte, v any) ([]byte, error) { return appendValue(b, v, 0) }

func appendValue(b []byte, v any, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("dagcbor: encode: %w", ErrDepth)
	}
	switch x := v.(type) {
	case nil:
		return AppendNull(b), nil
	case bool:
		return AppendBool(b, x), nil
	case int64:
		return AppendInt(b, x), nil
	case int:
		return AppendInt(b, int64(x)), nil
	case int32:
		return AppendInt(b, int64(x)), nil
	case uint32:
		return AppendUint(b, uint64(x)), nil
	case string:
		if !utf8.ValidString(x) {
			return nil, fmt.Errorf("dagcbor: encode: %w", ErrUTF8)
		}
		return AppendText(b, x), nil
	case []byte:
		return AppendBytes(b, x), nil
	case cid.Cid:
		if !x.Defined() {
			return nil, fmt.Errorf("dagcbor: encode: %w: undefined CID", ErrCID)
		}
		return AppendCID(b, x), nil
	case *cid.Cid:
		if x == nil {
			return AppendNull(b), nil
		}
		return appendValue(b, *x, depth)
	case []any:
		b = AppendArrayHeader(b, len(x))
		var err error
		for _, e := range x {
			if b, err = appendValue(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			if !utf8.ValidString(k) {
				return nil, fmt.Errorf("dagcbor: encode: map key: %w", ErrUTF8)
			}
			keys = append(keys, k)
		}
		SortKeys(keys)
		b = AppendMapHeader(b, len(x))
		var err error
		for _, k := range keys {
			b = AppendText(b, k)
			if b, err = appendValue(b, x[k], depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	return nil, fmt.Errorf("dagcbor: encode: unsupported type %T", v)
}

// SortKeys sorts map keys into canonical order (length first, then bytes).
func SortKeys(keys []string) {
	slices.SortFunc(keys, func(a, b string) int {
		if len(a) != len(b) {
			return len(a) - len(b)
		}
		switch {
		case a < b:
			return -1
		case a > b:
			return 1
		}
		return 0
	})
}
