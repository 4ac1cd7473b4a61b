package store

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"testing"
)

// The committer keeps the accounts per host exact with every change that
// writes an account record — created, moved, deleted, restored — also when
// many such changes of one host share a commit group, and a store that
// predates the table has it counted at Open.
func TestHostAccountCountsPerChange(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(Options{Dir: dir, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	hostNames := []string{"", "a.example.com", "b.example.com", "localhost:2583"}
	statuses := []Status{StatusActive, StatusActive, StatusDeleted, StatusTakendown, StatusDesynchronized}
	check := func(what string) {
		t.Helper()
		got, err := db.HostAccountCounts()
		if err != nil {
			t.Fatal(err)
		}
		want, err := db.CountAccountsByHost()
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, want) {
			t.Fatalf("%s: counts %v, recount %v", what, got, want)
		}
		for h, n := range want {
			if one, err := db.HostAccountCount(h); err != nil || one != n {
				t.Fatalf("%s: HostAccountCount(%s) = %d %v, want %d", what, h, one, err, n)
			}
		}
	}
	// Writers in parallel, so that groups hold several changes of a host.
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range 40 {
				a := &Account{DID: fmt.Sprintf("did:plc:w%di%02d", w, i), Host: hostNames[rng.IntN(len(hostNames))], Status: statuses[rng.IntN(len(statuses))]}
				a.Hosted = a.Host == ""
				if _, err := db.Apply(ctx, &Change{Account: a}); err != nil {
					t.Error(err)
					return
				}
				for range rng.IntN(3) { // moved, deleted, restored, recreated...
					a.Status = statuses[rng.IntN(len(statuses))]
					if !a.Hosted {
						a.Host = hostNames[1+rng.IntN(len(hostNames)-1)]
					}
					c := &Change{UID: a.UID, Account: a, Delete: a.Status == StatusDeleted}
					if _, err := db.Apply(ctx, c); err != nil {
						t.Error(err)
						return
					}
				}
				// A commit without an account record counts nothing.
				if _, err := db.Apply(ctx, &Change{UID: a.UID, Events: []FrameEncoder{seqFrame("x")}}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	check("after the writers")
	if n, _ := db.HostAccountCount("nobody.example.com"); n != 0 {
		t.Fatalf("an unknown host counts %d", n)
	}

	// A store without the table (older than it) is counted at Open.
	b := db.db.NewBatch()
	b.DeleteRange([]byte{tHostAccounts}, []byte{tHostAccounts + 1}, nil)
	b.Delete(metaHostCounts, nil)
	if err := b.Commit(nil); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if got, _ := db.HostAccountCounts(); len(got) != 0 {
		t.Fatalf("table not cleared: %v", got)
	}
	db.Close()
	if db, err = Open(Options{Dir: dir, GCInterval: -1}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check("after the count at Open")
}
