package xrpc_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/reservoir-atproto/reservoir/xrpc"
)

// A query handler parses its parameters, returns lexicon errors, and writes
// JSON; the Server does the rest.
func Example() {
	srv := xrpc.NewServer(xrpc.Options{Version: "0.1.0"})
	srv.Query("com.atproto.sync.getLatestCommit", func(w http.ResponseWriter, r *http.Request) error {
		p, err := xrpc.ParamsFrom(r)
		if err != nil {
			return err
		}
		did, err := p.DID("did")
		if err != nil {
			return err
		}
		if did != "did:plc:ewvi7nxzyoun6zhxrhs64oiz" {
			return xrpc.RepoNotFound(did.String())
		}
		return xrpc.WriteJSON(w, http.StatusOK, map[string]string{
			"cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm",
			"rev": "3jzfcijpj2z2a",
		})
	})

	mux := http.NewServeMux()
	mux.Handle(xrpc.PathPrefix, srv)

	for _, query := range []string{
		"did=did:plc:ewvi7nxzyoun6zhxrhs64oiz",
		"did=did:plc:unknown",
		"did=not-a-did",
	} {
		r := httptest.NewRequest("GET", "/xrpc/com.atproto.sync.getLatestCommit?"+query, nil)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		body, _ := io.ReadAll(w.Body)
		fmt.Println(w.Code, string(body))
	}
	// Output:
	// 200 {"cid":"bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm","rev":"3jzfcijpj2z2a"}
	// 404 {"error":"RepoNotFound","message":"Could not find repo: did:plc:unknown"}
	// 400 {"error":"InvalidRequest","message":"Parameter \"did\" is not a valid did (DID syntax didn't validate via regex)"}
}

// Admin and account auth wrap handlers; the caller is in the context.
func ExampleAuth() {
	auth := &xrpc.Auth{AdminPassword: "hunter2"}
	srv := xrpc.NewServer(xrpc.Options{})
	srv.Procedure("com.atproto.admin.updateSubjectStatus", auth.RequireAdmin(
		func(w http.ResponseWriter, r *http.Request) error {
			caller, _ := xrpc.CallerFrom(r.Context())
			return xrpc.WriteJSON(w, http.StatusOK, map[string]bool{"admin": caller.Admin})
		}))

	for _, password := range []string{"hunter2", "guess"} {
		r := httptest.NewRequest("POST", "/xrpc/com.atproto.admin.updateSubjectStatus", nil)
		r.SetBasicAuth("admin", password)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Body.String())
	}
	// Output:
	// 200 {"admin":true}
	// 401 {"error":"AuthenticationRequired","message":"Invalid admin credentials"}
}
