package dagcbor

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
)

// Error classes of the JSON form. Errors wrap one of these and, where a rule
// of the CBOR side applies unchanged (ErrDepth, ErrDuplicateKey, ErrFloat,
// ErrIntRange, ErrCID, ErrUTF8, ...), that rule too, so errors.Is works with
// either.
var (
	// ErrInvalidJSON: the input is not well-formed JSON.
	ErrInvalidJSON = errors.New("invalid JSON")
	// ErrDataModel: well-formed input that breaks a rule of the atproto
	// data model (a float, a malformed $link or $bytes object, a bad $type
	// or blob, a limit).
	ErrDataModel = errors.New("not in the atproto data model")
)

// FromJSON parses the JSON form of a data-model value into the generic model
// that Unmarshal produces (nil, bool, int64, string, []byte, cid.Cid, []any,
// map[string]any). See the package documentation for the rules.
func FromJSON(data []byte) (any, error) {
	p := jsonParser{data: data}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		if errors.Is(err, ErrDataModel) {
			// The parser stopped at the first data-model violation; report
			// a syntax error later in the input first, so ErrDataModel
			// always means well-formed JSON.
			q := jsonParser{data: data}
			if serr := q.checkSyntax(); serr != nil {
				return nil, serr
			}
		}
		return nil, err
	}
	p.skipSpace()
	if p.off != len(p.data) {
		return nil, p.syntaxErr("data after the top-level value")
	}
	return v, nil
}

// jsonParser is a recursive-descent parser over the whole input. It is
// hand-written rather than built on encoding/json because the data model
// needs what encoding/json's generic decoding hides (duplicate keys, invalid
// UTF-8 and lone surrogates, which it silently replaces) and because it is
// about three times faster than decoding with encoding/json and converting
// (BenchmarkFromJSON compares the two).
type jsonParser struct {
	data    []byte
	off     int
	scratch []byte // reused by strings that contain escapes
}

func (p *jsonParser) syntaxErr(detail string) error {
	return fmt.Errorf("dagcbor: json at offset %d: %w: %s", p.off, ErrInvalidJSON, detail)
}

// modelErr reports a data-model violation at offset at; rule is the CBOR-side
// rule that also applies, or nil.
func (p *jsonParser) modelErr(at int, rule error, detail string) error {
	if rule == nil {
		return fmt.Errorf("dagcbor: json at offset %d: %w: %s", at, ErrDataModel, detail)
	}
	if detail == "" {
		return fmt.Errorf("dagcbor: json at offset %d: %w: %w", at, ErrDataModel, rule)
	}
	return fmt.Errorf("dagcbor: json at offset %d: %w: %w: %s", at, ErrDataModel, rule, detail)
}

func (p *jsonParser) skipSpace() {
	for p.off < len(p.data) {
		switch p.data[p.off] {
		case ' ', '\t', '\n', '\r':
			p.off++
		default:
			return
		}
	}
}

// value parses the value at p.off, which is at nesting level depth (the
// top-level value is at 0), counted the same way as the CBOR decoder does.
func (p *jsonParser) value(depth int) (any, error) {
	if depth > MaxDepth {
		return nil, p.modelErr(p.off, ErrDepth, "")
	}
	if p.off >= len(p.data) {
		return nil, p.syntaxErr("unexpected end of input")
	}
	switch c := p.data[p.off]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		return p.str()
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	default:
		return nil, p.syntaxErr(fmt.Sprintf("unexpected character %q", c))
	}
}

// checkSyntax checks that the whole input is well-formed JSON, building
// nothing and without a depth limit (its stack is a byte per level, not a
// goroutine frame). It accepts exactly the syntax value accepts.
func (p *jsonParser) checkSyntax() error {
	var stack []byte // '[' or '{' per open container
	for {
		// A value is expected.
		p.skipSpace()
		if p.off >= len(p.data) {
			return p.syntaxErr("unexpected end of input")
		}
		var err error
		switch c := p.data[p.off]; {
		case c == '[' || c == '{':
			p.off++
			p.skipSpace()
			end := byte(']')
			if c == '{' {
				end = '}'
			}
			if p.off < len(p.data) && p.data[p.off] == end {
				p.off++
				break
			}
			stack = append(stack, c)
			if c == '{' {
				if err := p.checkKey(); err != nil {
					return err
				}
			}
			continue
		case c == '"':
			_, err = p.str()
		case c == '-' || c >= '0' && c <= '9':
			_, err = p.scanNumber()
		case c == 't':
			err = p.literal("true")
		case c == 'f':
			err = p.literal("false")
		case c == 'n':
			err = p.literal("null")
		default:
			return p.syntaxErr(fmt.Sprintf("unexpected character %q", c))
		}
		if err != nil {
			return err
		}
		// After a value: close containers until a ',' asks for another.
		for {
			p.skipSpace()
			if len(stack) == 0 {
				if p.off != len(p.data) {
					return p.syntaxErr("data after the top-level value")
				}
				return nil
			}
			if p.off >= len(p.data) {
				return p.syntaxErr("unterminated array or object")
			}
			top, c := stack[len(stack)-1], p.data[p.off]
			if c == ',' {
				p.off++
				if top == '{' {
					if err := p.checkKey(); err != nil {
						return err
					}
				}
				break
			}
			if top == '[' && c == ']' || top == '{' && c == '}' {
				p.off++
				stack = stack[:len(stack)-1]
				continue
			}
			return p.syntaxErr("expected ',' or the end of the array or object")
		}
	}
}

// checkKey checks an object key and its ':'.
func (p *jsonParser) checkKey() error {
	p.skipSpace()
	if p.off >= len(p.data) || p.data[p.off] != '"' {
		return p.syntaxErr("expected a string key")
	}
	if _, err := p.str(); err != nil {
		return err
	}
	p.skipSpace()
	if p.off >= len(p.data) || p.data[p.off] != ':' {
		return p.syntaxErr("expected ':' after an object key")
	}
	p.off++
	return nil
}

func (p *jsonParser) literal(word string) error {
	if len(p.data)-p.off < len(word) || string(p.data[p.off:p.off+len(word)]) != word {
		return p.syntaxErr("invalid literal")
	}
	p.off += len(word)
	return nil
}

func (p *jsonParser) array(depth int) (any, error) {
	p.off++ // [
	arr := []any{}
	p.skipSpace()
	if p.off < len(p.data) && p.data[p.off] == ']' {
		p.off++
		return arr, nil
	}
	for {
		if len(arr) == MaxContainerLen {
			return nil, p.modelErr(p.off, ErrContainerSize, "")
		}
		p.skipSpace()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
		p.skipSpace()
		if p.off >= len(p.data) {
			return nil, p.syntaxErr("unterminated array")
		}
		switch p.data[p.off] {
		case ',':
			p.off++
		case ']':
			p.off++
			return arr, nil
		default:
			return nil, p.syntaxErr("expected ',' or ']' in array")
		}
	}
}

func (p *jsonParser) object(depth int) (any, error) {
	start := p.off
	p.off++ // {
	p.skipSpace()
	if p.off < len(p.data) && p.data[p.off] == '}' {
		p.off++
		return map[string]any{}, nil
	}
	var m map[string]any // made after the first entry, unless it is a $link or $bytes
	special := false     // a $link or $bytes key was seen
	for {
		p.skipSpace()
		if p.off >= len(p.data) || p.data[p.off] != '"' {
			return nil, p.syntaxErr("expected a string key")
		}
		keyOff := p.off
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		if len(k) > MaxKeyLen {
			return nil, p.modelErr(keyOff, ErrKeySize, "")
		}
		if _, dup := m[k]; dup {
			return nil, p.modelErr(keyOff, ErrDuplicateKey, strconv.Quote(k))
		}
		if len(m) == MaxContainerLen {
			return nil, p.modelErr(keyOff, ErrContainerSize, "")
		}
		p.skipSpace()
		if p.off >= len(p.data) || p.data[p.off] != ':' {
			return nil, p.syntaxErr("expected ':' after an object key")
		}
		p.off++
		p.skipSpace()
		// {"$link": s} and {"$bytes": s} are one scalar of the model, at
		// the level of the object: their string is not a level deeper. Any
		// other value is (else {"$link": {"$link": ...}} would recurse
		// without bound).
		vdepth := depth + 1
		if k == "$link" || k == "$bytes" {
			special = true
			if p.off < len(p.data) && p.data[p.off] == '"' {
				vdepth = depth
			}
		}
		v, err := p.value(vdepth)
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.off >= len(p.data) {
			return nil, p.syntaxErr("unterminated object")
		}
		end := p.data[p.off] == '}'
		if end && m == nil && special {
			p.off++
			return p.typedValue(k, v, start)
		}
		if m == nil {
			m = map[string]any{}
		}
		m[k] = v
		switch p.data[p.off] {
		case ',':
			p.off++
			continue
		case '}':
			p.off++
		default:
			return nil, p.syntaxErr("expected ',' or '}' in object")
		}
		break
	}
	if special {
		return nil, p.modelErr(start, typedRule(m), "a $link or $bytes object must have exactly one key")
	}
	return m, nil
}

// typedRule is the rule a malformed $link or $bytes object breaks.
func typedRule(m map[string]any) error {
	if _, ok := m["$link"]; ok {
		return ErrCID
	}
	return nil
}

// typedValue converts the one entry of a $link or $bytes object to its value.
func (p *jsonParser) typedValue(key string, v any, at int) (any, error) {
	s, ok := v.(string)
	if key == "$link" {
		if !ok {
			return nil, p.modelErr(at, ErrCID, "$link must be a string")
		}
		c, err := parseLink(s)
		if err != nil {
			return nil, p.modelErr(at, ErrCID, err.Error())
		}
		return c, nil
	}
	if !ok {
		return nil, p.modelErr(at, nil, "$bytes must be a string")
	}
	b, err := decodeBase64(s)
	if err != nil {
		return nil, p.modelErr(at, nil, "$bytes: "+err.Error())
	}
	return b, nil
}

// parseLink parses the string of a $link. Only the canonical string of a CID
// is accepted (base32 lowercase for CIDv1, base58 "Qm..." for CIDv0), so
// that a CID has one JSON form, the one ToJSON writes.
func parseLink(s string) (cid.Cid, error) {
	c, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, err
	}
	if len(c.KeyString()) > MaxCIDLen {
		return cid.Undef, fmt.Errorf("longer than %d bytes", MaxCIDLen)
	}
	if c.String() != s {
		return cid.Undef, fmt.Errorf("%q is not in canonical form %q", s, c.String())
	}
	return c, nil
}

// decodeBase64 decodes standard base64 (RFC 4648 §4), with or without
// padding. Unused trailing bits must be zero and line breaks are refused, so
// every byte string has exactly two accepted forms: padded and unpadded.
func decodeBase64(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' || s[i] == '\r' {
			return nil, errors.New("line break in base64")
		}
	}
	enc := base64.RawStdEncoding
	if len(s)%4 == 0 && len(s) > 0 && s[len(s)-1] == '=' {
		enc = base64.StdEncoding
	}
	return enc.Strict().DecodeString(s)
}

// str parses a string at p.off (which holds the opening quote).
func (p *jsonParser) str() (string, error) {
	p.off++
	start := p.off
	for i := start; i < len(p.data); i++ {
		c := p.data[i]
		if c == '"' {
			p.off = i + 1
			return string(p.data[start:i]), nil
		}
		if c == '\\' || c < 0x20 || c >= 0x80 {
			p.off = i
			return p.strSlow(p.data[start:i])
		}
	}
	p.off = len(p.data)
	return "", p.syntaxErr("unterminated string")
}

// strSlow continues a string that has escapes, control characters or
// non-ASCII bytes; prefix is the plain part already scanned.
func (p *jsonParser) strSlow(prefix []byte) (string, error) {
	buf := append(p.scratch[:0], prefix...)
	defer func() { p.scratch = buf[:0] }()
	for p.off < len(p.data) {
		c := p.data[p.off]
		switch {
		case c == '"':
			p.off++
			return string(buf), nil
		case c == '\\':
			var err error
			if buf, err = p.escape(buf); err != nil {
				return "", err
			}
		case c < 0x20:
			return "", p.syntaxErr("control character in string")
		case c < 0x80:
			buf = append(buf, c)
			p.off++
		default:
			r, n := utf8.DecodeRune(p.data[p.off:])
			if r == utf8.RuneError && n == 1 {
				return "", fmt.Errorf("dagcbor: json at offset %d: %w: %w", p.off, ErrInvalidJSON, ErrUTF8)
			}
			buf = append(buf, p.data[p.off:p.off+n]...)
			p.off += n
		}
	}
	return "", p.syntaxErr("unterminated string")
}

// escape decodes the escape sequence at p.off and appends it to buf.
func (p *jsonParser) escape(buf []byte) ([]byte, error) {
	if p.off+1 >= len(p.data) {
		return nil, p.syntaxErr("unterminated escape")
	}
	c := p.data[p.off+1]
	p.off += 2
	switch c {
	case '"', '\\', '/':
		return append(buf, c), nil
	case 'b':
		return append(buf, '\b'), nil
	case 'f':
		return append(buf, '\f'), nil
	case 'n':
		return append(buf, '\n'), nil
	case 'r':
		return append(buf, '\r'), nil
	case 't':
		return append(buf, '\t'), nil
	case 'u':
	default:
		p.off -= 2
		return nil, p.syntaxErr("invalid escape")
	}
	r, ok := p.hex4()
	if !ok {
		return nil, p.syntaxErr("invalid \\u escape")
	}
	if utf16.IsSurrogate(r) {
		// A high surrogate must be followed by an escaped low one; anything
		// else cannot be written as UTF-8, and replacing it would change
		// the data.
		var r2 rune = -1
		if r < 0xdc00 && p.off+1 < len(p.data) && p.data[p.off] == '\\' && p.data[p.off+1] == 'u' {
			p.off += 2
			if r2, ok = p.hex4(); !ok {
				return nil, p.syntaxErr("invalid \\u escape")
			}
		}
		if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
			return nil, fmt.Errorf("dagcbor: json at offset %d: %w: %w: unpaired surrogate", p.off, ErrInvalidJSON, ErrUTF8)
		}
	}
	return utf8.AppendRune(buf, r), nil
}

func (p *jsonParser) hex4() (rune, bool) {
	if len(p.data)-p.off < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.data[p.off : p.off+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	p.off += 4
	return r, true
}

// jsonNumber is the syntax of a number: -? int (. frac)? ([eE] [+-]? exp)?
type jsonNumber struct {
	neg       bool
	intDigits []byte
	frac      []byte // nil without a '.'
	exp       int64  // saturated far beyond any digit count
	hasExp    bool
}

// scanNumber reads the syntax of a number at p.off.
func (p *jsonParser) scanNumber() (jsonNumber, error) {
	var n jsonNumber
	d := p.data
	if d[p.off] == '-' {
		n.neg = true
		p.off++
	}
	intStart := p.off
	switch {
	case p.off < len(d) && d[p.off] == '0':
		p.off++
	case p.off < len(d) && d[p.off] >= '1' && d[p.off] <= '9':
		for p.off < len(d) && isDigit(d[p.off]) {
			p.off++
		}
	default:
		return n, p.syntaxErr("invalid number")
	}
	n.intDigits = d[intStart:p.off]
	if p.off < len(d) && d[p.off] == '.' {
		p.off++
		fs := p.off
		for p.off < len(d) && isDigit(d[p.off]) {
			p.off++
		}
		if p.off == fs {
			return n, p.syntaxErr("invalid number")
		}
		n.frac = d[fs:p.off]
	}
	if p.off < len(d) && (d[p.off] == 'e' || d[p.off] == 'E') {
		n.hasExp = true
		p.off++
		expNeg := false
		if p.off < len(d) && (d[p.off] == '+' || d[p.off] == '-') {
			expNeg = d[p.off] == '-'
			p.off++
		}
		es := p.off
		for p.off < len(d) && isDigit(d[p.off]) {
			if n.exp < 1<<40 {
				n.exp = n.exp*10 + int64(d[p.off]-'0')
			}
			p.off++
		}
		if p.off == es {
			return n, p.syntaxErr("invalid number")
		}
		if expNeg {
			n.exp = -n.exp
		}
	}
	return n, nil
}

// number parses a JSON number, which must have an integer value in the int64
// range. Fractions and exponents are allowed when the value is integral
// (123.0, 1.5e1, 1e2); the check is exact decimal arithmetic, not float64
// rounding, so 1.0000000000000000001 is refused as a float.
func (p *jsonParser) number() (any, error) {
	start := p.off
	n, err := p.scanNumber()
	if err != nil {
		return nil, err
	}
	neg, intDigits, frac, exp := n.neg, n.intDigits, n.frac, n.exp
	if frac == nil && !n.hasExp {
		return p.integer(start, neg, intDigits, 0)
	}
	// value = digits × 10^exp, with digits = intDigits ‖ frac.
	digits := append(slices.Clip(intDigits), frac...)
	exp -= int64(len(frac))
	for len(digits) > 0 && digits[0] == '0' {
		digits = digits[1:]
	}
	for len(digits) > 0 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
		exp++
	}
	if len(digits) == 0 {
		return int64(0), nil
	}
	if exp < 0 {
		return nil, p.modelErr(start, ErrFloat, "number is not an integer")
	}
	if int64(len(digits))+exp > 19 {
		return nil, p.modelErr(start, ErrIntRange, "")
	}
	return p.integer(start, neg, digits, int(exp))
}

// integer converts digits × 10^zeros, negated if neg, to int64.
func (p *jsonParser) integer(start int, neg bool, digits []byte, zeros int) (any, error) {
	var u uint64
	for _, c := range digits {
		if u > (math.MaxUint64-9)/10 {
			return nil, p.modelErr(start, ErrIntRange, "")
		}
		u = u*10 + uint64(c-'0')
	}
	for range zeros {
		if u > math.MaxUint64/10 {
			return nil, p.modelErr(start, ErrIntRange, "")
		}
		u *= 10
	}
	switch {
	case !neg && u <= math.MaxInt64:
		return int64(u), nil
	case neg && u <= math.MaxInt64:
		return -int64(u), nil
	case neg && u == math.MaxInt64+1:
		return int64(math.MinInt64), nil
	}
	return nil, p.modelErr(start, ErrIntRange, "")
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
