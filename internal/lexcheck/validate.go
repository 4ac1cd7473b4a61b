package lexcheck

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

// ErrInvalid is the class of bodies that do not match their schema; the
// error is an *Error listing every problem.
var ErrInvalid = errors.New("body does not match its lexicon")

// Problem is one way a body departs from its schema.
type Problem struct {
	Path    string // JSON path of the value: "$", "$.repos[3].did"
	Message string
}

func (p Problem) String() string { return p.Path + ": " + p.Message }

// Error lists the problems of one body, in document order (object keys
// sorted).
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.String()
	}
	return "lexcheck: " + ErrInvalid.Error() + ": " + strings.Join(msgs, "; ")
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// ValidateOutput checks a JSON body against the output schema of the
// query or procedure nsid. It returns nil, an *Error (wrapping ErrInvalid)
// listing every problem, or an error wrapping ErrSchema.
func (c *Catalog) ValidateOutput(nsid string, body []byte) error {
	s, err := c.OutputSchema(nsid)
	if err != nil {
		return err
	}
	return c.validateBody(body, s, nsid, "")
}

// ValidateDef checks a JSON body against the definition ref names
// ("nsid#name", or "nsid" for main), which must be a value type (object,
// record, string, ...). Like ValidateOutput it returns nil, an *Error or an
// error wrapping ErrSchema.
func (c *Catalog) ValidateDef(ref string, body []byte) error {
	nsid, _, _ := strings.Cut(ref, "#")
	s, full, err := c.Resolve(nsid, ref)
	if err != nil {
		return err
	}
	return c.validateBody(body, s, nsid, full)
}

func (c *Catalog) validateBody(body []byte, s *Schema, doc, typeName string) error {
	v := &validator{c: c}
	x, err := dagcbor.FromJSON(body)
	if err != nil {
		v.fail("$", "not JSON of the atproto data model: %v", err)
	} else {
		v.value(x, s, doc, "$", typeName)
	}
	if v.schemaErr != nil {
		return v.schemaErr
	}
	if len(v.problems) > 0 {
		return &Error{Problems: v.problems}
	}
	return nil
}

// validator walks one body. Values are those of dagcbor.FromJSON: nil,
// bool, int64, string, []byte, cid.Cid, []any, map[string]any.
type validator struct {
	c         *Catalog
	problems  []Problem
	schemaErr error // the first schema error; it stops nothing but wins
}

func (v *validator) fail(path, format string, args ...any) {
	v.problems = append(v.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (v *validator) schema(err error) {
	if v.schemaErr == nil {
		v.schemaErr = err
	}
}

// value checks x against s, a type inside the lexicon file doc. typeName
// is the full name of the definition s is, when it is one: the only $type
// an object of s may carry.
func (v *validator) value(x any, s *Schema, doc, path, typeName string) {
	switch s.Type {
	case "ref":
		def, full, err := v.c.Resolve(doc, s.Ref)
		if err != nil {
			v.schema(err)
			return
		}
		if def.Type == "token" {
			if str, ok := x.(string); !ok || str != full {
				v.fail(path, "is %s, not the token %q", kind(x), full)
			}
			return
		}
		v.value(x, def, refDoc(doc, s.Ref), path, full)
	case "union":
		v.union(x, s, doc, path)
	case "record":
		if s.Record == nil {
			v.schema(fmt.Errorf("lexcheck: %w: record %s without a schema", ErrSchema, typeName))
			return
		}
		v.object(x, s.Record, doc, path, typeName)
	case "object":
		v.object(x, s, doc, path, typeName)
	case "array":
		v.array(x, s, doc, path)
	case "string":
		v.string(x, s, path)
	case "integer":
		v.integer(x, s, path)
	case "boolean":
		b, ok := x.(bool)
		switch {
		case !ok:
			v.fail(path, "is %s, not a boolean", kind(x))
		case s.Const != nil && string(s.Const) != strconv.FormatBool(b):
			v.fail(path, "is %t, not the constant %s", b, s.Const)
		}
	case "unknown":
		if _, ok := x.(map[string]any); !ok {
			v.fail(path, "is %s, not an object", kind(x))
		}
	case "cid-link":
		if _, ok := x.(cid.Cid); !ok {
			v.fail(path, "is %s, not a cid-link {\"$link\": ...}", kind(x))
		}
	case "bytes":
		b, ok := x.([]byte)
		if !ok {
			v.fail(path, "is %s, not bytes {\"$bytes\": ...}", kind(x))
			return
		}
		v.length(path, int64(len(b)), s, "bytes")
	case "blob":
		v.blob(x, s, path)
	case "null":
		if x != nil {
			v.fail(path, "is %s, not null", kind(x))
		}
	default:
		v.schema(fmt.Errorf("lexcheck: %w: %s: type %q is not a value type this package checks", ErrSchema, path, s.Type))
	}
}

// refDoc is the lexicon file a ref points into.
func refDoc(from, ref string) string {
	if nsid, _, _ := strings.Cut(ref, "#"); nsid != "" {
		return nsid
	}
	return from
}

func (v *validator) union(x any, s *Schema, doc, path string) {
	m, ok := x.(map[string]any)
	if !ok {
		v.fail(path, "is %s, not an object of a union", kind(x))
		return
	}
	t, ok := m["$type"].(string)
	if !ok {
		v.fail(path, "union member without a $type string")
		return
	}
	for _, ref := range s.Refs {
		def, full, err := v.c.Resolve(doc, ref)
		if err != nil {
			v.schema(err)
			return
		}
		if full == t {
			v.value(x, def, refDoc(doc, ref), path, full)
			return
		}
	}
	if s.Closed {
		v.fail(path, "$type %q is not one of the closed union %v", t, s.Refs)
	}
	// An open union admits types it does not list; there is nothing to check.
}

func (v *validator) object(x any, s *Schema, doc, path, typeName string) {
	m, ok := x.(map[string]any)
	if !ok {
		v.fail(path, "is %s, not an object", kind(x))
		return
	}
	for _, k := range s.Required {
		if _, ok := m[k]; !ok {
			v.fail(join(path, k), "required but missing")
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		val := m[k]
		p := join(path, k)
		if k == "$type" {
			switch {
			case typeName == "":
				v.fail(p, "$type on an object that is no named definition")
			case val != typeName:
				v.fail(p, "is %s, want %q", kind(val), typeName)
			}
			continue
		}
		prop, ok := s.Properties[k]
		if !ok {
			v.fail(p, "key not in the schema")
			continue
		}
		if val == nil && slices.Contains(s.Nullable, k) {
			continue
		}
		if val == nil && prop.Type != "null" {
			v.fail(p, "is null, which the schema does not allow (not nullable)")
			continue
		}
		v.value(val, prop, doc, p, "")
	}
}

func join(path, key string) string {
	if isIdent(key) {
		return path + "." + key
	}
	return path + "[" + strconv.Quote(key) + "]"
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || r == '$' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9') {
			continue
		}
		return false
	}
	return true
}

func (v *validator) array(x any, s *Schema, doc, path string) {
	a, ok := x.([]any)
	if !ok {
		v.fail(path, "is %s, not an array", kind(x))
		return
	}
	v.length(path, int64(len(a)), s, "elements")
	if s.Items == nil {
		v.schema(fmt.Errorf("lexcheck: %w: %s: array without items", ErrSchema, path))
		return
	}
	for i, e := range a {
		p := path + "[" + strconv.Itoa(i) + "]"
		if e == nil && s.Items.Type != "null" {
			v.fail(p, "is null")
			continue
		}
		v.value(e, s.Items, doc, p, "")
	}
}

// length checks minLength and maxLength against n (elements, bytes).
func (v *validator) length(path string, n int64, s *Schema, unit string) {
	if s.MinLength != nil && n < *s.MinLength {
		v.fail(path, "has %d %s, fewer than minLength %d", n, unit, *s.MinLength)
	}
	if s.MaxLength != nil && n > *s.MaxLength {
		v.fail(path, "has %d %s, more than maxLength %d", n, unit, *s.MaxLength)
	}
}

func (v *validator) string(x any, s *Schema, path string) {
	str, ok := x.(string)
	if !ok {
		v.fail(path, "is %s, not a string", kind(x))
		return
	}
	v.length(path, int64(len(str)), s, "bytes of UTF-8")
	if s.MinGraphemes != nil || s.MaxGraphemes != nil {
		n := int64(graphemes(str))
		if s.MinGraphemes != nil && n < *s.MinGraphemes {
			v.fail(path, "has %d graphemes, fewer than minGraphemes %d", n, *s.MinGraphemes)
		}
		if s.MaxGraphemes != nil && n > *s.MaxGraphemes {
			v.fail(path, "has %d graphemes, more than maxGraphemes %d", n, *s.MaxGraphemes)
		}
	}
	if s.Const != nil {
		var want string
		if err := json.Unmarshal(s.Const, &want); err != nil {
			v.schema(fmt.Errorf("lexcheck: %w: %s: string const %s", ErrSchema, path, s.Const))
		} else if str != want {
			v.fail(path, "is %q, not the constant %q", str, want)
		}
	}
	if s.Enum != nil {
		found := false
		for _, raw := range s.Enum {
			var e string
			if err := json.Unmarshal(raw, &e); err != nil {
				v.schema(fmt.Errorf("lexcheck: %w: %s: string enum value %s", ErrSchema, path, raw))
				return
			}
			found = found || e == str
		}
		if !found {
			v.fail(path, "is %q, not one of the enum", str)
		}
	}
	if s.Format != "" {
		check, ok := formats[s.Format]
		if !ok {
			v.schema(fmt.Errorf("lexcheck: %w: %s: unknown string format %q", ErrSchema, path, s.Format))
			return
		}
		if err := check(str); err != nil {
			v.fail(path, "%q is not a valid %s: %v", str, s.Format, err)
		}
	}
}

func (v *validator) integer(x any, s *Schema, path string) {
	n, ok := x.(int64)
	if !ok {
		v.fail(path, "is %s, not an integer", kind(x))
		return
	}
	if s.Minimum != nil && n < *s.Minimum {
		v.fail(path, "is %d, below the minimum %d", n, *s.Minimum)
	}
	if s.Maximum != nil && n > *s.Maximum {
		v.fail(path, "is %d, above the maximum %d", n, *s.Maximum)
	}
	if s.Const != nil && string(s.Const) != strconv.FormatInt(n, 10) {
		v.fail(path, "is %d, not the constant %s", n, s.Const)
	}
	if s.Enum != nil {
		found := false
		for _, raw := range s.Enum {
			found = found || string(raw) == strconv.FormatInt(n, 10)
		}
		if !found {
			v.fail(path, "is %d, not one of the enum", n)
		}
	}
}

// blob checks the current blob form: exactly $type "blob", ref (a cid-link
// to a raw sha2-256 CID), mimeType (non-empty, matching accept) and size
// (≥ 0, at most maxSize).
func (v *validator) blob(x any, s *Schema, path string) {
	m, ok := x.(map[string]any)
	if !ok {
		v.fail(path, "is %s, not a blob object", kind(x))
		return
	}
	if m["$type"] != "blob" {
		v.fail(join(path, "$type"), "is %s, want \"blob\"", kind(m["$type"]))
	}
	for k := range m {
		if k != "$type" && k != "ref" && k != "mimeType" && k != "size" {
			v.fail(join(path, k), "key not in a blob")
		}
	}
	ref, ok := m["ref"].(cid.Cid)
	switch {
	case !ok:
		v.fail(join(path, "ref"), "is %s, not a cid-link", kind(m["ref"]))
	case !dagcbor.IsBlessed(ref, dagcbor.CodecRaw):
		v.fail(join(path, "ref"), "%s is not a raw sha2-256 CIDv1", ref)
	}
	mime, ok := m["mimeType"].(string)
	switch {
	case !ok || mime == "":
		v.fail(join(path, "mimeType"), "is %s, not a non-empty string", kind(m["mimeType"]))
	case len(s.Accept) > 0 && !slices.ContainsFunc(s.Accept, func(pat string) bool { return mimeMatches(pat, mime) }):
		v.fail(join(path, "mimeType"), "%q is not accepted (%v)", mime, s.Accept)
	}
	size, ok := m["size"].(int64)
	switch {
	case !ok:
		v.fail(join(path, "size"), "is %s, not an integer", kind(m["size"]))
	case size < 0:
		v.fail(join(path, "size"), "is negative")
	case s.MaxSize != nil && size > *s.MaxSize:
		v.fail(join(path, "size"), "is %d, above maxSize %d", size, *s.MaxSize)
	}
}

// mimeMatches matches a lexicon accept pattern: "*/*", "image/*" or exact.
func mimeMatches(pattern, mime string) bool {
	if pattern == "*/*" {
		return true
	}
	if prefix, ok := strings.CutSuffix(pattern, "/*"); ok {
		return strings.HasPrefix(mime, prefix+"/")
	}
	return pattern == mime
}

// kind names a data-model value's type for messages.
func kind(x any) string {
	switch y := x.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case int64:
		return "an integer"
	case string:
		return fmt.Sprintf("the string %q", y)
	case []byte:
		return "bytes"
	case cid.Cid:
		return "a cid-link"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("a %T", x)
}
