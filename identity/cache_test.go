package identity

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

const aliceDID = "did:plc:alice2222222222222222222"

// waitFor polls cond until it holds, failing the test after 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// gate makes the directory hold requests for path until release is called;
// arrived counts the requests that reached it.
type gate struct {
	ch      chan struct{}
	once    sync.Once
	arrived atomic.Int64
	first   bool // hold only the first request
}

func holdRequests(e *env, path string, firstOnly bool) *gate {
	g := &gate{ch: make(chan struct{}), first: firstOnly}
	e.net.setBefore(func(r *http.Request) {
		if r.URL.Path != path {
			return
		}
		if n := g.arrived.Add(1); g.first && n > 1 {
			return
		}
		select {
		case <-g.ch:
		case <-r.Context().Done():
		}
	})
	return g
}

func (g *gate) release() { g.once.Do(func() { close(g.ch) }) }

func TestTTL(t *testing.T) {
	e := newEnv(t, Options{TTL: time.Hour})
	_, key := newKey(t, "k256")
	e.setDoc(aliceDID, docSpec{did: aliceDID, key: key}.json())
	for _, step := range []struct {
		advance  time.Duration
		requests int
	}{
		{0, 1},
		{59 * time.Minute, 1},
		{59*time.Second + 999*time.Millisecond, 1},
		{time.Millisecond, 2}, // exactly TTL after the fetch
		{30 * time.Minute, 2},
	} {
		e.clock.Advance(step.advance)
		if _, err := e.r.LookupDID(ctx, aliceDID); err != nil {
			t.Fatal(err)
		}
		if n := e.docRequests(aliceDID); n != step.requests {
			t.Fatalf("after +%v: %d requests, want %d", step.advance, n, step.requests)
		}
	}
	s := e.r.Stats().DIDs
	if s.Hits != 3 || s.Misses != 2 || s.Errors != 0 || s.Entries != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestInvalidHandleTTL: an identity whose claimed handle did not verify is
// fetched again after InvalidHandleTTL, and picks up a handle set up since.
func TestInvalidHandleTTL(t *testing.T) {
	e := newEnv(t, Options{TTL: time.Hour, InvalidHandleTTL: 5 * time.Minute})
	e.setDoc(aliceDID, docSpec{did: aliceDID, handle: "alice.test"}.json())
	id, err := e.r.LookupDID(ctx, aliceDID)
	if err != nil || id.Handle != syntax.HandleInvalid {
		t.Fatalf("%v, handle %s", err, id.Handle)
	}
	e.dns.setTXT("_atproto.alice.test", "did="+aliceDID)
	e.clock.Advance(4 * time.Minute)
	if id, _ := e.r.LookupDID(ctx, aliceDID); id.Handle != syntax.HandleInvalid || e.docRequests(aliceDID) != 1 {
		t.Fatalf("before InvalidHandleTTL: handle %s, %d requests", id.Handle, e.docRequests(aliceDID))
	}
	e.clock.Advance(time.Minute)
	if id, _ := e.r.LookupDID(ctx, aliceDID); id.Handle != "alice.test" || e.docRequests(aliceDID) != 2 {
		t.Fatalf("after InvalidHandleTTL: handle %s, %d requests", id.Handle, e.docRequests(aliceDID))
	}
	// Now valid: cached for the full TTL.
	e.clock.Advance(30 * time.Minute)
	if e.r.LookupDID(ctx, aliceDID); e.docRequests(aliceDID) != 2 {
		t.Errorf("valid identity refetched before TTL")
	}
}

func TestCapacity(t *testing.T) {
	const size, n = 10, 25
	e := newEnv(t, Options{CacheSize: size})
	did := func(i int) string { return fmt.Sprintf("did:plc:cap%021d", i) }
	for i := range n {
		e.setDoc(did(i), docSpec{did: did(i), handle: fmt.Sprintf("u%d.test", i)}.json())
		e.dns.setTXT(fmt.Sprintf("_atproto.u%d.test", i), "did="+did(i))
		if _, err := e.r.LookupHandle(ctx, syntax.Handle(fmt.Sprintf("u%d.test", i))); err != nil {
			t.Fatal(err)
		}
	}
	s := e.r.Stats()
	if s.DIDs.Entries != size || s.DIDs.Evictions != n-size || s.Handles.Entries != size || s.Handles.Evictions != n-size {
		t.Fatalf("stats %+v", s)
	}
	// The oldest were evicted, the newest kept.
	e.r.LookupDID(ctx, syntax.DID(did(n-1)))
	e.r.LookupDID(ctx, syntax.DID(did(0)))
	if a, b := e.docRequests(did(n-1)), e.docRequests(did(0)); a != 1 || b != 2 {
		t.Errorf("requests: newest %d (want 1), oldest %d (want 2)", a, b)
	}
	if s := e.r.Stats().DIDs; s.Entries != size {
		t.Errorf("%d entries", s.Entries)
	}
}

// TestCoalescing: 100 concurrent lookups of one DID make one request.
func TestCoalescing(t *testing.T) {
	e := newEnv(t, Options{SkipHandleVerification: true})
	_, key := newKey(t, "k256")
	e.setDoc(aliceDID, docSpec{did: aliceDID, key: key}.json())
	g := holdRequests(e, "/"+aliceDID, false)
	defer g.release()

	const callers = 100
	results := make([]*Identity, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { results[i], errs[i] = e.r.LookupDID(ctx, aliceDID) })
	}
	waitFor(t, "all callers waiting", func() bool {
		s := e.r.Stats().DIDs
		return s.Misses+s.Coalesced == callers
	})
	g.release()
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || results[i] != results[0] || results[i].SigningKey.Multibase() != key {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
	}
	if n := g.arrived.Load(); n != 1 {
		t.Errorf("%d requests reached the directory, want 1", n)
	}
	if s := e.r.Stats().DIDs; s.Misses != 1 || s.Coalesced != callers-1 {
		t.Errorf("stats %+v", s)
	}
}

func TestNegativeCaching(t *testing.T) {
	e := newEnv(t, Options{ErrorTTL: 2 * time.Minute})
	e.net.set(plcHost, "/"+aliceDID, http.StatusNotFound, nil)
	for range 3 {
		if _, err := e.r.LookupDID(ctx, aliceDID); !errors.Is(err, ErrDIDNotFound) {
			t.Fatalf("%v, want ErrDIDNotFound", err)
		}
	}
	if n := e.docRequests(aliceDID); n != 1 {
		t.Fatalf("%d requests for three lookups within ErrorTTL", n)
	}
	e.setDoc(aliceDID, docSpec{did: aliceDID}.json()) // the account now exists
	e.clock.Advance(2*time.Minute - time.Millisecond)
	if _, err := e.r.LookupDID(ctx, aliceDID); !errors.Is(err, ErrDIDNotFound) {
		t.Fatalf("within ErrorTTL: %v", err)
	}
	e.clock.Advance(time.Millisecond)
	if _, err := e.r.LookupDID(ctx, aliceDID); err != nil {
		t.Fatalf("after ErrorTTL: %v", err)
	}
	if n := e.docRequests(aliceDID); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
	if s := e.r.Stats().DIDs; s.Errors != 1 || s.Misses != 2 || s.Hits != 3 {
		t.Errorf("stats %+v", s)
	}

	// Handles are negatively cached too.
	for range 2 {
		if _, err := e.r.LookupHandle(ctx, "nobody.test"); !errors.Is(err, ErrHandleNotFound) {
			t.Fatal(err)
		}
	}
	if q := e.dns.queries("_atproto.nobody.test"); q != 1 {
		t.Errorf("%d DNS queries for two lookups", q)
	}
}

// TestPurge: after Purge the next lookups go to the network, for the DID and
// for the handle its identity named.
func TestPurge(t *testing.T) {
	e := newEnv(t, Options{})
	_, key1 := newKey(t, "k256")
	_, key2 := newKey(t, "p256")
	e.setDoc(aliceDID, docSpec{did: aliceDID, handle: "alice.test", key: key1}.json())
	e.dns.setTXT("_atproto.alice.test", "did="+aliceDID)
	if id, err := e.r.LookupHandle(ctx, "alice.test"); err != nil || id.SigningKey.Multibase() != key1 {
		t.Fatal(err)
	}
	// Key rotation and a new handle, announced by an #identity event.
	e.setDoc(aliceDID, docSpec{did: aliceDID, handle: "alice2.test", key: key2}.json())
	e.dns.setTXT("_atproto.alice2.test", "did="+aliceDID)
	e.dns.setTXT("_atproto.alice.test")
	if id, _ := e.r.LookupDID(ctx, aliceDID); id.SigningKey.Multibase() != key1 {
		t.Fatal("the cache did not hold the identity")
	}
	e.r.Purge(aliceDID)
	id, err := e.r.LookupDID(ctx, aliceDID)
	if err != nil || id.SigningKey.Multibase() != key2 || id.Handle != "alice2.test" {
		t.Fatalf("after Purge: %v, handle %s", err, id.Handle)
	}
	if _, err := e.r.LookupHandle(ctx, "alice.test"); !errors.Is(err, ErrHandleNotFound) {
		t.Errorf("old handle after Purge: %v, want ErrHandleNotFound", err)
	}
	if n, q := e.docRequests(aliceDID), e.dns.queries("_atproto.alice.test"); n != 2 || q != 2 {
		t.Errorf("%d document requests, %d DNS queries for the old handle; want 2 and 2", n, q)
	}
	if s := e.r.Stats(); s.Purges != 1 {
		t.Errorf("stats %+v", s)
	}
	e.r.Purge("did:plc:neverseen2222222222222222") // harmless
}

// TestPurgeDuringFlight: a lookup in flight when Purge is called does not
// satisfy later lookups, and its result is not cached.
func TestPurgeDuringFlight(t *testing.T) {
	e := newEnv(t, Options{SkipHandleVerification: true})
	_, key1 := newKey(t, "k256")
	_, key2 := newKey(t, "k256")
	e.setDoc(aliceDID, docSpec{did: aliceDID, key: key1}.json())
	g := holdRequests(e, "/"+aliceDID, true)
	defer g.release()

	old := make(chan *Identity, 1)
	go func() {
		id, _ := e.r.LookupDID(ctx, aliceDID)
		old <- id
	}()
	waitFor(t, "the first request", func() bool { return g.arrived.Load() == 1 })
	// The held request has read key1's document already: its answer is
	// stale by the time it arrives.
	e.setDoc(aliceDID, docSpec{did: aliceDID, key: key2}.json())
	e.r.Purge(aliceDID)
	id, err := e.r.LookupDID(ctx, aliceDID)
	if err != nil || id.SigningKey.Multibase() != key2 {
		t.Fatalf("lookup after Purge: %v", err)
	}
	g.release()
	if id := <-old; id == nil || id.SigningKey.Multibase() != key1 {
		t.Fatal("the purged flight did not answer its own caller")
	}
	id, err = e.r.LookupDID(ctx, aliceDID)
	if err != nil || id.SigningKey.Multibase() != key2 {
		t.Fatalf("cached after the purged flight ended: %v", err)
	}
	if n := g.arrived.Load(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestRefreshSigningKey(t *testing.T) {
	e := newEnv(t, Options{RefreshInterval: 5 * time.Second, SkipHandleVerification: true})
	_, key1 := newKey(t, "k256")
	_, key2 := newKey(t, "p256")
	e.setDoc(aliceDID, docSpec{did: aliceDID, key: key1}.json())
	k, err := e.r.SigningKey(ctx, aliceDID)
	if err != nil || k.Multibase() != key1 {
		t.Fatal(err)
	}
	e.setDoc(aliceDID, docSpec{did: aliceDID, key: key2}.json()) // rotated, no #identity seen
	if k, _ := e.r.SigningKey(ctx, aliceDID); k.Multibase() != key1 {
		t.Fatal("SigningKey refetched")
	}
	// Fetched just now: a refresh does not fetch again.
	if k, _ := e.r.RefreshSigningKey(ctx, aliceDID); k.Multibase() != key1 || e.docRequests(aliceDID) != 1 {
		t.Fatalf("refresh within RefreshInterval: %d requests", e.docRequests(aliceDID))
	}
	e.clock.Advance(5*time.Second + time.Millisecond)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if k, err := e.r.RefreshSigningKey(ctx, aliceDID); err != nil || k.Multibase() != key2 {
				t.Errorf("refresh: %v", err)
			}
		})
	}
	wg.Wait()
	if k, _ := e.r.SigningKey(ctx, aliceDID); k.Multibase() != key2 {
		t.Error("SigningKey after refresh is not the rotated key")
	}
	if n := e.docRequests(aliceDID); n != 2 {
		t.Errorf("%d requests, want 2 (one for 20 concurrent refreshes)", n)
	}
}

// TestTimeout: a directory that never answers costs one Timeout, even with
// context.Background(), and the failure is cached.
func TestTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	e := newEnv(t, Options{Timeout: timeout})
	// Hang until the client gives up, then hang up without an answer: a 404
	// written after the deadline could otherwise still reach the client.
	e.net.setBefore(func(r *http.Request) {
		<-r.Context().Done()
		panic(http.ErrAbortHandler)
	})
	start := time.Now()
	_, err := e.r.LookupDID(context.Background(), aliceDID)
	elapsed := time.Since(start)
	if !errors.Is(err, ErrDIDResolutionFailed) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%v, want a resolution failure by deadline", err)
	}
	if elapsed < timeout || elapsed > timeout+3*time.Second {
		t.Errorf("took %v with Timeout %v", elapsed, timeout)
	}
	start = time.Now()
	if _, err2 := e.r.LookupDID(context.Background(), aliceDID); err2 != err || time.Since(start) > timeout/2 {
		t.Errorf("second lookup: %v after %v, want the cached failure at once", err2, time.Since(start))
	}

	// A handle whose HTTPS host hangs (and with no DNS record).
	start = time.Now()
	_, err = e.r.LookupHandle(context.Background(), "slow.test")
	if !errors.Is(err, ErrHandleResolutionFailed) || time.Since(start) > timeout+3*time.Second {
		t.Errorf("handle: %v after %v", err, time.Since(start))
	}
}

// TestCallerCancel: a caller that gives up does not cancel the shared lookup
// nor get its cancellation cached.
func TestCallerCancel(t *testing.T) {
	e := newEnv(t, Options{SkipHandleVerification: true})
	e.setDoc(aliceDID, docSpec{did: aliceDID}.json())
	g := holdRequests(e, "/"+aliceDID, false)
	defer g.release()
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := e.r.LookupDID(cctx, aliceDID)
		done <- err
	}()
	waitFor(t, "the request", func() bool { return g.arrived.Load() == 1 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), aliceDID) {
			t.Errorf("%v, want context.Canceled naming the DID", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelled caller still waiting")
	}
	g.release()
	if _, err := e.r.LookupDID(ctx, aliceDID); err != nil {
		t.Fatalf("after the cancelled caller: %v", err)
	}
	if n := g.arrived.Load(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// TestConcurrentMix runs lookups, purges and refreshes of a few DIDs from many
// goroutines (for the race detector) and checks every answer is one the
// directory served.
func TestConcurrentMix(t *testing.T) {
	e := newEnv(t, Options{CacheSize: 3, RefreshInterval: time.Nanosecond})
	keys := map[string]bool{}
	var dids []syntax.DID
	for i := range 5 {
		_, key := newKey(t, "k256")
		keys[key] = true
		did := fmt.Sprintf("did:plc:mix%021d", i)
		h := fmt.Sprintf("m%d.test", i)
		dids = append(dids, syntax.DID(did))
		e.setDoc(did, docSpec{did: did, handle: h, key: key}.json())
		e.dns.setTXT("_atproto."+h, "did="+did)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 200 {
				did := dids[(w+i)%len(dids)]
				var err error
				switch i % 5 {
				case 0:
					e.r.Purge(did)
				case 1:
					_, err = e.r.RefreshSigningKey(ctx, did)
				case 2:
					var id *Identity
					id, err = e.r.LookupHandle(ctx, syntax.Handle(fmt.Sprintf("m%d.test", (w+i)%len(dids))))
					if err == nil && id.DID != did {
						t.Errorf("handle resolved to %s, want %s", id.DID, did)
					}
				default:
					var id *Identity
					id, err = e.r.LookupDID(ctx, did)
					if err == nil && (id.DID != did || !keys[id.SigningKey.Multibase()]) {
						t.Errorf("wrong identity for %s", did)
					}
				}
				if err != nil {
					t.Errorf("%s: %v", did, err)
				}
				if i%50 == 0 {
					e.clock.Advance(time.Second)
				}
			}
		})
	}
	wg.Wait()
	if s := e.r.Stats(); s.DIDs.Entries > 3 || s.Handles.Entries > 3 {
		t.Errorf("cache over its size: %+v", s)
	}
}
