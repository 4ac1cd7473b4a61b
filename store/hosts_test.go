package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func TestHostPutAndRead(t *testing.T) {
	db := openMem(t, Options{})
	ctx := context.Background()
	created := time.Date(2026, 11, 1, 12, 0, 0, 123000, time.UTC)
	a := &Host{Hostname: "pds.example.com", Status: HostActive, Cursor: NoCursor, CreatedAt: created}
	b := &Host{Hostname: "localhost:2583", Status: HostIdle, Cursor: 42, NoSSL: true, CreatedAt: created,
		LastEventAt: created.Add(time.Minute), Limits: HostLimits{EventsPerSecond: 50, MaxAccounts: 1000}, Failures: 3, AccountCount: 7,
		BackfillCursor: "did:plc:xyz", BackfillDone: true}
	if err := db.PutHost(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := db.PutHost(ctx, b); err != nil {
		t.Fatal(err)
	}
	if a.ID != 1 || b.ID != 2 {
		t.Fatalf("ids %d %d, want 1 2 (first-seen order)", a.ID, b.ID)
	}
	for _, want := range []*Host{a, b} {
		got, err := db.Host(want.Hostname)
		if err != nil {
			t.Fatal(err)
		}
		if *got != *want {
			t.Fatalf("read back\n%+v\nwant\n%+v", got, want)
		}
	}
	if _, err := db.Host("other.example.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown host: %v", err)
	}
	// An update replaces the record; the ID and name stay.
	b.Status, b.Cursor, b.Failures = HostBanned, 99, 0
	if err := db.PutHost(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Host(b.Hostname); got.Status != HostBanned || got.Cursor != 99 || got.ID != 2 || got.Failures != 0 {
		t.Fatalf("after update: %+v", got)
	}
}

func TestHostPutRefusals(t *testing.T) {
	db := openMem(t, Options{})
	ctx := context.Background()
	a := &Host{Hostname: "a.example.com", Status: HostActive, Cursor: NoCursor}
	if err := db.PutHost(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := db.PutHost(ctx, &Host{Hostname: "a.example.com", Status: HostActive, Cursor: NoCursor}); !errors.Is(err, ErrExists) {
		t.Fatalf("second creation of a name: %v", err)
	}
	if err := db.PutHost(ctx, &Host{ID: 7, Hostname: "a.example.com", Status: HostActive, Cursor: NoCursor}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update under a wrong ID: %v", err)
	}
	if err := db.PutHost(ctx, &Host{ID: 1, Hostname: "b.example.com", Status: HostActive, Cursor: NoCursor}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of an unknown name: %v", err)
	}
	for _, bad := range []*Host{
		{Hostname: "", Status: HostActive},
		{Hostname: "x.example.com", Status: "sleepy"},
		{Hostname: "x.example.com", Status: HostActive, Cursor: -2},
	} {
		if err := db.PutHost(ctx, bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	// All or nothing: a call with one refused host writes none of them.
	c := &Host{Hostname: "c.example.com", Status: HostActive, Cursor: NoCursor}
	dup := &Host{Hostname: "a.example.com", Status: HostActive, Cursor: NoCursor}
	if err := db.PutHosts(ctx, c, dup); !errors.Is(err, ErrExists) {
		t.Fatalf("batch with a duplicate: %v", err)
	}
	if _, err := db.Host("c.example.com"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused batch wrote part of itself: %v", err)
	}
	if err := db.PutHosts(ctx, c, &Host{Hostname: "c.example.com", Status: HostActive}); err == nil {
		t.Fatal("one name twice in a call accepted")
	}
	// IDs are not consumed by refused calls.
	if err := db.PutHost(ctx, c); err != nil || c.ID != 2 {
		t.Fatalf("next creation: id %d, %v", c.ID, err)
	}
}

func TestHostsPagingAndReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	db, err := Open(Options{Dir: dir, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i := range 25 {
		h := &Host{Hostname: fmt.Sprintf("h%02d.example.com", 24-i), Status: HostActive, Cursor: int64(i)}
		if err := db.PutHost(ctx, h); err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Hostname)
	}
	check := func(db *DB) {
		t.Helper()
		var got []string
		var after uint64
		for {
			page, err := db.Hosts(after, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, h := range page {
				if h.ID != after+1 {
					t.Fatalf("id %d after %d", h.ID, after)
				}
				after = h.ID
				got = append(got, h.Hostname)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(names) {
			t.Fatalf("hosts in order %v, want first-seen order %v", got, names)
		}
	}
	check(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(Options{Dir: dir, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	check(db)
	h := &Host{Hostname: "late.example.com", Status: HostActive, Cursor: NoCursor}
	if err := db.PutHost(ctx, h); err != nil || h.ID != 26 {
		t.Fatalf("creation after reopening: id %d, %v", h.ID, err)
	}
}

// TestHostWritesWithChanges creates hosts from many goroutines while
// repository changes go through the same committer: every host gets its
// own ID, and the changes are unaffected.
func TestHostWritesWithChanges(t *testing.T) {
	db := openMem(t, Options{})
	ctx := context.Background()
	var wg sync.WaitGroup
	const hosts, accounts = 40, 40
	errs := make(chan error, hosts+accounts)
	for i := range hosts {
		wg.Go(func() {
			errs <- db.PutHost(ctx, &Host{Hostname: fmt.Sprintf("h%d.example.com", i), Status: HostActive, Cursor: NoCursor})
		})
	}
	for i := range accounts {
		wg.Go(func() {
			_, err := db.Apply(ctx, &Change{Account: &Account{DID: fmt.Sprintf("did:plc:a%d", i), Host: "h1.example.com"}, Events: []FrameEncoder{seqFrame("account")}})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	all, err := db.Hosts(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, h := range all {
		if h.ID != uint64(i+1) || seen[h.Hostname] {
			t.Fatalf("host %d: %+v (ids must be 1..n, names unique)", i, h)
		}
		seen[h.Hostname] = true
	}
	if len(all) != hosts || db.LastSeq() != accounts {
		t.Fatalf("%d hosts, last seq %d", len(all), db.LastSeq())
	}
}

// TestCountAccountsByHost checks the recount against a model of random
// accounts: mirrored from a few hosts, hosted here, in every status.
func TestCountAccountsByHost(t *testing.T) {
	db := openMem(t, Options{})
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	hostNames := []string{"", "a.example.com", "b.example.com", "localhost:2583"}
	statuses := []Status{StatusActive, StatusActive, StatusDeleted, StatusTakendown, StatusDesynchronized, StatusDeactivated}
	want := map[string]int64{}
	var accts []*Account
	for i := range 300 {
		a := &Account{DID: fmt.Sprintf("did:plc:acct%03d", i), Host: hostNames[rng.IntN(len(hostNames))], Status: statuses[rng.IntN(len(statuses))]}
		a.Hosted = a.Host == ""
		if _, err := db.Apply(ctx, &Change{Account: a}); err != nil {
			t.Fatal(err)
		}
		accts = append(accts, a)
	}
	// Some accounts change status or host afterwards (the last record counts).
	for _, a := range accts[:60] {
		a.Status = statuses[rng.IntN(len(statuses))]
		if !a.Hosted {
			a.Host = hostNames[1+rng.IntN(len(hostNames)-1)]
		}
		if _, err := db.Apply(ctx, &Change{UID: a.UID, Account: a}); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range accts {
		if a.Host != "" && a.Status != StatusDeleted {
			want[a.Host]++
		}
	}
	got, err := db.CountAccountsByHost()
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, want) {
		t.Fatalf("counts %v, want %v", got, want)
	}
}
