package directory_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/plc"
	"github.com/reservoir-atproto/reservoir/plc/directory"
	"github.com/reservoir-atproto/reservoir/plc/directory/pebblestore"
)

// TestRandomOperations submits random operations (updates and forks by
// keys of random authority, tombstones, hours passing) and checks after
// each step that what the directory serves is a log the replay accepts,
// with the nullified flags the replay computes, and whose accepted
// operations are exactly those the directory said 200 to.
func TestRandomOperations(t *testing.T) {
	stores := map[string]func(t *testing.T) directory.Store{
		"memory": func(t *testing.T) directory.Store { return directory.NewMemStore() },
		"pebble": func(t *testing.T) directory.Store {
			s, err := pebblestore.Open(t.TempDir(), pebblestore.Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			var accepted, nullified, rejected int
			for seed := uint64(1); seed <= 4; seed++ {
				s := open(t)
				a, n, r := randomRun(t, s, rand.New(rand.NewPCG(seed, 7)))
				accepted, nullified, rejected = accepted+a, nullified+n, rejected+r
				s.Close()
			}
			t.Logf("%d accepted (%d of them nullified since), %d rejected", accepted, nullified, rejected)
			if nullified == 0 || rejected == 0 || accepted < 20 {
				t.Errorf("the runs exercised too little")
			}
		})
	}
}

func randomRun(t *testing.T, store directory.Store, rng *rand.Rand) (accepted, nullified, rejected int) {
	e := newEnv(t, store)
	ctx := context.Background()
	keys := []key{newKey(t, false), newKey(t, true), newKey(t, false)} // authority: 0 > 1 > 2
	did, g, err := e.client.CreateAccount(ctx, account("r.test", keys[2], keys...), keys[2].priv)
	if err != nil {
		t.Fatal(err)
	}
	submitted := []plc.Op{g} // every accepted operation, in order
	for step := range 50 {
		e.clock.add(time.Duration(rng.IntN(4)*rng.IntN(20)) * time.Hour)
		audit, err := e.client.AuditLog(ctx, did)
		if err != nil {
			t.Fatal(err)
		}
		// Fork at a random active operation (most often the last one).
		var active []plc.LogEntry
		for _, a := range audit {
			if !a.Nullified {
				active = append(active, a)
			}
		}
		prev := active[len(active)-1].Op
		if rng.IntN(2) == 0 {
			prev = active[rng.IntN(len(active))].Op
		}
		signer := keys[rng.IntN(len(keys))]
		var op plc.Op
		if _, tomb := prev.(*plc.Tombstone); tomb || rng.IntN(15) == 0 {
			op = signed(t, &plc.Tombstone{Prev: prev.CID().String()}, signer)
		} else {
			op = updated(t, prev, signer, plc.SetHandle(syntax.Handle(fmt.Sprintf("s%d.test", step))))
		}
		err = e.client.Submit(ctx, did, op)
		switch {
		case err == nil:
			submitted = append(submitted, op)
		case errors.Is(err, plc.ErrRejected):
			rejected++
		default:
			t.Fatalf("step %d: %v", step, err)
		}
		audit, err = e.client.AuditLog(ctx, did)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := plc.VerifyAuditLog(did, audit); err != nil {
			t.Fatalf("step %d: the served audit log does not replay: %v", step, err)
		}
		if len(audit) != len(submitted) {
			t.Fatalf("step %d: audit log has %d entries, %d were accepted", step, len(audit), len(submitted))
		}
		for i := range audit {
			if !audit[i].CID.Equals(submitted[i].CID()) {
				t.Fatalf("step %d: entry %d is not the %dth accepted operation", step, i, i)
			}
		}
	}
	audit, _ := e.client.AuditLog(ctx, did)
	for _, a := range audit {
		if a.Nullified {
			nullified++
		}
	}
	return len(submitted), nullified, rejected
}
