package repo

import (
	"fmt"
	"math/rand"
	"testing"

	indigomst "github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/mst"
)

// Our MST must give the same root CID as indigo's, an independent
// implementation, for random key sets and after random deletions. The
// interop fixtures pin a few dozen trees; this covers thousands of shapes.
func TestMSTAgreesWithIndigo(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	colls := []string{"app.bsky.feed.post", "app.bsky.feed.like", "app.bsky.graph.follow", "a.b.c"}
	for round := 0; round < 60; round++ {
		n := rng.Intn(3000)
		if round%10 == 0 {
			n = rng.Intn(5) // tiny trees: empty, single key, trimming
		}
		m := map[string]cid.Cid{}
		for len(m) < n {
			var rkey string
			if rng.Intn(3) == 0 {
				rkey = fmt.Sprintf("k%d", rng.Intn(1_000_000))
			} else {
				rkey = string(syntax.NewTIDFromInteger(uint64(rng.Int63())))
			}
			m[colls[rng.Intn(len(colls))]+"/"+rkey] = dagcbor.SumCBOR([]byte(fmt.Sprintf("\x61%c", 'a'+rng.Intn(26))))
		}
		ours := mst.NewEmpty(nil)
		for k, v := range m {
			if _, err := ours.Insert([]byte(k), v); err != nil {
				t.Fatal(err)
			}
		}
		// Delete a random fifth from both.
		for k := range m {
			if rng.Intn(5) == 0 {
				delete(m, k)
				if _, err := ours.Delete([]byte(k)); err != nil {
					t.Fatal(err)
				}
			}
		}
		theirs, err := indigomst.LoadTreeFromMap(m)
		if err != nil {
			t.Fatal(err)
		}
		want, err := theirs.RootCID()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ours.Root()
		if err != nil {
			t.Fatal(err)
		}
		if got != *want {
			t.Fatalf("round %d (%d keys): our root %s, indigo's %s", round, len(m), got, want)
		}
	}
}
