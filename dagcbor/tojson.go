package dagcbor

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
)

// ToJSON writes a generic data-model value (the types Marshal accepts) in the
// atproto JSON form: []byte as {"$bytes": base64 without padding}, cid.Cid as
// {"$link": canonical CID string}. Object keys are sorted bytewise, so the
// output is deterministic. Maps with a "$link" or "$bytes" key cannot be
// written: in JSON they would read back as a link or bytes.
func ToJSON(v any) ([]byte, error) { return appendJSON(nil, v, 0) }

func appendJSON(b []byte, v any, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("dagcbor: to json: %w: %w", ErrDataModel, ErrDepth)
	}
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int32:
		return strconv.AppendInt(b, int64(x), 10), nil
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case string:
		return appendJSONString(b, x)
	case []byte:
		b = append(b, `{"$bytes":"`...)
		b = base64.RawStdEncoding.AppendEncode(b, x)
		return append(b, `"}`...), nil
	case cid.Cid:
		if !x.Defined() {
			return nil, fmt.Errorf("dagcbor: to json: %w: %w: undefined CID", ErrDataModel, ErrCID)
		}
		b = append(b, `{"$link":"`...)
		b = append(b, x.String()...)
		return append(b, `"}`...), nil
	case *cid.Cid:
		if x == nil {
			return append(b, "null"...), nil
		}
		return appendJSON(b, *x, depth)
	case []any:
		b = append(b, '[')
		var err error
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendJSON(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		if _, ok := x["$link"]; ok {
			return nil, fmt.Errorf("dagcbor: to json: %w: map with a $link key", ErrDataModel)
		}
		if _, ok := x["$bytes"]; ok {
			return nil, fmt.Errorf("dagcbor: to json: %w: map with a $bytes key", ErrDataModel)
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		var err error
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendJSONString(b, k); err != nil {
				return nil, err
			}
			b = append(b, ':')
			if b, err = appendJSON(b, x[k], depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	}
	return nil, fmt.Errorf("dagcbor: to json: %w: unsupported type %T", ErrDataModel, v)
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string, escaping only what JSON
// requires: '"', '\\' and control characters.
func appendJSONString(b []byte, s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("dagcbor: to json: %w: %w", ErrDataModel, ErrUTF8)
	}
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"'), nil
}
