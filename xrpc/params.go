package xrpc

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
)

// Params reads the query parameters of a request the way the lexicons shape
// them. Every accessor names its parameter in the InvalidRequest (400) error
// it returns. The rules:
//
//   - An empty value (?since=) counts as absent, as in the TypeScript
//     reference; a required parameter that is absent or empty is an error.
//   - A scalar parameter given twice (?did=a&did=b) is an error; arrays are
//     repeated parameters (?cids=a&cids=b), read with Strings or CIDs.
//   - Unknown parameters are ignored.
//   - Formats are checked with indigo's atproto/syntax parsers; CIDs are
//     also decoded with go-cid and must be CIDv1.
//
// Optional accessors return the zero value when the parameter is absent.
type Params struct {
	values url.Values
}

// ParamsFrom parses the request's query string strictly: a malformed one
// (a bad %-escape, a ';') is an InvalidRequest error, where r.URL.Query
// would silently drop the pair.
func ParamsFrom(r *http.Request) (Params, error) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return Params{}, InvalidRequest("Malformed query string").WithCause(err)
	}
	return Params{values: v}, nil
}

// ParamsOf wraps already parsed values (for tests and callers that have
// them).
func ParamsOf(v url.Values) Params { return Params{values: v} }

// lookup returns the single non-empty value of name, or "" when absent.
func (p Params) lookup(name string) (string, error) {
	var val string
	n := 0
	for _, v := range p.values[name] {
		if v != "" {
			val = v
			n++
		}
	}
	if n > 1 {
		return "", InvalidRequestf("Parameter %q given more than once", name)
	}
	return val, nil
}

// required returns the value of name, or an error when absent.
func (p Params) required(name string) (string, error) {
	v, err := p.lookup(name)
	if err == nil && v == "" {
		err = InvalidRequestf("Missing required parameter %q", name)
	}
	return v, err
}

func invalidParam(name, format string, cause error) *Error {
	return InvalidRequestf("Parameter %q is not a valid %s (%v)", name, format, cause).WithCause(cause)
}

// String returns the value of name, or "" when it is absent and not
// required.
func (p Params) String(name string, required bool) (string, error) {
	if required {
		return p.required(name)
	}
	return p.lookup(name)
}

// Strings returns every non-empty value of the repeated parameter name, in
// order (nil when absent).
func (p Params) Strings(name string) []string {
	var out []string
	for _, v := range p.values[name] {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// parse reads a required (req) or optional parameter with a syntax parser.
func parse[T ~string](p Params, name, format string, req bool, parse func(string) (T, error)) (T, error) {
	raw, err := p.String(name, req)
	if err != nil || raw == "" {
		return "", err
	}
	v, err := parse(raw)
	if err != nil {
		return "", invalidParam(name, format, err)
	}
	return v, nil
}

// DID returns the required DID parameter name.
func (p Params) DID(name string) (syntax.DID, error) {
	return parse(p, name, "did", true, syntax.ParseDID)
}

// OptionalDID returns the DID parameter name, or "" when absent.
func (p Params) OptionalDID(name string) (syntax.DID, error) {
	return parse(p, name, "did", false, syntax.ParseDID)
}

// Handle returns the required handle parameter name, normalized to lower
// case.
func (p Params) Handle(name string) (syntax.Handle, error) {
	h, err := parse(p, name, "handle", true, syntax.ParseHandle)
	return h.Normalize(), err
}

// AtIdentifier returns the required at-identifier (a DID or a handle)
// parameter name; a handle is normalized to lower case.
func (p Params) AtIdentifier(name string) (syntax.AtIdentifier, error) {
	id, err := parse(p, name, "at-identifier", true, syntax.ParseAtIdentifier)
	if err == nil && id.IsHandle() {
		id = syntax.AtIdentifier(syntax.Handle(id).Normalize())
	}
	return id, err
}

// NSID returns the required NSID parameter name.
func (p Params) NSID(name string) (syntax.NSID, error) {
	return parse(p, name, "nsid", true, syntax.ParseNSID)
}

// RecordKey returns the required record-key parameter name.
func (p Params) RecordKey(name string) (syntax.RecordKey, error) {
	return parse(p, name, "record-key", true, syntax.ParseRecordKey)
}

// TID returns the required TID parameter name.
func (p Params) TID(name string) (syntax.TID, error) {
	return parse(p, name, "tid", true, syntax.ParseTID)
}

// OptionalTID returns the TID parameter name (such as getRepo's since), or
// "" when absent.
func (p Params) OptionalTID(name string) (syntax.TID, error) {
	return parse(p, name, "tid", false, syntax.ParseTID)
}

// ATURI returns the at-uri parameter name, or "" when absent and not
// required.
func (p Params) ATURI(name string, required bool) (syntax.ATURI, error) {
	return parse(p, name, "at-uri", required, syntax.ParseATURI)
}

// CID returns the required CID parameter name.
func (p Params) CID(name string) (cid.Cid, error) {
	return p.cid(name, true)
}

// OptionalCID returns the CID parameter name, or cid.Undef when absent.
func (p Params) OptionalCID(name string) (cid.Cid, error) {
	return p.cid(name, false)
}

func (p Params) cid(name string, required bool) (cid.Cid, error) {
	raw, err := p.String(name, required)
	if err != nil || raw == "" {
		return cid.Undef, err
	}
	return parseCID(name, raw)
}

// CIDs returns the required repeated CID parameter name (getBlocks' cids):
// at least one value, every one valid.
func (p Params) CIDs(name string) ([]cid.Cid, error) {
	raws := p.Strings(name)
	if len(raws) == 0 {
		return nil, InvalidRequestf("Missing required parameter %q", name)
	}
	out := make([]cid.Cid, len(raws))
	for i, raw := range raws {
		c, err := parseCID(name, raw)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

// parseCID checks the lexicon syntax first (cheap, and it rejects CIDv0),
// then decodes.
func parseCID(name, raw string) (cid.Cid, error) {
	if _, err := syntax.ParseCID(raw); err != nil {
		return cid.Undef, invalidParam(name, "cid", err)
	}
	c, err := cid.Decode(raw)
	if err != nil {
		return cid.Undef, invalidParam(name, "cid", err)
	}
	if c.Version() != 1 {
		return cid.Undef, invalidParam(name, "cid", fmt.Errorf("CIDv%d not allowed", c.Version()))
	}
	return c, nil
}

// Int returns the integer parameter name, or def when absent. The value
// must be decimal ([-]digits) and within [min, max]; out of range is an
// error, not clamped.
func (p Params) Int(name string, def, min, max int64) (int64, error) {
	v, ok, err := p.OptionalInt(name)
	if err != nil || !ok {
		return def, err
	}
	if v < min || v > max {
		return 0, InvalidRequestf("Parameter %q must be between %d and %d", name, min, max)
	}
	return v, nil
}

// OptionalInt returns the integer parameter name and whether it was given,
// for parameters whose absence means something (subscribeRepos' cursor).
func (p Params) OptionalInt(name string) (v int64, ok bool, err error) {
	raw, err := p.lookup(name)
	if err != nil || raw == "" {
		return 0, false, err
	}
	if !isDecimal(raw) {
		return 0, false, InvalidRequestf("Parameter %q must be an integer", name)
	}
	v, err = strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return 0, false, InvalidRequestf("Parameter %q is out of range", name).WithCause(err)
	}
	return v, true, nil
}

// isDecimal reports whether s is an optional '-' and one or more ASCII
// digits (strconv.ParseInt alone would also take a leading '+').
func isDecimal(s string) bool {
	if len(s) > 0 && s[0] == '-' {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Bool returns the boolean parameter name, or def when absent. Only "true"
// and "false" are accepted.
func (p Params) Bool(name string, def bool) (bool, error) {
	raw, err := p.lookup(name)
	switch {
	case err != nil:
		return false, err
	case raw == "":
		return def, nil
	case raw == "true":
		return true, nil
	case raw == "false":
		return false, nil
	}
	return false, InvalidRequestf("Parameter %q must be true or false", name)
}
