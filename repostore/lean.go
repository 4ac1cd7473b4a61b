package repostore

import (
	"fmt"
	"time"

	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/store"
)

// A lean relay (serve --archive=false) keeps of a mirrored repository only
// its head (commit CID, rev, data CID), its status, host and handle, and
// its record count per collection (so listReposByCollection still answers
// for it): no blocks, no record index, no blob references. Its changes are
// built here.

// HeadChange is the change of a verified commit on a lean mirror: the new
// head, the collection counts its creates and deletes move, and the
// #commit event (the commit's slice unchanged), timestamped now. The
// counts are exact because a sync-1.1 commit's ops are the whole diff from
// prevData (the inversion check proves it).
func (r *Repos) HeadChange(a *store.Account, res *repo.CommitResult, now time.Time) (*store.Change, error) {
	c := &store.Change{
		UID:  a.UID,
		Head: &store.Head{Commit: res.CID, Rev: string(res.Commit.Rev), Data: res.Commit.Data},
	}
	delta := map[string]int64{}
	for _, op := range res.Ops {
		switch op.Action {
		case repo.ActionCreate:
			delta[collectionOf(op.Path)]++
		case repo.ActionDelete:
			delta[collectionOf(op.Path)]--
		}
	}
	for coll, d := range delta {
		if d == 0 {
			continue
		}
		var cur uint64
		if a.UID != 0 {
			var err error
			if cur, err = r.DB.CollectionCount(a.UID, coll); err != nil {
				return nil, err
			}
		}
		n := int64(cur) + d
		if n < 0 {
			// The counts were not kept from the start (an account
			// archived before, or created mid-history): floor at zero.
			n = 0
		}
		c.Collections = append(c.Collections, store.CollectionCount{Collection: coll, Count: uint64(n), Old: cur})
	}
	ev := &wire.Commit{
		Repo: a.DID, Rev: string(res.Commit.Rev), Since: string(res.Since), Commit: res.CID,
		PrevData: res.PrevData, Blocks: res.Slice, Ops: res.Ops, Time: now,
	}
	if ev.Ops == nil {
		ev.Ops = []repo.Op{}
	}
	c.Events = append(c.Events, ev.AppendFrame)
	return c, nil
}

// HeadReplaceChange is the change of a whole verified repository (a
// resync) on a lean mirror: the new head and the collection counts of its
// records; collections it no longer has go to zero. Any record index left
// from an archived past is dropped. The caller adds the events (#sync).
func (r *Repos) HeadReplaceChange(a *store.Account, next *VerifiedRepo) (*store.Change, error) {
	c := &store.Change{
		UID:          a.UID,
		Head:         &store.Head{Commit: next.CID, Rev: string(next.Commit.Rev), Data: next.Commit.Data},
		ResetRecords: true,
	}
	colls := map[string]uint64{}
	for _, rec := range next.Records {
		colls[collectionOf(rec.Path)]++
	}
	if a.UID != 0 {
		_, old, err := r.DB.Collections(a.UID)
		if err != nil {
			return nil, fmt.Errorf("repostore: collections of %s: %w", a.DID, err)
		}
		for _, coll := range old {
			if _, ok := colls[coll]; !ok {
				c.Collections = append(c.Collections, store.CollectionCount{Collection: coll})
			}
		}
	}
	for coll, n := range colls {
		c.Collections = append(c.Collections, store.CollectionCount{Collection: coll, Count: n})
	}
	return c, nil
}
