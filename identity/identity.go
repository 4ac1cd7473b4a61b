package identity

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	indigo "github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/mr-tron/base58"

	"github.com/reservoir-atproto/reservoir/internal/netguard"
)

// Identity is what a Resolver knows about one DID: the parts of its DID
// document that sync uses, and its handle. A Resolver shares one *Identity
// between all callers; treat it as read-only.
type Identity struct {
	DID syntax.DID
	// Handle is verified both ways (it resolves to DID and the document
	// claims it), or syntax.HandleInvalid ("handle.invalid").
	Handle syntax.Handle
	// DeclaredHandle is the first valid at://<handle> entry of the
	// document's alsoKnownAs, normalized to lower case and not verified, or
	// "" if there is none. A relay compares #identity.handle with it.
	DeclaredHandle syntax.Handle
	// SigningKey is the #atproto verification method (a K-256 or P-256
	// Multikey, or the legacy Ecdsa...VerificationKey2019 form), or nil when
	// the document has no usable one; Resolver.SigningKey then says why.
	SigningKey atcrypto.PublicKey
	// PDSEndpoint is the #atproto_pds service endpoint as an origin
	// ("https://pds.example.com", no trailing slash), or "" when the document
	// has no acceptable one; Resolver.PDSEndpoint then says why.
	PDSEndpoint string

	keyErr error // why SigningKey is nil
	pdsErr error // why PDSEndpoint is ""
}

// newIdentity extracts an Identity from a document already checked to be
// about doc.DID. Handle is left invalid; the caller verifies it.
func newIdentity(doc *indigo.DIDDocument, allowInsecure bool) *Identity {
	parsed := indigo.ParseIdentity(doc)
	id := &Identity{DID: doc.DID, Handle: syntax.HandleInvalid}
	if h, err := parsed.DeclaredHandle(); err == nil {
		id.DeclaredHandle = h
	}
	id.SigningKey, id.keyErr = signingKeyOf(&parsed)
	id.PDSEndpoint, id.pdsErr = pdsEndpoint(doc, allowInsecure)
	return id
}

// signingKeyOf parses the #atproto key with indigo (Multikey, and the legacy
// types with an uncompressed key). The legacy types also get the compressed
// form here: the interop signature fixtures use it and the TypeScript
// reference accepts both.
func signingKeyOf(parsed *indigo.Identity) (atcrypto.PublicKey, error) {
	key, err := parsed.PublicKey()
	if err == nil {
		return key, nil
	}
	vm := parsed.Keys["atproto"]
	mb, ok := strings.CutPrefix(vm.PublicKeyMultibase, "z")
	if !ok {
		return nil, err
	}
	var parse func([]byte) (atcrypto.PublicKey, error)
	switch vm.Type {
	case "EcdsaSecp256r1VerificationKey2019":
		parse = func(b []byte) (atcrypto.PublicKey, error) { return atcrypto.ParsePublicBytesP256(b) }
	case "EcdsaSecp256k1VerificationKey2019":
		parse = func(b []byte) (atcrypto.PublicKey, error) { return atcrypto.ParsePublicBytesK256(b) }
	default:
		return nil, err
	}
	raw, decErr := base58.Decode(mb)
	if decErr != nil || len(raw) != 33 {
		return nil, err
	}
	key, cErr := parse(raw)
	if cErr != nil {
		return nil, fmt.Errorf("%s key: %w", vm.Type, cErr)
	}
	return key, nil
}

// pdsEndpoint finds the first service whose id ends with #atproto_pds and
// whose type is AtprotoPersonalDataServer, and checks its endpoint.
func pdsEndpoint(doc *indigo.DIDDocument, allowInsecure bool) (string, error) {
	for _, s := range doc.Service {
		if !strings.HasSuffix(s.ID, "#atproto_pds") || s.Type != "AtprotoPersonalDataServer" {
			continue
		}
		origin, err := checkOrigin(s.ServiceEndpoint, allowInsecure)
		if err != nil {
			return "", fmt.Errorf("#atproto_pds: %w", err)
		}
		return origin, nil
	}
	return "", errors.New("no #atproto_pds service of type AtprotoPersonalDataServer")
}

// checkOrigin accepts an endpoint that is an origin: https (or http when
// allowInsecure), a host, an optional port, and no user, path (beyond "/"),
// query or fragment. Without allowInsecure the host must also be a public IP
// or a DNS name with the syntax of a handle (not localhost). It returns the
// origin with the host lower-cased, the port in canonical form and no
// trailing slash.
func checkOrigin(raw string, allowInsecure bool) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("endpoint %q: %w", raw, err)
	}
	switch {
	case u.Scheme != "https" && !(u.Scheme == "http" && allowInsecure):
		return "", fmt.Errorf("endpoint %q: scheme must be https", raw)
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("endpoint %q: no host", raw)
	case u.User != nil:
		return "", fmt.Errorf("endpoint %q: has user info", raw)
	case u.Path != "" && u.Path != "/", u.RawQuery != "" || u.ForceQuery, u.Fragment != "":
		return "", fmt.Errorf("endpoint %q: must be an origin, without path, query or fragment", raw)
	}
	host := strings.ToLower(u.Hostname())
	ip, ipErr := netip.ParseAddr(host)
	switch {
	case strings.Contains(host, "%"):
		return "", fmt.Errorf("endpoint %q: bad host", raw)
	case ipErr == nil:
		if !allowInsecure && !netguard.Public(ip) {
			return "", fmt.Errorf("endpoint %q: non-public address needs AllowInsecure", raw)
		}
		if ip.Is6() {
			host = "[" + host + "]"
		}
	case !allowInsecure:
		if _, err := syntax.ParseHandle(host); err != nil || host == "localhost" || strings.HasSuffix(host, ".localhost") {
			return "", fmt.Errorf("endpoint %q: host is not a public DNS name", raw)
		}
	}
	origin := u.Scheme + "://" + host
	if port := u.Port(); port != "" || strings.HasSuffix(u.Host, ":") {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("endpoint %q: bad port", raw)
		}
		origin += ":" + strconv.Itoa(n)
	}
	return origin, nil
}
