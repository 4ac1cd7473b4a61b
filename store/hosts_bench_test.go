package store

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkCountAccountsByHost: the periodic recount of accounts per host,
// over 100,000 mirrored accounts of 10 hosts (reported per account).
func BenchmarkCountAccountsByHost(b *testing.B) {
	db, err := Open(Options{InMemory: true, GCInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	const n = 100_000
	for i := range n {
		a := &Account{DID: fmt.Sprintf("did:plc:bench%024d", i), Handle: fmt.Sprintf("u%d.example.com", i), Host: fmt.Sprintf("pds%d.example.com", i%10)}
		if _, err := db.Apply(ctx, &Change{Account: a}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		counts, err := db.CountAccountsByHost()
		if err != nil || len(counts) != 10 {
			b.Fatal(counts, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/account")
}
