package identity

import (
	"testing"
)

func benchEnv(b *testing.B) *env {
	e := newEnv(b, Options{SkipHandleVerification: true})
	_, key := newKey(b, "k256")
	e.setDoc(aliceDID, docSpec{did: aliceDID, handle: "alice.test", key: key, pds: "https://pds.example.com"}.json())
	if _, err := e.r.LookupDID(ctx, aliceDID); err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkSigningKeyCached is the hot path of commit verification: the key
// of a DID already in the cache.
func BenchmarkSigningKeyCached(b *testing.B) {
	e := benchEnv(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.r.SigningKey(ctx, aliceDID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSigningKeyCachedParallel shows the cache lock under contention.
func BenchmarkSigningKeyCachedParallel(b *testing.B) {
	e := benchEnv(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.r.SigningKey(ctx, aliceDID); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkLookupDIDMiss is a full miss: a request to the (loopback, TLS)
// directory, parsing the document and the key, and caching.
func BenchmarkLookupDIDMiss(b *testing.B) {
	e := benchEnv(b)
	b.ReportAllocs()
	for b.Loop() {
		e.r.Purge(aliceDID)
		if _, err := e.r.LookupDID(ctx, aliceDID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseDocument is the CPU part of a miss: decoding the document
// and extracting the identity (the K-256 key is decompressed here).
func BenchmarkParseDocument(b *testing.B) {
	_, key := newKey(b, "k256")
	doc := docSpec{did: aliceDID, handle: "alice.test", key: key, pds: "https://pds.example.com"}.json()
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		d, err := parseDocument(aliceDID, doc)
		if err != nil {
			b.Fatal(err)
		}
		if id := newIdentity(d, false); id.SigningKey == nil {
			b.Fatal(id.keyErr)
		}
	}
}
