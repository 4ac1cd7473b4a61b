package directory_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/plc"
	"github.com/reservoir-atproto/reservoir/plc/directory"
	"github.com/reservoir-atproto/reservoir/plc/directory/pebblestore"
)

func benchStores(b *testing.B) map[string]func() directory.Store {
	return map[string]func() directory.Store{
		"memory": func() directory.Store { return directory.NewMemStore() },
		"pebble": func() directory.Store {
			s, err := pebblestore.Open(b.TempDir(), pebblestore.Options{})
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
	}
}

// BenchmarkSubmitGenesis posts a new DID per iteration through the whole
// handler: parse, validate (one signature), append (a synced write for
// Pebble). Signing happens before the loop.
func BenchmarkSubmitGenesis(b *testing.B) {
	const n = 512
	type sub struct {
		path string
		body string
	}
	subs := make([]sub, n)
	for i := range subs {
		k, _ := atcrypto.GeneratePrivateKeyK256()
		pub, _ := k.PublicKey()
		op, did, err := plc.CreateGenesis(plc.Account{Handle: syntax.Handle(fmt.Sprintf("u%d.test", i)), Endpoint: "https://pds.test", SigningKey: pub, RotationKeys: []atcrypto.PublicKey{pub}}, k)
		if err != nil {
			b.Fatal(err)
		}
		js, _ := op.MarshalJSON()
		subs[i] = sub{"/" + did.String(), string(js)}
	}
	for name, open := range benchStores(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var srv http.Handler
			i := n
			for b.Loop() {
				if i == n {
					// Every n DIDs, start again on an empty store.
					b.StopTimer()
					s, err := directory.New(directory.Options{Store: open()})
					if err != nil {
						b.Fatal(err)
					}
					srv, i = s, 0
					b.StartTimer()
				}
				rec := httptest.NewRecorder()
				srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, subs[i].path, strings.NewReader(subs[i].body)))
				if rec.Code != 200 {
					b.Fatalf("%d %s", rec.Code, rec.Body)
				}
				i++
			}
		})
	}
}

// BenchmarkResolve serves a DID document of a 10-operation log.
func BenchmarkResolve(b *testing.B) {
	k, _ := atcrypto.GeneratePrivateKeyK256()
	pub, _ := k.PublicKey()
	var ops []plc.Op
	g, did, _ := plc.CreateGenesis(plc.Account{Handle: "a.test", Endpoint: "https://pds.test", SigningKey: pub, RotationKeys: []atcrypto.PublicKey{pub}}, k)
	ops = append(ops, g)
	for i := 1; i < 10; i++ {
		u, _ := plc.Update(ops[i-1], plc.SetHandle(syntax.Handle(fmt.Sprintf("a%d.test", i))))
		_ = plc.Sign(u, k)
		ops = append(ops, u)
	}
	for name, open := range benchStores(b) {
		b.Run(name, func(b *testing.B) {
			store := open()
			defer store.Close()
			for i, op := range ops {
				if _, err := store.Append(context.Background(), directory.Append{DID: did, Op: op, LogLen: i, Now: t0}); err != nil {
					b.Fatal(err)
				}
			}
			srv, _ := directory.New(directory.Options{Store: store})
			req := httptest.NewRequest(http.MethodGet, "/"+did.String(), nil)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				srv.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}
