package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// CollectionRepo is one entry of the collection index: a repository with
// records in the collection, its DID and its account's status (as
// Account.Status: empty when active).
type CollectionRepo struct {
	UID    uint64
	DID    string
	Status Status
}

// CollectionRepos returns the next up to limit entries of collection's index
// after the UID after, in UID order, read from one snapshot. Entries of
// accounts that are not active are included, with their status: the caller
// hides them, and a page is always the entries scanned, so a cursor made of
// the last UID never skips or repeats a repository, whatever is written
// meanwhile. Fewer than limit entries means the end of the index.
//
// The cost is one range scan of the index plus, per entry, a forward seek in
// the UID table (02) and in the small table of account statuses (12):
// account records are not decoded.
func (d *DB) CollectionRepos(collection string, after uint64, limit int) ([]CollectionRepo, error) {
	if limit <= 0 {
		return nil, nil
	}
	snap := d.db.NewSnapshot()
	defer snap.Close()
	uids, err := scanCollection(snap, collection, after, limit)
	if err != nil || len(uids) == 0 {
		return nil, err
	}
	out := make([]CollectionRepo, len(uids))
	first, last := uids[0], uids[len(uids)-1]
	dids, err := snap.NewIter(&pebble.IterOptions{LowerBound: uidKey(tUID, first), UpperBound: uidKey(tUID, last+1)})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	statuses, err := snap.NewIter(&pebble.IterOptions{LowerBound: uidKey(tStatus, first), UpperBound: uidKey(tStatus, last+1)})
	if err != nil {
		dids.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	var key [9]byte
	for i, uid := range uids {
		r := &out[i]
		r.UID = uid
		k := append(key[:0], tUID)
		k = appendUID(k, uid)
		if !dids.SeekGE(k) || !bytes.Equal(dids.Key(), k) {
			dids.Close()
			statuses.Close()
			return nil, fmt.Errorf("store: collection %s: uid %d has no account", collection, uid)
		}
		r.DID = string(dids.Value())
		k[0] = tStatus
		if statuses.SeekGE(k) && bytes.Equal(statuses.Key(), k) {
			r.Status = Status(statuses.Value())
		}
	}
	if err := closeIter(statuses); err != nil {
		dids.Close()
		return nil, err
	}
	return out, closeIter(dids)
}

// scanCollection reads up to limit UIDs of collection's index after after.
func scanCollection(r pebble.Reader, collection string, after uint64, limit int) ([]uint64, error) {
	if limit <= 0 {
		return nil, nil
	}
	p := append(append([]byte{tCollIndex}, collection...), 0)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: collIndexKey(collection, after+1), UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	out := make([]uint64, 0, min(limit, 4096))
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		k := it.Key()[len(p):]
		if len(k) != 8 {
			continue
		}
		out = append(out, binary.BigEndian.Uint64(k))
	}
	return out, closeIter(it)
}

// CollectionRepoCount is how many repositories have records in a
// collection.
type CollectionRepoCount struct {
	Collection string
	Repos      uint64
}

// CollectionCounts returns up to limit collections whose names start with
// prefix ("" for all) and sort after after ("" starts at the first), in
// byte order of their names, each with the number of repositories that have
// records in it. The counts include repositories hidden while their account
// is not active (deleted ones are gone).
func (d *DB) CollectionCounts(prefix, after string, limit int) ([]CollectionRepoCount, error) {
	if limit <= 0 {
		return nil, nil
	}
	p := collReposKey(prefix)
	lo := p
	if after >= prefix {
		lo = append(collReposKey(after), 0) // just past after
	}
	hi := prefixEnd(p)
	if bytes.Compare(lo, hi) >= 0 {
		return nil, nil // after is past every name with the prefix
	}
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	var out []CollectionRepoCount
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		n, k := binary.Uvarint(it.Value())
		if k <= 0 {
			it.Close()
			return nil, fmt.Errorf("store: corrupt repository count of %q", it.Key()[1:])
		}
		out = append(out, CollectionRepoCount{Collection: string(it.Key()[1:]), Repos: n})
	}
	return out, closeIter(it)
}

// CollectionRepoTotal returns the number of repositories with records in
// collection (0 for a collection nobody uses).
func (d *DB) CollectionRepoTotal(collection string) (uint64, error) {
	return d.getUvarint(collReposKey(collection))
}
