package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// collEntry is one entry of the collection index (table 0b): a repository
// that has records in a collection.
type collEntry struct {
	collection string
	uid        uint64
}

// collTracker maintains the collection index for one commit group. The
// writer of a change gives absolute record counts (table 0a) but cannot know
// the per-collection repository counts (table 11), which every writer of the
// collection shares; the committer, the only writer of the index, learns
// whether each entry exists (from the store, or from an earlier change of the
// same group), writes the index entries that appear or disappear, and adds up
// the repository count changes, written once at the end of the group.
type collTracker struct {
	d       *DB
	present map[collEntry]bool // entries touched by this group: in or out
	repos   map[string]int64   // repository count change per collection
}

func newCollTracker(d *DB) *collTracker {
	return &collTracker{d: d, present: map[collEntry]bool{}, repos: map[string]int64{}}
}

// has reports whether the entry is in the index as of the changes of the
// group so far.
func (t *collTracker) has(e collEntry) (bool, error) {
	if in, ok := t.present[e]; ok {
		return in, nil
	}
	_, closer, err := t.d.db.Get(collIndexKey(e.collection, e.uid))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: reading the collection index: %w", err)
	}
	closer.Close()
	return true, nil
}

// collMove is an index entry a change adds (in) or removes.
type collMove struct {
	e  collEntry
	in bool
}

// plan reads what the change does to the index: the entries it adds (a
// count going from zero to more) and removes (a count going to zero, or the
// repository deleted). It only reads, so a failure leaves the group as it
// was.
func (t *collTracker) plan(c *Change) ([]collMove, error) {
	var moves []collMove
	after := map[string]bool{} // entries of this repository as the moves so far leave them
	state := func(coll string) (bool, error) {
		if in, ok := after[coll]; ok {
			return in, nil
		}
		return t.has(collEntry{coll, c.UID})
	}
	set := func(coll string, want bool) error {
		in, err := state(coll)
		if err != nil {
			return err
		}
		if in != want {
			moves = append(moves, collMove{e: collEntry{coll, c.UID}, in: want})
		}
		after[coll] = want
		return nil
	}
	if c.Delete {
		colls, err := t.d.collectionsOf(c.UID)
		if err != nil {
			return nil, err
		}
		for e, in := range t.present {
			if e.uid == c.UID && in {
				colls = append(colls, e.collection)
			}
		}
		for _, coll := range colls {
			if err := set(coll, false); err != nil {
				return nil, err
			}
		}
	}
	for _, cc := range c.Collections {
		if cc.Count > 0 && cc.Old > 0 && t.known(c.UID, cc.Collection, after) {
			continue // in before and after, as its writer read it
		}
		if err := set(cc.Collection, cc.Count > 0); err != nil {
			return nil, err
		}
	}
	return moves, nil
}

// known reports whether the writer's view of an entry can be trusted: no
// earlier change of the group, nor this one, has touched it (the writer
// read the store, which is all there is then).
func (t *collTracker) known(uid uint64, coll string, after map[string]bool) bool {
	if _, ok := after[coll]; ok {
		return false
	}
	_, ok := t.present[collEntry{coll, uid}]
	return !ok
}

// apply writes the planned moves into the batch.
func (t *collTracker) apply(b *pebble.Batch, moves []collMove) {
	for _, m := range moves {
		k := collIndexKey(m.e.collection, m.e.uid)
		if m.in {
			b.Set(k, nil, nil)
			t.repos[m.e.collection]++
		} else {
			b.Delete(k, nil)
			t.repos[m.e.collection]--
		}
		t.present[m.e] = m.in
	}
}

// flush writes the new repository count of every collection the group
// changed.
func (t *collTracker) flush(b *pebble.Batch) error {
	for coll, delta := range t.repos {
		if delta == 0 {
			continue
		}
		k := collReposKey(coll)
		cur, err := t.d.getUvarint(k)
		if err != nil {
			return err
		}
		n := int64(cur) + delta
		if n < 0 {
			// Only a damaged index gets here; the count follows the entries.
			t.d.log.Error("collection repository count below zero", "collection", coll, "count", cur, "change", delta)
			n = 0
		}
		if n == 0 {
			b.Delete(k, nil)
		} else {
			b.Set(k, binary.AppendUvarint(nil, uint64(n)), nil)
		}
	}
	return nil
}

// collectionsOf lists the collections a repository has records in (table
// 0a), as committed.
func (d *DB) collectionsOf(uid uint64) ([]string, error) {
	_, names, err := d.Collections(uid)
	return names, err
}

// writeAccountStatus keeps table 12, the status of every account whose
// status is not plainly active, in step with an account record being
// written.
func writeAccountStatus(b *pebble.Batch, a *Account) {
	k := uidKey(tStatus, a.UID)
	if a.Status == StatusActive {
		b.Delete(k, nil)
	} else {
		b.Set(k, []byte(a.Status), nil)
	}
}

func collReposKey(collection string) []byte {
	return append([]byte{tCollRepos}, collection...)
}
