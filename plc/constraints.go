package plc

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// Limits a directory applies to new operations (the reference directory's
// constraints.ts; spec v0.3). Logs that were accepted under older rules are
// verified without them (VerifyAuditLog).
const (
	MaxOpBytes             = 4000 // DAG-CBOR bytes of the signed operation
	MaxAlsoKnownAs         = 10
	MaxAlsoKnownAsLen      = 258 // a 253-character handle plus "at://"
	MinRotationKeys        = 1
	MaxRotationKeys        = 5
	MaxServices            = 10
	MaxServiceTypeLen      = 256
	MaxServiceEndpointLen  = 512
	MaxVerificationMethods = 10
	MaxIDLen               = 32  // service and verification method ids
	MaxVerificationKeyLen  = 256 // did:key strings of verification methods
)

// CheckConstraints applies the limits a directory puts on a new
// operation: its size, the counts and lengths of its fields, duplicate
// entries, the syntax of keys and service endpoints, and valid UTF-8. It
// does not look at signatures or the log (Validate does both). Lengths
// are counted in UTF-16 code units, as the reference's JavaScript does.
//
// Two rules go beyond the reference directory: rotation keys must not
// repeat (the spec says so; the reference never checked), and service
// endpoints must be http or https URLs with a host.
func CheckConstraints(op Op) error {
	if n := len(op.SignedCBOR()); n > MaxOpBytes {
		return reject(ErrTooLarge, "%d bytes of DAG-CBOR, %d maximum", n, MaxOpBytes)
	}
	switch o := op.(type) {
	case *Tombstone:
		return checkPrevCID(o.Prev)
	case *LegacyCreate:
		return reject(ErrMalformed, "legacy create operations are only read from old logs, never accepted as new ones")
	case *Operation:
		return checkOperation(o)
	}
	return reject(ErrMalformed, "unknown operation %T", op)
}

func checkOperation(o *Operation) error {
	if o.Prev != "" {
		if err := checkPrevCID(o.Prev); err != nil {
			return err
		}
	}
	if err := checkUTF8(o); err != nil {
		return err
	}
	if err := checkAlsoKnownAs(o.AlsoKnownAs); err != nil {
		return err
	}
	if err := checkRotationKeys(o.RotationKeys, true); err != nil {
		return err
	}
	if err := checkServices(o.Services); err != nil {
		return err
	}
	return checkVerificationMethods(o.VerificationMethods)
}

func checkUTF8(o *Operation) error {
	var bad string
	check := func(s string) {
		if bad == "" && !utf8.ValidString(s) {
			bad = s
		}
	}
	for _, s := range o.AlsoKnownAs {
		check(s)
	}
	for _, s := range o.RotationKeys {
		check(s)
	}
	for id, k := range o.VerificationMethods {
		check(id)
		check(k)
	}
	for id, s := range o.Services {
		check(id)
		check(s.Type)
		check(s.Endpoint)
	}
	check(o.Sig)
	if bad != "" {
		return reject(ErrMalformed, "string %q is not valid UTF-8", bad)
	}
	return nil
}

func checkAlsoKnownAs(aka []string) error {
	if len(aka) > MaxAlsoKnownAs {
		return reject(ErrLimit, "too many alsoKnownAs entries: %d, %d maximum", len(aka), MaxAlsoKnownAs)
	}
	seen := make(map[string]bool, len(aka))
	for _, s := range aka {
		if n := jsLen(s); n > MaxAlsoKnownAsLen {
			return reject(ErrLimit, "alsoKnownAs entry too long: %d characters, %d maximum", n, MaxAlsoKnownAsLen)
		}
		if seen[s] {
			return reject(ErrLimit, "duplicate alsoKnownAs entry %q", s)
		}
		seen[s] = true
	}
	return nil
}

// checkRotationKeys checks the count (a hard rule of the spec) and that
// every key is a supported did:key; new operations also must not repeat
// a key.
func checkRotationKeys(keys []string, strict bool) error {
	if len(keys) < MinRotationKeys {
		return reject(ErrLimit, "need at least %d rotation key", MinRotationKeys)
	}
	if len(keys) > MaxRotationKeys {
		return reject(ErrLimit, "too many rotation keys: %d, %d maximum", len(keys), MaxRotationKeys)
	}
	for i, k := range keys {
		if _, err := ParseRotationKey(k); err != nil {
			return err
		}
		if strict && contains(keys[:i], k) {
			return reject(ErrLimit, "duplicate rotation key %s", k)
		}
	}
	return nil
}

func checkServices(services map[string]Service) error {
	if len(services) > MaxServices {
		return reject(ErrLimit, "too many services: %d, %d maximum", len(services), MaxServices)
	}
	for _, id := range sortedKeys(services) {
		s := services[id]
		if n := jsLen(id); n > MaxIDLen {
			return reject(ErrLimit, "service id too long: %d characters, %d maximum", n, MaxIDLen)
		}
		if n := jsLen(s.Type); n > MaxServiceTypeLen {
			return reject(ErrLimit, "service %s: type too long: %d characters, %d maximum", id, n, MaxServiceTypeLen)
		}
		if n := jsLen(s.Endpoint); n > MaxServiceEndpointLen {
			return reject(ErrLimit, "service %s: endpoint too long: %d characters, %d maximum", id, n, MaxServiceEndpointLen)
		}
		if err := CheckEndpoint(s.Endpoint); err != nil {
			return reject(ErrBadEndpoint, "service %s: %v", id, err)
		}
	}
	return nil
}

// CheckEndpoint reports whether s is a usable service endpoint: an
// absolute http or https URL with a host and no user information.
func CheckEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return &endpointError{s, "scheme must be http or https"}
	case u.Host == "" || u.Opaque != "":
		return &endpointError{s, "no host"}
	case u.User != nil:
		return &endpointError{s, "user information not allowed"}
	case strings.ContainsAny(s, " \t\r\n"):
		return &endpointError{s, "whitespace not allowed"}
	}
	return nil
}

type endpointError struct{ endpoint, why string }

func (e *endpointError) Error() string { return "endpoint " + e.endpoint + ": " + e.why }

func checkVerificationMethods(vms map[string]string) error {
	if len(vms) > MaxVerificationMethods {
		return reject(ErrLimit, "too many verification methods: %d, %d maximum", len(vms), MaxVerificationMethods)
	}
	for _, id := range sortedKeys(vms) {
		k := vms[id]
		if n := jsLen(id); n > MaxIDLen {
			return reject(ErrLimit, "verification method id too long: %d characters, %d maximum", n, MaxIDLen)
		}
		if n := jsLen(k); n > MaxVerificationKeyLen {
			return reject(ErrLimit, "verification method %s: key too long: %d characters, %d maximum", id, n, MaxVerificationKeyLen)
		}
		if err := checkDIDKeySyntax(k); err != nil {
			return err
		}
	}
	return nil
}

// jsLen is the length of s in UTF-16 code units, JavaScript's
// String.prototype.length.
func jsLen(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}
