package plc

import (
	"unicode/utf8"
)

// The JSON forms write keys in canonical DAG-CBOR order, which is also the
// order plc.directory serves (it stores operations as PostgreSQL jsonb,
// which sorts keys the same way). JSON has no canonical form, though:
// CIDs and signatures are always over the DAG-CBOR encoding.

func (o *Operation) MarshalJSON() ([]byte, error) { return o.appendJSON(nil), nil }
func (t *Tombstone) MarshalJSON() ([]byte, error) { return t.appendJSON(nil), nil }
func (l *LegacyCreate) MarshalJSON() ([]byte, error) {
	return l.appendJSON(nil), nil
}

func (o *Operation) appendJSON(b []byte) []byte {
	b = append(b, '{')
	if o.Sig != "" {
		b = appendJSONField(b, "sig", o.Sig)
		b = append(b, ',')
	}
	b = append(b, `"prev":`...)
	if o.Prev == "" {
		b = append(b, "null"...)
	} else {
		b = appendJSONString(b, o.Prev)
	}
	b = append(b, ',')
	b = appendJSONField(b, "type", TypeOperation)
	b = append(b, `,"services":`...)
	b = appendServicesJSON(b, o.Services)
	b = append(b, `,"alsoKnownAs":`...)
	b = appendJSONStrings(b, o.AlsoKnownAs)
	b = append(b, `,"rotationKeys":`...)
	b = appendJSONStrings(b, o.RotationKeys)
	b = append(b, `,"verificationMethods":`...)
	b = appendJSONStringMap(b, o.VerificationMethods)
	return append(b, '}')
}

func (t *Tombstone) appendJSON(b []byte) []byte {
	b = append(b, '{')
	if t.Sig != "" {
		b = appendJSONField(b, "sig", t.Sig)
		b = append(b, ',')
	}
	b = appendJSONField(b, "prev", t.Prev)
	b = append(b, ',')
	b = appendJSONField(b, "type", TypeTombstone)
	return append(b, '}')
}

func (l *LegacyCreate) appendJSON(b []byte) []byte {
	b = append(b, '{')
	if l.Sig != "" {
		b = appendJSONField(b, "sig", l.Sig)
		b = append(b, ',')
	}
	b = append(b, `"prev":null,`...)
	b = appendJSONField(b, "type", TypeCreate)
	for _, f := range [...]struct{ k, v string }{
		{"handle", l.Handle}, {"service", l.Service}, {"signingKey", l.SigningKey}, {"recoveryKey", l.RecoveryKey},
	} {
		b = append(b, ',')
		b = appendJSONField(b, f.k, f.v)
	}
	return append(b, '}')
}

func appendServicesJSON(b []byte, services map[string]Service) []byte {
	b = append(b, '{')
	for i, id := range sortedKeys(services) {
		if i > 0 {
			b = append(b, ',')
		}
		s := services[id]
		b = appendJSONString(b, id)
		b = append(b, ":{"...)
		b = appendJSONField(b, "type", s.Type)
		b = append(b, ',')
		b = appendJSONField(b, "endpoint", s.Endpoint)
		b = append(b, '}')
	}
	return append(b, '}')
}

func appendJSONStringMap(b []byte, m map[string]string) []byte {
	b = append(b, '{')
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONField(b, k, m[k])
	}
	return append(b, '}')
}

func appendJSONStrings(b []byte, list []string) []byte {
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

func appendJSONField(b []byte, key, value string) []byte {
	b = appendJSONString(b, key)
	b = append(b, ':')
	return appendJSONString(b, value)
}

// appendJSONString writes s as a JSON string the way JSON.stringify does:
// only '"', '\\' and control characters are escaped. Invalid UTF-8 (which
// CheckConstraints refuses) is written as U+FFFD so the output is always
// valid JSON.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, "\ufffd"...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		default:
			b = append(b, c)
		}
		i++
	}
	return append(b, '"')
}

// AppendJSON appends the JSON form of op to b.
func AppendJSON(b []byte, op Op) []byte {
	switch o := op.(type) {
	case *Operation:
		return o.appendJSON(b)
	case *Tombstone:
		return o.appendJSON(b)
	case *LegacyCreate:
		return o.appendJSON(b)
	}
	return append(b, "null"...)
}
