package store

import (
	"context"
	"fmt"
	"testing"
)

// TestFlushSplitsTables checks that a flush writes the event log and the
// history's time index in tables of their own (spans.go), so that they
// overlap nothing else and can move down the levels unmerged.
func TestFlushSplitsTables(t *testing.T) {
	db := openMem(t, Options{})
	ctx := context.Background()
	prev := map[int]Block{}
	for round := range 3 {
		for i := range 20 {
			commit := block(fmt.Sprintf("commit %d %d", i, round))
			c := &Change{
				Head:      &Head{Commit: commit.CID, Rev: []string{rev1, rev2, rev3}[round], Data: commit.CID},
				NewBlocks: []Block{commit},
				Events:    []FrameEncoder{seqFrame("commit")},
			}
			if round == 0 {
				c.Account = &Account{DID: fmt.Sprintf("did:plc:acct%d", i)}
			} else {
				c.UID = uint64(i + 1)
				c.Dead = []DeadBlock{{CID: prev[i].CID, Data: prev[i].Data}}
			}
			if _, err := db.Apply(ctx, c); err != nil {
				t.Fatal(err)
			}
			prev[i] = commit
		}
	}
	if err := db.db.Flush(); err != nil {
		t.Fatal(err)
	}
	levels, err := db.db.SSTables()
	if err != nil {
		t.Fatal(err)
	}
	tables := map[byte]bool{}
	for _, level := range levels {
		for _, tbl := range level {
			lo, hi := tbl.Smallest.UserKey, tbl.Largest.UserKey
			for _, b := range spanBounds {
				crosses := string(lo) < string(b) && string(hi) >= string(b)
				if tbl.Largest.IsExclusiveSentinel() { // a range deletion's end, not a key
					crosses = string(lo) < string(b) && string(hi) > string(b)
				}
				if crosses {
					t.Errorf("table %s holds keys %s to %s, across the span boundary %x", tbl.FileNum, tbl.Smallest, tbl.Largest, b)
				}
			}
			if lo[0] == hi[0] {
				tables[lo[0]] = true
			}
		}
	}
	for _, want := range []byte{tEvent, tHistory} {
		if !tables[want] {
			t.Errorf("no output table holds table %02x alone", want)
		}
	}
}
