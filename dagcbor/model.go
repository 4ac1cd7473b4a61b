package dagcbor

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
)

// Size limits of a whole record (atproto data-validation guide).
const (
	MaxRecordCBORLen = 1 << 20 // bytes of a record's DAG-CBOR block
	MaxRecordJSONLen = 2 << 20 // bytes of a record's JSON form
)

// ParseRecordJSON parses the JSON form of a record: an object that follows
// the data model (FromJSON) and the record rules (ValidateRecord).
func ParseRecordJSON(data []byte) (map[string]any, error) {
	if len(data) > MaxRecordJSONLen {
		return nil, fmt.Errorf("dagcbor: record: %w: %d bytes of JSON, limit %d", ErrDataModel, len(data), MaxRecordJSONLen)
	}
	v, err := FromJSON(data)
	if err != nil {
		return nil, err // already "dagcbor: json at offset ..."
	}
	return toRecord(v)
}

// UnmarshalRecord decodes a record's DAG-CBOR block: a map that follows the
// strict encoding (Unmarshal) and the record rules (ValidateRecord).
func UnmarshalRecord(data []byte) (map[string]any, error) {
	if len(data) > MaxRecordCBORLen {
		return nil, fmt.Errorf("dagcbor: record: %w: %d bytes of CBOR, limit %d", ErrDataModel, len(data), MaxRecordCBORLen)
	}
	v, err := Unmarshal(data)
	if err != nil {
		return nil, err // already "dagcbor: <rule> at offset ..."
	}
	return toRecord(v)
}

func toRecord(v any) (map[string]any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("dagcbor: record: %w: top level is %s, not an object", ErrDataModel, modelKind(v))
	}
	if err := ValidateRecord(m); err != nil {
		return nil, err
	}
	return m, nil
}

// ValidateRecord checks the data-model rules of a decoded record, wherever it
// came from (Unmarshal, FromJSON or code): only generic model types, within
// the limits of the decoder; in every object, "$type" if present is a
// non-empty string, and an object with "$type": "blob" is a well-formed blob
// (see ParseBlob), as is an object of exactly the keys "cid" and "mimeType"
// (the legacy blob form). The keys "$link" and "$bytes" are refused: in JSON
// they stand for a cid-link and bytes, so no record may hold them as keys.
// Other keys starting with "$" are allowed.
func ValidateRecord(rec map[string]any) error {
	var path []pathElem
	if err := validate(rec, 0, &path); err != nil {
		return fmt.Errorf("dagcbor: record: at %s: %w", formatPath(path), err)
	}
	return nil
}

// pathElem is one step from the record's root to a value: a key or an index.
type pathElem struct {
	key   string
	index int // -1 for a key
}

func formatPath(path []pathElem) string {
	if len(path) == 0 {
		return "/"
	}
	var sb strings.Builder
	for _, e := range path {
		sb.WriteByte('/')
		if e.index >= 0 {
			sb.WriteString(strconv.Itoa(e.index))
		} else {
			sb.WriteString(e.key)
		}
	}
	return sb.String()
}

func validate(v any, depth int, path *[]pathElem) error {
	if depth > MaxDepth {
		return fmt.Errorf("%w: %w", ErrDataModel, ErrDepth)
	}
	switch x := v.(type) {
	case nil, bool, int64, []byte:
		return nil
	case string:
		if !utf8.ValidString(x) {
			return fmt.Errorf("%w: %w", ErrDataModel, ErrUTF8)
		}
		return nil
	case cid.Cid:
		return validateLink(x)
	case []any:
		if len(x) > MaxContainerLen {
			return fmt.Errorf("%w: %w", ErrDataModel, ErrContainerSize)
		}
		for i, e := range x {
			*path = append(*path, pathElem{index: i})
			if err := validate(e, depth+1, path); err != nil {
				return err
			}
			*path = (*path)[:len(*path)-1]
		}
		return nil
	case map[string]any:
		if err := validateObject(x); err != nil {
			return err
		}
		for k, e := range x {
			*path = append(*path, pathElem{key: k, index: -1})
			if err := validate(e, depth+1, path); err != nil {
				return err
			}
			*path = (*path)[:len(*path)-1]
		}
		return nil
	}
	return fmt.Errorf("%w: unsupported type %T", ErrDataModel, v)
}

func validateLink(c cid.Cid) error {
	if !c.Defined() {
		return fmt.Errorf("%w: %w: undefined CID", ErrDataModel, ErrCID)
	}
	if len(c.KeyString()) > MaxCIDLen {
		return fmt.Errorf("%w: %w: longer than %d bytes", ErrDataModel, ErrCID, MaxCIDLen)
	}
	return nil
}

// validateObject checks the rules on one object's own keys.
func validateObject(m map[string]any) error {
	if len(m) > MaxContainerLen {
		return fmt.Errorf("%w: %w", ErrDataModel, ErrContainerSize)
	}
	for k := range m {
		if len(k) > MaxKeyLen {
			return fmt.Errorf("%w: %w", ErrDataModel, ErrKeySize)
		}
		if !utf8.ValidString(k) {
			return fmt.Errorf("%w: key: %w", ErrDataModel, ErrUTF8)
		}
	}
	if _, ok := m["$link"]; ok {
		return fmt.Errorf("%w: %q is a reserved key", ErrDataModel, "$link")
	}
	if _, ok := m["$bytes"]; ok {
		return fmt.Errorf("%w: %q is a reserved key", ErrDataModel, "$bytes")
	}
	if t, ok := m["$type"]; ok {
		s, ok := t.(string)
		if !ok || s == "" {
			return fmt.Errorf("%w: $type must be a non-empty string, found %s", ErrDataModel, modelKind(t))
		}
		if s == "blob" {
			_, err := parseBlob(m)
			return err
		}
		return nil
	}
	if isLegacyBlob(m) {
		_, err := parseBlob(m)
		return err
	}
	return nil
}

// Blob is a reference to a blob as records hold it.
type Blob struct {
	Ref      cid.Cid // the blob's CID (raw codec for blobs uploaded today)
	MimeType string
	Size     int64 // bytes; -1 for the legacy form, which has no size
}

// ParseBlob reads a blob reference in either form:
//
//	{"$type": "blob", "ref": <cid-link>, "mimeType": <non-empty string>, "size": <integer ≥ 0>}
//	{"cid": <CID string>, "mimeType": <string>}   (legacy: read, never written)
//
// The current form must have exactly those four keys. The map is a decoded
// value: ref is a cid.Cid (FromJSON turns {"$link": ...} into one).
func ParseBlob(m map[string]any) (Blob, error) {
	b, err := parseBlob(m)
	if err != nil {
		return Blob{}, fmt.Errorf("dagcbor: %w", err)
	}
	return b, nil
}

func parseBlob(m map[string]any) (Blob, error) {
	if isLegacyBlob(m) {
		return parseLegacyBlob(m)
	}
	if m["$type"] != "blob" {
		return Blob{}, fmt.Errorf("%w: blob: $type is not \"blob\"", ErrDataModel)
	}
	if len(m) != 4 {
		return Blob{}, fmt.Errorf("%w: blob: %d keys, want $type, ref, mimeType, size", ErrDataModel, len(m))
	}
	ref, ok := m["ref"].(cid.Cid)
	if !ok {
		return Blob{}, fmt.Errorf("%w: blob: ref is %s, not a cid-link", ErrDataModel, fieldKind(m, "ref"))
	}
	if err := validateLink(ref); err != nil {
		return Blob{}, fmt.Errorf("blob: ref: %w", err)
	}
	mime, ok := m["mimeType"].(string)
	if !ok || mime == "" {
		return Blob{}, fmt.Errorf("%w: blob: mimeType must be a non-empty string, found %s", ErrDataModel, fieldKind(m, "mimeType"))
	}
	size, ok := m["size"].(int64)
	if !ok {
		return Blob{}, fmt.Errorf("%w: blob: size is %s, not an integer", ErrDataModel, fieldKind(m, "size"))
	}
	if size < 0 {
		return Blob{}, fmt.Errorf("%w: blob: negative size %d", ErrDataModel, size)
	}
	return Blob{Ref: ref, MimeType: mime, Size: size}, nil
}

// isLegacyBlob reports whether m has the shape of a legacy blob: exactly the
// keys "cid" and "mimeType".
func isLegacyBlob(m map[string]any) bool {
	if len(m) != 2 {
		return false
	}
	_, hasCID := m["cid"]
	_, hasMime := m["mimeType"]
	return hasCID && hasMime
}

func parseLegacyBlob(m map[string]any) (Blob, error) {
	s, ok := m["cid"].(string)
	if !ok {
		return Blob{}, fmt.Errorf("%w: legacy blob: cid is %s, not a string", ErrDataModel, fieldKind(m, "cid"))
	}
	c, err := cid.Decode(s)
	if err != nil {
		return Blob{}, fmt.Errorf("%w: legacy blob: %w: %v", ErrDataModel, ErrCID, err)
	}
	if err := validateLink(c); err != nil {
		return Blob{}, fmt.Errorf("legacy blob: %w", err)
	}
	mime, ok := m["mimeType"].(string)
	if !ok || mime == "" {
		return Blob{}, fmt.Errorf("%w: legacy blob: mimeType must be a non-empty string, found %s", ErrDataModel, fieldKind(m, "mimeType"))
	}
	return Blob{Ref: c, MimeType: mime, Size: -1}, nil
}

// fieldKind describes m[key] for messages: its type, or "missing".
func fieldKind(m map[string]any, key string) string {
	v, ok := m[key]
	if !ok {
		return "missing"
	}
	return modelKind(v)
}

// modelKind names the data-model type of a generic value, for messages.
func modelKind(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case int64, int, int32, uint32:
		return "an integer"
	case string:
		if x == "" {
			return "an empty string"
		}
		return "a string"
	case []byte:
		return "bytes"
	case cid.Cid:
		return "a cid-link"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("an unsupported %T", v)
}

// RecordBlobs returns the blob references a decoded record holds, at any
// depth, in the order a depth-first walk meets them (maps in key order).
// Maps that look like blobs but are malformed are skipped; ValidateRecord
// is what refuses them.
func RecordBlobs(rec map[string]any) []Blob {
	var out []Blob
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["$type"] == "blob" || isLegacyBlob(x) {
				if b, err := parseBlob(x); err == nil {
					out = append(out, b)
					return
				}
			}
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			SortKeys(keys)
			for _, k := range keys {
				walk(x[k])
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(rec)
	return out
}
