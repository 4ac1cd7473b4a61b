package identity_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/reservoir-atproto/reservoir/identity"
)

// A did:plc directory on loopback (as `reservoir plc` would be) serving one
// DID document; the Resolver finds the #atproto key and the PDS.
func Example() {
	const did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
	directory := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/"+did {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, `{
			"@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
			"id": "`+did+`",
			"alsoKnownAs": ["at://alice.test"],
			"verificationMethod": [{"id": "`+did+`#atproto", "type": "Multikey", "controller": "`+did+`",
				"publicKeyMultibase": "zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc"}],
			"service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": "http://localhost:2583"}]
		}`)
	}))
	defer directory.Close()

	r, err := identity.New(identity.Options{
		PLCURL:                 directory.URL,
		AllowInsecure:          true, // the PDS is http://localhost
		SkipHandleVerification: true, // no DNS here
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	id, err := r.LookupDID(ctx, did)
	if err != nil {
		panic(err)
	}
	fmt.Println(id.Handle, id.DeclaredHandle, id.PDSEndpoint)
	key, err := r.SigningKey(ctx, did)
	if err != nil {
		panic(err)
	}
	fmt.Println(key.DIDKey())

	_, err = r.LookupDID(ctx, "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
	fmt.Println(err)
	fmt.Printf("%+v\n", r.Stats().DIDs)
	// Output:
	// handle.invalid alice.test http://localhost:2583
	// did:key:zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc
	// identity: resolve did:plc:aaaaaaaaaaaaaaaaaaaaaaaa: DID not found: PLC directory 404
	// {Hits:1 Misses:2 Coalesced:0 Errors:1 Evictions:0 Entries:2}
}
