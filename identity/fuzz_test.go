package identity

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// FuzzCheckOrigin: an accepted endpoint comes back as a bare origin that is
// accepted again unchanged, and AllowInsecure only ever accepts more.
func FuzzCheckOrigin(f *testing.F) {
	for _, tc := range originCases {
		f.Add(tc.in, tc.insecure)
	}
	f.Fuzz(func(t *testing.T, raw string, insecure bool) {
		got, err := checkOrigin(raw, insecure)
		if err != nil {
			if got != "" {
				t.Fatalf("error %v with result %q", err, got)
			}
			if !insecure {
				return
			}
			if _, err2 := checkOrigin(raw, false); err2 == nil {
				t.Fatalf("%q accepted securely but not with AllowInsecure", raw)
			}
			return
		}
		u, err := url.Parse(got)
		if err != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Host == "" {
			t.Fatalf("%q -> %q is not a bare origin", raw, got)
		}
		if u.Scheme != "https" && !(insecure && u.Scheme == "http") {
			t.Fatalf("%q -> scheme %q", raw, u.Scheme)
		}
		if again, err := checkOrigin(got, insecure); err != nil || again != got {
			t.Fatalf("%q -> %q -> %q, %v", raw, got, again, err)
		}
		if got2, err := checkOrigin(raw, true); !insecure && (err != nil || got2 != got) {
			t.Fatalf("%q accepted securely but not with AllowInsecure: %v", raw, err)
		}
	})
}

// FuzzDIDFromTXT checks didFromTXT against a model: the set of valid DIDs
// named by did= records decides (none: not found; one: it; more: failure).
func FuzzDIDFromTXT(f *testing.F) {
	for _, tc := range txtCases {
		f.Add(strings.Join(tc.records, "\n"))
	}
	f.Fuzz(func(t *testing.T, joined string) {
		records := strings.Split(joined, "\n")
		named := map[string]bool{}
		for _, r := range records {
			if v, ok := strings.CutPrefix(r, "did="); ok {
				if _, err := syntax.ParseDID(v); err == nil {
					named[v] = true
				}
			}
		}
		got, err := didFromTXT(records)
		switch len(named) {
		case 0:
			if !errors.Is(err, ErrHandleNotFound) {
				t.Fatalf("%q: %q, %v; want ErrHandleNotFound", records, got, err)
			}
		case 1:
			if err != nil || !named[got.String()] {
				t.Fatalf("%q: %q, %v", records, got, err)
			}
		default:
			if !errors.Is(err, ErrHandleResolutionFailed) {
				t.Fatalf("%q: %q, %v; want ErrHandleResolutionFailed", records, got, err)
			}
		}
	})
}

// documentSeeds are DID documents of the shapes the tests use, about
// fuzzDID, with the K-256 key of the interop signature fixtures.
func documentSeeds() []string {
	const key = "zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc"
	seeds := []string{
		string(docSpec{did: fuzzDID, handle: "alice.test", key: key, pds: "https://pds.example.com"}.json()),
		string(docSpec{did: fuzzDID, key: "z25z9DTpsiYYJKGsWmSPJK2NFN8PcJtZig12K59UgW7q5t", keyType: "EcdsaSecp256k1VerificationKey2019"}.json()),
		string(docSpec{did: fuzzDID, key: "zxdM8dSstjrpZaRUwBmDvjGXweKuEMVN95A9oJBFjkWMh", keyType: "EcdsaSecp256r1VerificationKey2019", pds: "http://localhost:2583"}.json()),
		`{"id":"` + fuzzDID + `","service":[{"id":"#atproto_pds","type":"BskyFeedGenerator","serviceEndpoint":"https://a.example.com"},{"id":"#atproto_pds","type":"AtprotoPersonalDataServer","serviceEndpoint":"https://b.example.com/"}]}`,
		`{"id":"` + fuzzDID + `","alsoKnownAs":["https://alice.test","at://not_a_handle","at://Bob.Test"]}`,
		`{"id":"` + fuzzDID + `","verificationMethod":[{"id":"#atproto","type":"Multikey","controller":"did:plc:other","publicKeyMultibase":"` + key + `"}]}`,
		`{"id":"did:plc:other"}`,
		`{"id":["x"]}`,
		`{}`,
		`null`,
	}
	return seeds
}

const fuzzDID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"

// FuzzDocument: any bytes either fail as a resolution failure or give an
// Identity of the DID whose missing parts each carry their reason, whose
// endpoint is a checked origin and whose declared handle is a normalized
// handle.
func FuzzDocument(f *testing.F) {
	for _, s := range documentSeeds() {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, b []byte, insecure bool) {
		doc, err := parseDocument(fuzzDID, b)
		if err != nil {
			if !errors.Is(err, ErrDIDResolutionFailed) {
				t.Fatalf("%v is not ErrDIDResolutionFailed", err)
			}
			return
		}
		id := newIdentity(doc, insecure)
		if id.DID != fuzzDID || id.Handle != syntax.HandleInvalid {
			t.Fatalf("DID %s Handle %s", id.DID, id.Handle)
		}
		if (id.SigningKey == nil) != (id.keyErr != nil) || (id.PDSEndpoint == "") != (id.pdsErr != nil) {
			t.Fatalf("key %v/%v, PDS %q/%v", id.SigningKey, id.keyErr, id.PDSEndpoint, id.pdsErr)
		}
		if id.PDSEndpoint != "" {
			if again, err := checkOrigin(id.PDSEndpoint, insecure); err != nil || again != id.PDSEndpoint {
				t.Fatalf("PDSEndpoint %q does not re-check: %v", id.PDSEndpoint, err)
			}
		}
		if h := id.DeclaredHandle; h != "" {
			if p, err := syntax.ParseHandle(h.String()); err != nil || p.Normalize() != h {
				t.Fatalf("DeclaredHandle %q", h)
			}
		}
	})
}
