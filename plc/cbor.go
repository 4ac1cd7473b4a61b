package plc

import (
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

// Map keys in canonical DAG-CBOR order (shorter first, then bytewise):
//
//	plc_operation: sig prev type services alsoKnownAs rotationKeys verificationMethods
//	plc_tombstone: sig prev type
//	create:        sig prev type handle service signingKey recoveryKey
//	service:       type endpoint

func (o *Operation) appendCBOR(b []byte, withSig bool) []byte {
	n := 6
	if withSig && o.Sig != "" {
		n++
		b = dagcbor.AppendMapHeader(b, n)
		b = appendEntry(b, "sig", o.Sig)
	} else {
		b = dagcbor.AppendMapHeader(b, n)
	}
	b = dagcbor.AppendText(b, "prev")
	b = appendNullableText(b, o.Prev)
	b = appendEntry(b, "type", TypeOperation)
	b = dagcbor.AppendText(b, "services")
	b = dagcbor.AppendMapHeader(b, len(o.Services))
	for _, id := range sortedKeys(o.Services) {
		s := o.Services[id]
		b = dagcbor.AppendText(b, id)
		b = dagcbor.AppendMapHeader(b, 2)
		b = appendEntry(b, "type", s.Type)
		b = appendEntry(b, "endpoint", s.Endpoint)
	}
	b = dagcbor.AppendText(b, "alsoKnownAs")
	b = appendTextArray(b, o.AlsoKnownAs)
	b = dagcbor.AppendText(b, "rotationKeys")
	b = appendTextArray(b, o.RotationKeys)
	b = dagcbor.AppendText(b, "verificationMethods")
	b = dagcbor.AppendMapHeader(b, len(o.VerificationMethods))
	for _, id := range sortedKeys(o.VerificationMethods) {
		b = appendEntry(b, id, o.VerificationMethods[id])
	}
	return b
}

func (t *Tombstone) appendCBOR(b []byte, withSig bool) []byte {
	if withSig && t.Sig != "" {
		b = dagcbor.AppendMapHeader(b, 3)
		b = appendEntry(b, "sig", t.Sig)
	} else {
		b = dagcbor.AppendMapHeader(b, 2)
	}
	b = appendEntry(b, "prev", t.Prev)
	return appendEntry(b, "type", TypeTombstone)
}

func (l *LegacyCreate) appendCBOR(b []byte, withSig bool) []byte {
	if withSig && l.Sig != "" {
		b = dagcbor.AppendMapHeader(b, 7)
		b = appendEntry(b, "sig", l.Sig)
	} else {
		b = dagcbor.AppendMapHeader(b, 6)
	}
	b = dagcbor.AppendText(b, "prev")
	b = dagcbor.AppendNull(b)
	b = appendEntry(b, "type", TypeCreate)
	b = appendEntry(b, "handle", l.Handle)
	b = appendEntry(b, "service", l.Service)
	b = appendEntry(b, "signingKey", l.SigningKey)
	return appendEntry(b, "recoveryKey", l.RecoveryKey)
}

func appendEntry(b []byte, key, value string) []byte {
	return dagcbor.AppendText(dagcbor.AppendText(b, key), value)
}

func appendNullableText(b []byte, s string) []byte {
	if s == "" {
		return dagcbor.AppendNull(b)
	}
	return dagcbor.AppendText(b, s)
}

func appendTextArray(b []byte, list []string) []byte {
	b = dagcbor.AppendArrayHeader(b, len(list))
	for _, s := range list {
		b = dagcbor.AppendText(b, s)
	}
	return b
}

// sortedKeys returns the keys of m in canonical DAG-CBOR order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	dagcbor.SortKeys(keys)
	return keys
}

// DecodeOp reads a signed operation from its DAG-CBOR encoding (strict:
// canonical form only, no unknown fields; see ParseOp for the shape).
func DecodeOp(data []byte) (Op, error) {
	v, err := dagcbor.Unmarshal(data)
	if err != nil {
		return nil, malformed("not DAG-CBOR: %v", err)
	}
	return fromModel(v)
}

// ParseOp reads a signed operation from its JSON form, as POSTed to a
// directory. The shape is checked strictly: the "type" decides the fields,
// every field is required with its JSON type ("prev" may be null where the
// format allows), unknown fields are refused, "prev" must be a CID string,
// and "sig" must be a non-empty string. Limits, keys and signatures are
// Validate's business. Errors wrap ErrMalformed.
func ParseOp(data []byte) (Op, error) {
	v, err := dagcbor.FromJSON(data)
	if err != nil {
		return nil, malformed("not data-model JSON: %v", err)
	}
	return fromModel(v)
}

func fromModel(v any) (Op, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, malformed("an operation must be an object")
	}
	typ, ok := m["type"].(string)
	if !ok {
		return nil, malformed(`"type" must be a string`)
	}
	var (
		op  Op
		err error
	)
	switch typ {
	case TypeOperation:
		op, err = operationFromModel(m)
	case TypeTombstone:
		op, err = tombstoneFromModel(m)
	case TypeCreate:
		op, err = legacyFromModel(m)
	default:
		return nil, malformed("unknown operation type %q", typ)
	}
	if err != nil {
		return nil, err
	}
	if op.Signature() == "" {
		return nil, malformed(`"sig" must not be empty`)
	}
	return op, nil
}

// fields checks that m has exactly the given keys.
func fields(m map[string]any, typ string, keys ...string) error {
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			return malformed("%s: missing field %q", typ, k)
		}
	}
	if len(m) != len(keys) {
		for k := range m {
			if !contains(keys, k) {
				return malformed("%s: unknown field %q", typ, k)
			}
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func operationFromModel(m map[string]any) (Op, error) {
	if err := fields(m, TypeOperation, "type", "rotationKeys", "verificationMethods", "alsoKnownAs", "services", "prev", "sig"); err != nil {
		return nil, err
	}
	o := &Operation{}
	var err error
	if o.RotationKeys, err = stringList(m, "rotationKeys"); err != nil {
		return nil, err
	}
	if o.AlsoKnownAs, err = stringList(m, "alsoKnownAs"); err != nil {
		return nil, err
	}
	if o.VerificationMethods, err = stringMap(m, "verificationMethods"); err != nil {
		return nil, err
	}
	if o.Services, err = services(m); err != nil {
		return nil, err
	}
	if o.Prev, err = prev(m, true); err != nil {
		return nil, err
	}
	if o.Sig, err = str(m, "sig"); err != nil {
		return nil, err
	}
	return o, nil
}

func tombstoneFromModel(m map[string]any) (Op, error) {
	if err := fields(m, TypeTombstone, "type", "prev", "sig"); err != nil {
		return nil, err
	}
	t := &Tombstone{}
	var err error
	if t.Prev, err = prev(m, false); err != nil {
		return nil, err
	}
	if t.Sig, err = str(m, "sig"); err != nil {
		return nil, err
	}
	return t, nil
}

func legacyFromModel(m map[string]any) (Op, error) {
	if err := fields(m, TypeCreate, "type", "signingKey", "recoveryKey", "handle", "service", "prev", "sig"); err != nil {
		return nil, err
	}
	if m["prev"] != nil {
		return nil, malformed(`create: "prev" must be null`)
	}
	l := &LegacyCreate{}
	for _, f := range []struct {
		key string
		dst *string
	}{{"signingKey", &l.SigningKey}, {"recoveryKey", &l.RecoveryKey}, {"handle", &l.Handle}, {"service", &l.Service}, {"sig", &l.Sig}} {
		s, err := str(m, f.key)
		if err != nil {
			return nil, err
		}
		*f.dst = s
	}
	return l, nil
}

func str(m map[string]any, key string) (string, error) {
	s, ok := m[key].(string)
	if !ok {
		return "", malformed("%q must be a string", key)
	}
	return s, nil
}

func stringList(m map[string]any, key string) ([]string, error) {
	list, ok := m[key].([]any)
	if !ok {
		return nil, malformed("%q must be an array", key)
	}
	out := make([]string, len(list))
	for i, v := range list {
		s, ok := v.(string)
		if !ok {
			return nil, malformed("%s[%d] must be a string", key, i)
		}
		out[i] = s
	}
	return out, nil
}

func stringMap(m map[string]any, key string) (map[string]string, error) {
	obj, ok := m[key].(map[string]any)
	if !ok {
		return nil, malformed("%q must be an object", key)
	}
	out := make(map[string]string, len(obj))
	for k, v := range obj {
		s, ok := v.(string)
		if !ok {
			return nil, malformed("%s.%s must be a string", key, k)
		}
		out[k] = s
	}
	return out, nil
}

func services(m map[string]any) (map[string]Service, error) {
	obj, ok := m["services"].(map[string]any)
	if !ok {
		return nil, malformed(`"services" must be an object`)
	}
	out := make(map[string]Service, len(obj))
	for id, v := range obj {
		sm, ok := v.(map[string]any)
		if !ok {
			return nil, malformed("services.%s must be an object", id)
		}
		if err := fields(sm, "services."+id, "type", "endpoint"); err != nil {
			return nil, err
		}
		typ, ok1 := sm["type"].(string)
		endpoint, ok2 := sm["endpoint"].(string)
		if !ok1 || !ok2 {
			return nil, malformed("services.%s: type and endpoint must be strings", id)
		}
		out[id] = Service{Type: typ, Endpoint: endpoint}
	}
	return out, nil
}

// prev reads "prev": null (if allowed) or the canonical string of a
// dag-cbor sha2-256 CIDv1.
func prev(m map[string]any, nullable bool) (string, error) {
	v := m["prev"]
	if v == nil {
		if nullable {
			return "", nil
		}
		return "", malformed(`"prev" must not be null`)
	}
	s, ok := v.(string)
	if !ok {
		return "", malformed(`"prev" must be a string`)
	}
	if err := checkPrevCID(s); err != nil {
		return "", err
	}
	return s, nil
}

func checkPrevCID(s string) error {
	c, err := cid.Decode(s)
	if err != nil {
		return malformed("prev %q is not a CID: %v", s, err)
	}
	if !dagcbor.IsBlessed(c, dagcbor.CodecDagCBOR) || c.String() != s {
		return malformed("prev %q is not the base32 string of a dag-cbor sha2-256 CIDv1", s)
	}
	return nil
}
