package identity

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	indigo "github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/mr-tron/base58"
	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

var ctx = context.Background()

func TestLookupDIDPLC(t *testing.T) {
	for _, curve := range []string{"k256", "p256"} {
		t.Run(curve, func(t *testing.T) {
			e := newEnv(t, Options{AllowInsecure: true})
			priv, multikey := newKey(t, curve)
			if prefix := map[string]string{"k256": "zQ3s", "p256": "zDna"}[curve]; !strings.HasPrefix(multikey, prefix) {
				t.Fatalf("multikey %s does not start with %s", multikey, prefix)
			}
			did := "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
			e.setDoc(did, docSpec{did: did, handle: "alice.test", key: multikey, pds: "http://127.0.0.1:1234"}.json())
			e.dns.setTXT("_atproto.alice.test", "did="+did)

			id, err := e.r.LookupDID(ctx, syntax.DID(did))
			if err != nil {
				t.Fatal(err)
			}
			if id.DID != syntax.DID(did) || id.Handle != "alice.test" || id.DeclaredHandle != "alice.test" {
				t.Errorf("DID %s, Handle %s, DeclaredHandle %s", id.DID, id.Handle, id.DeclaredHandle)
			}
			if id.PDSEndpoint != "http://127.0.0.1:1234" {
				t.Errorf("PDSEndpoint %q", id.PDSEndpoint)
			}
			msg := []byte("a commit to sign")
			sig, err := priv.HashAndSign(msg)
			if err != nil {
				t.Fatal(err)
			}
			key, err := e.r.SigningKey(ctx, syntax.DID(did))
			if err != nil {
				t.Fatal(err)
			}
			if err := key.HashAndVerify(msg, sig); err != nil {
				t.Errorf("signature by the document's key does not verify: %v", err)
			}
			if err := key.HashAndVerify([]byte("another message"), sig); err == nil {
				t.Error("signature verifies for another message")
			}
			other, _ := newKey(t, curve)
			otherSig, _ := other.HashAndSign(msg)
			if err := key.HashAndVerify(msg, otherSig); err == nil {
				t.Error("signature by another key verifies")
			}
			pds, err := e.r.PDSEndpoint(ctx, syntax.DID(did))
			if err != nil || pds != "http://127.0.0.1:1234" {
				t.Errorf("PDSEndpoint = %q, %v", pds, err)
			}
			if n := e.docRequests(did); n != 1 {
				t.Errorf("directory asked %d times for three lookups, want 1", n)
			}
			if !e.net.agents[DefaultUserAgent] {
				t.Errorf("User-Agent %q not sent; saw %v", DefaultUserAgent, e.net.agents)
			}
		})
	}
}

// TestPLCOnLoopbackDefaultClient: the brief's stub setup, with the default
// HTTP client and AllowInsecure off. The directory's own host is let through
// the non-public address guard because the operator configured it.
func TestPLCOnLoopbackDefaultClient(t *testing.T) {
	_, multikey := newKey(t, "k256")
	did := "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
	doc := docSpec{did: did, handle: "alice.test", key: multikey, pds: "https://pds.example.com"}.json()
	var requests int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++
		if r.URL.Path != "/"+did {
			http.NotFound(w, r)
			return
		}
		w.Write(doc)
	}))
	defer srv.Close()
	r, err := New(Options{PLCURL: srv.URL + "/", DNSResolver: newFakeDNS(t).resolver()})
	if err != nil {
		t.Fatal(err)
	}
	id, err := r.LookupDID(ctx, syntax.DID(did))
	if err != nil {
		t.Fatal(err)
	}
	if id.SigningKey.Multibase() != multikey || id.PDSEndpoint != "https://pds.example.com" {
		t.Errorf("key %s, PDS %s", id.SigningKey.Multibase(), id.PDSEndpoint)
	}
	// alice.test has no DNS record and its HTTPS host no address.
	if id.Handle != syntax.HandleInvalid {
		t.Errorf("Handle %s, want handle.invalid", id.Handle)
	}
	_, err = r.LookupDID(ctx, "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
	if !errors.Is(err, ErrDIDNotFound) {
		t.Errorf("unknown DID: %v, want ErrDIDNotFound", err)
	}
	if requests != 2 {
		t.Errorf("%d requests, want 2", requests)
	}
}

// TestFixtureKeys serves the keys of the interop signature fixtures, in both
// the Multikey and the legacy form, and checks each fixture signature against
// the key the resolver returns.
func TestFixtureKeys(t *testing.T) {
	var fixtures []struct {
		Comment            string `json:"comment"`
		MessageBase64      string `json:"messageBase64"`
		DIDDocSuite        string `json:"didDocSuite"`
		PublicKeyDID       string `json:"publicKeyDid"`
		PublicKeyMultibase string `json:"publicKeyMultibase"`
		SignatureBase64    string `json:"signatureBase64"`
		ValidSignature     bool   `json:"validSignature"`
	}
	testutil.FixtureJSON(t, "interop/crypto/signature-fixtures.json", &fixtures)
	if len(fixtures) < 4 {
		t.Fatalf("%d fixtures", len(fixtures))
	}
	e := newEnv(t, Options{SkipHandleVerification: true})
	for i, fx := range fixtures {
		msg, sig := unbase64(t, fx.MessageBase64), unbase64(t, fx.SignatureBase64)
		forms := []docSpec{
			{key: strings.TrimPrefix(fx.PublicKeyDID, "did:key:")},
			{key: fx.PublicKeyMultibase, keyType: fx.DIDDocSuite},
		}
		for j, spec := range forms {
			spec.did = "did:plc:fixture" + string(rune('a'+i)) + string(rune('a'+j))
			spec.pds = "https://pds.example.com"
			e.setDoc(spec.did, spec.json())
			key, err := e.r.SigningKey(ctx, syntax.DID(spec.did))
			if err != nil {
				t.Fatalf("%s (%s): %v", fx.Comment, spec.keyType, err)
			}
			if key.DIDKey() != fx.PublicKeyDID {
				t.Errorf("%s: key %s, want %s", fx.Comment, key.DIDKey(), fx.PublicKeyDID)
			}
			if err := key.HashAndVerify(msg, sig); (err == nil) != fx.ValidSignature {
				t.Errorf("%s (%q): verify = %v, want valid=%v", fx.Comment, spec.keyType, err, fx.ValidSignature)
			}
		}
	}
}

// TestLegacyUncompressedKey: the legacy verification method types with the
// uncompressed point ('z' + base58btc, no multicodec), as the spec has them.
func TestLegacyUncompressedKey(t *testing.T) {
	e := newEnv(t, Options{SkipHandleVerification: true})
	for curve, typ := range map[string]string{"k256": "EcdsaSecp256k1VerificationKey2019", "p256": "EcdsaSecp256r1VerificationKey2019"} {
		priv, _ := newKey(t, curve)
		pub, _ := priv.PublicKey()
		point := pub.UncompressedBytes()
		if len(point) != 65 || point[0] != 4 {
			t.Fatalf("%s: uncompressed point of %d bytes", curve, len(point))
		}
		did := "did:plc:legacy" + curve
		e.setDoc(did, docSpec{did: did, key: "z" + base58.Encode(point), keyType: typ}.json())
		key, err := e.r.SigningKey(ctx, syntax.DID(did))
		if err != nil {
			t.Fatalf("%s: %v", curve, err)
		}
		msg := []byte("legacy")
		sig, _ := priv.HashAndSign(msg)
		if err := key.HashAndVerify(msg, sig); err != nil {
			t.Errorf("%s: %v", curve, err)
		}
	}
}

// TestDIDKeyFixtures: a document carrying each w3c did:key fixture's key
// yields a key that verifies signatures made with the fixture's private key.
func TestDIDKeyFixtures(t *testing.T) {
	var k256 []struct {
		PrivateKeyBytesHex string `json:"privateKeyBytesHex"`
		PublicDIDKey       string `json:"publicDidKey"`
	}
	testutil.FixtureJSON(t, "interop/crypto/w3c_didkey_K256.json", &k256)
	e := newEnv(t, Options{SkipHandleVerification: true})
	for i, fx := range k256 {
		priv, err := atcrypto.ParsePrivateBytesK256(testutil.Unhex(t, fx.PrivateKeyBytesHex))
		if err != nil {
			t.Fatal(err)
		}
		did := "did:plc:didkey" + string(rune('a'+i))
		e.setDoc(did, docSpec{did: did, key: strings.TrimPrefix(fx.PublicDIDKey, "did:key:")}.json())
		key, err := e.r.SigningKey(ctx, syntax.DID(did))
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("fixture " + fx.PublicDIDKey)
		sig, err := priv.HashAndSign(msg)
		if err != nil {
			t.Fatal(err)
		}
		if err := key.HashAndVerify(msg, sig); err != nil {
			t.Errorf("%s: %v", fx.PublicDIDKey, err)
		}
	}
}

func TestLookupDIDErrors(t *testing.T) {
	const did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
	_, multikey := newKey(t, "k256")
	good := docSpec{did: did, key: multikey, pds: "https://pds.example.com"}
	for _, tc := range []struct {
		name   string
		did    string
		status int
		body   []byte
		want   []error
		asked  int // directory requests expected
	}{
		{name: "404", did: did, status: 404, body: []byte("not found"), want: []error{ErrDIDNotFound}, asked: 1},
		{name: "500", did: did, status: 500, want: []error{ErrDIDResolutionFailed}, asked: 1},
		{name: "410", did: did, status: 410, want: []error{ErrDIDResolutionFailed}, asked: 1},
		{name: "not JSON", did: did, status: 200, body: []byte("<html>"), want: []error{ErrDIDResolutionFailed}, asked: 1},
		{name: "id is a string array", did: did, status: 200, body: []byte(`{"id":["` + did + `"]}`), want: []error{ErrDIDResolutionFailed}, asked: 1},
		{name: "wrong id", did: did, status: 200, body: docSpec{did: "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", key: multikey}.json(), want: []error{ErrDIDResolutionFailed}, asked: 1},
		{name: "no id", did: did, status: 200, body: []byte(`{}`), want: []error{ErrDIDResolutionFailed}, asked: 1},
		{name: "too large", did: did, status: 200, body: append(good.json()[:len(good.json())-1], []byte(`,"pad":"`+strings.Repeat("x", MaxResponseBytes)+`"}`)...), want: []error{ErrDIDResolutionFailed, ErrResponseTooLarge}, asked: 1},
		{name: "did:key", did: "did:key:" + multikey, want: []error{ErrUnsupportedDIDMethod}},
		{name: "did:example", did: "did:example:123", want: []error{ErrUnsupportedDIDMethod}},
		{name: "did:web path", did: "did:web:pds.test:users:alice", want: []error{ErrUnsupportedDIDMethod}},
		{name: "did:web port", did: "did:web:pds.test%3A8080", want: []error{ErrDIDResolutionFailed}},
		{name: "did:web localhost, secure", did: "did:web:localhost%3A8080", want: []error{ErrDIDResolutionFailed}},
		{name: "not parsed", did: "did:plc:x/../../admin?y", want: []error{ErrDIDResolutionFailed}},
		{name: "did:web reserved TLD", did: "did:web:pds.local", want: []error{ErrDIDResolutionFailed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			if tc.status != 0 {
				e.net.set(plcHost, "/"+tc.did, tc.status, tc.body)
			}
			_, err := e.r.LookupDID(ctx, syntax.DID(tc.did))
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tc.want {
				if !errors.Is(err, want) {
					t.Errorf("%v: not %v", err, want)
				}
			}
			if !strings.Contains(err.Error(), tc.did) {
				t.Errorf("error %q does not name the DID", err)
			}
			if n := e.docRequests(tc.did); n != tc.asked {
				t.Errorf("%d directory requests, want %d", n, tc.asked)
			}
			if _, err := e.r.SigningKey(ctx, syntax.DID(tc.did)); err == nil {
				t.Error("SigningKey: no error")
			}
		})
	}
}

func TestDocumentParts(t *testing.T) {
	const did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
	_, multikey := newKey(t, "p256")
	for _, tc := range []struct {
		name   string
		doc    string
		key    bool   // a signing key is found
		pds    string // "" for ErrNoPDS
		handle string // DeclaredHandle
	}{
		{"reference layout", string(docSpec{did: did, handle: "Alice.Test", key: multikey, pds: "https://PDS.example.com/"}.json()), true, "https://pds.example.com", "alice.test"},
		{"relative #atproto id", `{"id":"` + did + `","verificationMethod":[{"id":"#atproto","type":"Multikey","controller":"` + did + `","publicKeyMultibase":"` + multikey + `"}]}`, true, "", ""},
		{"other controller", `{"id":"` + did + `","verificationMethod":[{"id":"#atproto","type":"Multikey","controller":"did:plc:other","publicKeyMultibase":"` + multikey + `"}]}`, false, "", ""},
		{"controlled key after another's", `{"id":"` + did + `","verificationMethod":[{"id":"#atproto","type":"Multikey","controller":"did:plc:other","publicKeyMultibase":"zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc"},{"id":"#atproto","type":"Multikey","controller":"` + did + `","publicKeyMultibase":"` + multikey + `"}]}`, true, "", ""},
		{"other fragment", `{"id":"` + did + `","verificationMethod":[{"id":"#atproto_label","type":"Multikey","controller":"` + did + `","publicKeyMultibase":"` + multikey + `"}]}`, false, "", ""},
		{"bad multibase", string(docSpec{did: did, key: "zQ3notakey"}.json()), false, "", ""},
		{"unknown key type", string(docSpec{did: did, key: multikey, keyType: "JsonWebKey2020"}.json()), false, "", ""},
		{"service of another type", `{"id":"` + did + `","service":[{"id":"#atproto_pds","type":"BskyFeedGenerator","serviceEndpoint":"https://a.example.com"},{"id":"#atproto_pds","type":"AtprotoPersonalDataServer","serviceEndpoint":"https://b.example.com"}]}`, false, "https://b.example.com", ""},
		{"absolute service id", `{"id":"` + did + `","service":[{"id":"` + did + `#atproto_pds","type":"AtprotoPersonalDataServer","serviceEndpoint":"https://b.example.com:8443"}]}`, false, "https://b.example.com:8443", ""},
		{"endpoint with path", string(docSpec{did: did, pds: "https://pds.example.com/xrpc"}.json()), false, "", ""},
		{"http endpoint", string(docSpec{did: did, pds: "http://pds.example.com"}.json()), false, "", ""},
		{"loopback endpoint", string(docSpec{did: did, pds: "https://127.0.0.1"}.json()), false, "", ""},
		{"handle not at://", `{"id":"` + did + `","alsoKnownAs":["https://alice.test","at://not_a_handle","at://bob.test"]}`, false, "", "bob.test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{SkipHandleVerification: true})
			e.setDoc(did, []byte(tc.doc))
			id, err := e.r.LookupDID(ctx, did)
			if err != nil {
				t.Fatal(err)
			}
			key, err := e.r.SigningKey(ctx, did)
			if tc.key {
				if err != nil || key.Multibase() != multikey {
					t.Errorf("SigningKey = %v, %v; want %s", key, err, multikey)
				}
			} else if !errors.Is(err, ErrNoSigningKey) || id.SigningKey != nil || !strings.Contains(err.Error(), did) {
				t.Errorf("SigningKey error %v, want ErrNoSigningKey naming the DID", err)
			}
			pds, err := e.r.PDSEndpoint(ctx, did)
			if pds != tc.pds || id.PDSEndpoint != tc.pds {
				t.Errorf("PDSEndpoint %q (field %q), want %q", pds, id.PDSEndpoint, tc.pds)
			}
			if tc.pds == "" && !errors.Is(err, ErrNoPDS) {
				t.Errorf("PDSEndpoint error %v, want ErrNoPDS", err)
			}
			if id.DeclaredHandle != syntax.Handle(tc.handle) || id.Handle != syntax.HandleInvalid {
				t.Errorf("DeclaredHandle %q Handle %q", id.DeclaredHandle, id.Handle)
			}
		})
	}
	e := newEnv(t, Options{})
	e.setDoc(did, docSpec{did: did}.json())
	if _, err := e.r.SigningKey(ctx, did); !errors.Is(err, indigo.ErrKeyNotDeclared) {
		t.Errorf("no verificationMethod: %v, want it to wrap indigo's ErrKeyNotDeclared", err)
	}
}

func TestCheckOrigin(t *testing.T) {
	for _, tc := range originCases {
		got, err := checkOrigin(tc.in, tc.insecure)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("checkOrigin(%q, insecure=%v) = %q, %v; want %q", tc.in, tc.insecure, got, err, tc.want)
		}
	}
}

// originCases are checkOrigin's table, also the seeds of FuzzCheckOrigin.
var originCases = []struct {
	in       string
	insecure bool
	want     string // "" for an error
}{
	{"https://pds.example.com", false, "https://pds.example.com"},
	{"https://pds.example.com/", false, "https://pds.example.com"},
	{"HTTPS://PDS.Example.COM:443", false, "https://pds.example.com:443"},
	{"https://[2001:db8::1]:8443", false, "https://[2001:db8::1]:8443"},
	{"https://8.8.8.8", false, "https://8.8.8.8"},
	{"http://pds.example.com", false, ""},
	{"http://pds.example.com", true, "http://pds.example.com"},
	{"http://localhost:2583", true, "http://localhost:2583"},
	{"https://localhost:2583", false, ""},
	{"https://pds.localhost", false, ""},
	{"https://127.0.0.1", false, ""},
	{"https://10.1.2.3", false, ""},
	{"https://[::1]", false, ""},
	{"https://[fe80::1]", false, ""},
	{"https://100.64.0.1", false, ""},
	{"https://10.1.2.3", true, "https://10.1.2.3"},
	{"wss://pds.example.com", true, ""},
	{"ftp://pds.example.com", true, ""},
	{"https://pds.example.com/xrpc", false, ""},
	{"https://pds.example.com?x=1", false, ""},
	{"https://pds.example.com?", false, ""},
	{"https://pds.example.com#frag", false, ""},
	{"https://user@pds.example.com", false, ""},
	{"https://", false, ""},
	{"https://:443", false, ""},
	{"https:pds.example.com", false, ""},
	{"pds.example.com", false, ""},
	{"", false, ""},
	{"https://pds.example.com:99999999", false, ""},
	{"https://pds.example.com:x", false, ""},
	{"https://pds.example.com:", false, ""},
	{"https://pds.example.com:0443", false, "https://pds.example.com:443"},
	{"https://[fe80::1%25en0]", true, ""},
	{"https://pds_1.example.com", false, ""},
	{"https://pds", false, ""},
	{"http://pds:2583", true, "http://pds:2583"},
	{"https://pds.123", false, ""},
}

// TestDIDWebLocalhost: did:web:localhost%3APORT is fetched over http:// with
// AllowInsecure (indigo refuses ports), and refused without it.
func TestDIDWebLocalhost(t *testing.T) {
	priv, multikey := newKey(t, "k256")
	n := newFakeNet(t)
	u, err := url.Parse(n.plain.URL)
	if err != nil {
		t.Fatal(err)
	}
	did := syntax.DID("did:web:localhost%3A" + u.Port())
	n.set("localhost", "/.well-known/did.json", 200, docSpec{did: did.String(), handle: "alice.test", key: multikey, pds: "http://localhost:2583"}.json())
	dns := newFakeDNS(t)

	r, err := New(Options{AllowInsecure: true, DNSResolver: dns.resolver()})
	if err != nil {
		t.Fatal(err)
	}
	id, err := r.LookupDID(ctx, did)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("did:web")
	sig, _ := priv.HashAndSign(msg)
	if err := id.SigningKey.HashAndVerify(msg, sig); err != nil || id.PDSEndpoint != "http://localhost:2583" {
		t.Errorf("key verify %v, PDS %q", err, id.PDSEndpoint)
	}
	if n.count("localhost", "/.well-known/did.json") != 1 {
		t.Errorf("%d requests", n.count("localhost", "/.well-known/did.json"))
	}

	// The same host serving a document about another DID.
	n.set("localhost", "/.well-known/did.json", 200, docSpec{did: "did:web:localhost", key: multikey}.json())
	r.Purge(did)
	if _, err := r.LookupDID(ctx, did); !errors.Is(err, ErrDIDResolutionFailed) {
		t.Errorf("document of another DID: %v", err)
	}
	n.set("localhost", "/.well-known/did.json", 404, nil)
	r.Purge(did)
	if _, err := r.LookupDID(ctx, did); !errors.Is(err, ErrDIDNotFound) {
		t.Errorf("404: %v", err)
	}

	secure, err := New(Options{DNSResolver: dns.resolver()})
	if err != nil {
		t.Fatal(err)
	}
	before := n.count("localhost", "/.well-known/did.json")
	if _, err := secure.LookupDID(ctx, did); !errors.Is(err, ErrDIDResolutionFailed) || !strings.Contains(err.Error(), "AllowInsecure") {
		t.Errorf("without AllowInsecure: %v", err)
	}
	if n.count("localhost", "/.well-known/did.json") != before {
		t.Error("a request was made without AllowInsecure")
	}
}

// TestDIDWebHTTPS: a did:web on a public-style host goes through indigo's
// https:// resolution (here to the fake TLS host).
func TestDIDWebHTTPS(t *testing.T) {
	_, multikey := newKey(t, "p256")
	e := newEnv(t, Options{})
	const did = "did:web:pds.example.com"
	e.net.set("pds.example.com", "/.well-known/did.json", 200, docSpec{did: did, handle: "pds.example.com", key: multikey, pds: "https://pds.example.com"}.json())
	e.dns.setTXT("_atproto.pds.example.com", "did="+did)
	id, err := e.r.LookupDID(ctx, did)
	if err != nil {
		t.Fatal(err)
	}
	if id.SigningKey.Multibase() != multikey || id.Handle != "pds.example.com" || id.PDSEndpoint != "https://pds.example.com" {
		t.Errorf("key %s handle %s PDS %s", id.SigningKey.Multibase(), id.Handle, id.PDSEndpoint)
	}
	if _, err := e.r.LookupDID(ctx, "did:web:gone.example.com"); !errors.Is(err, ErrDIDNotFound) {
		t.Errorf("missing did.json: %v", err)
	}
}

// handleEnv serves alice (handle alice.test), bob and carol documents.
func handleEnv(t *testing.T, opts Options) (*env, map[string]string) {
	t.Helper()
	e := newEnv(t, opts)
	_, multikey := newKey(t, "k256")
	dids := map[string]string{
		"alice": "did:plc:alice2222222222222222222",
		"bob":   "did:plc:bob22222222222222222222",
		"carol": "did:plc:carol2222222222222222222",
	}
	for name, did := range dids {
		e.setDoc(did, docSpec{did: did, handle: name + ".test", key: multikey, pds: "https://pds.example.com"}.json())
	}
	return e, dids
}

func TestLookupHandleDNS(t *testing.T) {
	e, dids := handleEnv(t, Options{})
	e.dns.setTXT("_atproto.alice.test", "v=spf1 -all", "did="+dids["alice"])
	for _, h := range []syntax.Handle{"alice.test", "Alice.TEST"} {
		id, err := e.r.LookupHandle(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		if id.DID != syntax.DID(dids["alice"]) || id.Handle != "alice.test" {
			t.Errorf("%s: DID %s handle %s", h, id.DID, id.Handle)
		}
	}
	// The DID lookup verified the handle through the handle cache: one TXT
	// query and one document fetch in all.
	id, err := e.r.LookupDID(ctx, syntax.DID(dids["alice"]))
	if err != nil || id.Handle != "alice.test" {
		t.Errorf("LookupDID: %v, handle %s", err, id.Handle)
	}
	if q, d := e.dns.queries("_atproto.alice.test"), e.docRequests(dids["alice"]); q != 1 || d != 1 {
		t.Errorf("%d TXT queries, %d document requests; want 1 and 1", q, d)
	}
}

func TestLookupHandleHTTPS(t *testing.T) {
	e, dids := handleEnv(t, Options{})
	e.net.set("bob.test", "/.well-known/atproto-did", 200, []byte("  "+dids["bob"]+"\n"))
	id, err := e.r.LookupHandle(ctx, "bob.test")
	if err != nil {
		t.Fatal(err)
	}
	if id.DID != syntax.DID(dids["bob"]) || id.Handle != "bob.test" {
		t.Errorf("DID %s handle %s", id.DID, id.Handle)
	}
	if e.dns.queries("_atproto.bob.test") == 0 {
		t.Error("DNS was not tried")
	}
}

// TestHandleDNSWins: when DNS and HTTPS disagree, DNS decides.
func TestHandleDNSWins(t *testing.T) {
	e, dids := handleEnv(t, Options{})
	e.setDoc(dids["bob"], docSpec{did: dids["bob"], handle: "alice.test"}.json())
	e.dns.setTXT("_atproto.alice.test", "did="+dids["alice"])
	e.net.set("alice.test", "/.well-known/atproto-did", 200, []byte(dids["bob"]))
	id, err := e.r.LookupHandle(ctx, "alice.test")
	if err != nil || id.DID != syntax.DID(dids["alice"]) {
		t.Fatalf("LookupHandle = %v, %v; want %s", id, err, dids["alice"])
	}
	// bob's document claims alice.test too, but alice.test is alice's.
	bob, err := e.r.LookupDID(ctx, syntax.DID(dids["bob"]))
	if err != nil || bob.Handle != syntax.HandleInvalid || bob.DeclaredHandle != "alice.test" {
		t.Errorf("bob: %v, Handle %s, DeclaredHandle %s", err, bob.Handle, bob.DeclaredHandle)
	}
}

func TestHandleFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		handle syntax.Handle
		setup  func(e *env, dids map[string]string)
		want   error
	}{
		{"nowhere", "dave.test", func(*env, map[string]string) {}, ErrHandleNotFound},
		{"two DIDs in DNS", "alice.test", func(e *env, d map[string]string) {
			e.dns.setTXT("_atproto.alice.test", "did="+d["alice"], "did="+d["bob"])
		}, ErrHandleResolutionFailed},
		{"only a bad DID in DNS", "alice.test", func(e *env, d map[string]string) {
			e.dns.setTXT("_atproto.alice.test", "did=not-a-did")
		}, ErrHandleNotFound},
		{"HTTPS 500", "alice.test", func(e *env, d map[string]string) {
			e.net.set("alice.test", "/.well-known/atproto-did", 500, nil)
		}, ErrHandleResolutionFailed},
		{"HTTPS not a DID", "alice.test", func(e *env, d map[string]string) {
			e.net.set("alice.test", "/.well-known/atproto-did", 200, []byte("<html>"))
		}, ErrHandleResolutionFailed},
		{"document claims another handle", "alice.test", func(e *env, d map[string]string) {
			e.dns.setTXT("_atproto.alice.test", "did="+d["carol"])
		}, ErrHandleMismatch},
		{"DID not found", "alice.test", func(e *env, d map[string]string) {
			e.dns.setTXT("_atproto.alice.test", "did=did:plc:nobody22222222222222222")
		}, ErrDIDNotFound},
		{"reserved TLD", "alice.local", func(*env, map[string]string) {}, ErrHandleReservedTLD},
		{"onion", "alice.onion", func(*env, map[string]string) {}, ErrHandleReservedTLD},
		{"handle.invalid", "handle.invalid", func(*env, map[string]string) {}, ErrInvalidHandle},
		{"not parsed", "a/b.test", func(*env, map[string]string) {}, ErrHandleResolutionFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, dids := handleEnv(t, Options{})
			tc.setup(e, dids)
			_, err := e.r.LookupHandle(ctx, tc.handle)
			if !errors.Is(err, tc.want) {
				t.Fatalf("%v, want %v", err, tc.want)
			}
			if tc.want == ErrHandleReservedTLD || tc.want == ErrInvalidHandle {
				if q := e.dns.queries("_atproto." + tc.handle.String()); q != 0 {
					t.Errorf("%d DNS queries for a handle that cannot resolve", q)
				}
			} else if !strings.Contains(err.Error(), tc.handle.String()) {
				t.Errorf("error %q does not name the handle", err)
			}
		})
	}
}

// TestHandleVerifiedBothWays: LookupDID marks the handle valid only when it
// resolves back to the DID.
func TestHandleVerifiedBothWays(t *testing.T) {
	e, dids := handleEnv(t, Options{})
	e.dns.setTXT("_atproto.alice.test", "did="+dids["alice"])
	e.dns.setTXT("_atproto.bob.test", "did="+dids["carol"]) // bob.test is carol's
	for name, want := range map[string]syntax.Handle{"alice": "alice.test", "bob": syntax.HandleInvalid, "carol": syntax.HandleInvalid} {
		id, err := e.r.LookupDID(ctx, syntax.DID(dids[name]))
		if err != nil {
			t.Fatal(err)
		}
		if id.Handle != want || id.DeclaredHandle != syntax.Handle(name+".test") {
			t.Errorf("%s: Handle %s DeclaredHandle %s, want %s", name, id.Handle, id.DeclaredHandle, want)
		}
	}
}

func TestSkipHandleVerification(t *testing.T) {
	e, dids := handleEnv(t, Options{SkipHandleVerification: true})
	e.dns.setTXT("_atproto.alice.test", "did="+dids["alice"])
	id, err := e.r.LookupDID(ctx, syntax.DID(dids["alice"]))
	if err != nil || id.Handle != syntax.HandleInvalid || id.DeclaredHandle != "alice.test" {
		t.Fatalf("LookupDID: %v, Handle %s", err, id.Handle)
	}
	if q := e.dns.queries("_atproto.alice.test"); q != 0 {
		t.Errorf("%d DNS queries with SkipHandleVerification", q)
	}
	id, err = e.r.LookupHandle(ctx, "alice.test")
	if err != nil || id.Handle != "alice.test" {
		t.Fatalf("LookupHandle: %v, Handle %s", err, id.Handle)
	}
	// The cached identity is shared; LookupHandle returned a copy.
	id, _ = e.r.LookupDID(ctx, syntax.DID(dids["alice"]))
	if id.Handle != syntax.HandleInvalid {
		t.Errorf("cached identity changed: Handle %s", id.Handle)
	}
}

// txtCases are didFromTXT's table, also the seeds of FuzzDIDFromTXT.
const txtA, txtB = "did:plc:alice2222222222222222222", "did:web:example.com"

var txtCases = []struct {
	records []string
	want    string
	err     error
}{
	{[]string{"did=" + txtA}, txtA, nil},
	{[]string{"v=spf1", "did=" + txtA, "x"}, txtA, nil},
	{[]string{"did=" + txtA, "did=" + txtA}, txtA, nil},
	{[]string{"did=nope", "did=" + txtB}, txtB, nil},
	{[]string{"did=" + txtA, "did=" + txtB}, "", ErrHandleResolutionFailed},
	{[]string{"DID=" + txtA}, "", ErrHandleNotFound},
	{[]string{"did= " + txtA}, "", ErrHandleNotFound},
	{[]string{"did=" + txtA + "?x"}, "", ErrHandleNotFound},
	{nil, "", ErrHandleNotFound},
}

func TestDIDFromTXT(t *testing.T) {
	for _, tc := range txtCases {
		got, err := didFromTXT(tc.records)
		if string(got) != tc.want || (tc.err == nil) != (err == nil) || (tc.err != nil && !errors.Is(err, tc.err)) {
			t.Errorf("didFromTXT(%q) = %q, %v; want %q, %v", tc.records, got, err, tc.want, tc.err)
		}
	}
}

func TestNewOptions(t *testing.T) {
	for _, o := range []Options{
		{PLCURL: "plc.directory"},
		{PLCURL: "ftp://plc.directory"},
		{PLCURL: "https://plc.directory?x=1"},
		{PLCURL: "https://user@plc.directory"},
		{Timeout: -1},
		{TTL: -1},
		{ErrorTTL: -1},
		{InvalidHandleTTL: -1},
		{RefreshInterval: -1},
		{CacheSize: -1},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v): no error", o)
		}
	}
	r, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := r.opts
	if o.PLCURL != "https://plc.directory" || o.Timeout != 10e9 || o.CacheSize != 250_000 || o.TTL != 3600e9 || o.ErrorTTL != 120e9 {
		t.Errorf("defaults: %+v", o)
	}
	if o.PLCURL != indigo.DefaultPLCURL {
		t.Errorf("default PLC URL %s differs from indigo's %s", o.PLCURL, indigo.DefaultPLCURL)
	}
}
