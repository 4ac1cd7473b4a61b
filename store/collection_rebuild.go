package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// collectionIndexVersion is the version of the collection index tables (0a,
// 0b, 11, 12) this code maintains. A store whose marker (meta key
// "collidx") is absent or older has them rebuilt at Open.
//
//	1: record counts (0a), index entries (0b), repository counts per
//	   collection (11), account statuses (12).
const collectionIndexVersion = 1

// rebuildBatchBytes bounds one batch of the rebuild (and so its memory); a
// variable so that tests can make the rebuild use many batches.
var rebuildBatchBytes = 4 << 20

// ensureCollectionIndex rebuilds the collection index tables when the store
// predates this version of them. It runs in Open before the committer
// starts, so no change can interleave with it.
func (d *DB) ensureCollectionIndex() error {
	v, err := d.getUint(metaCollIndex)
	if err != nil {
		return err
	}
	switch {
	case v == collectionIndexVersion:
		return nil
	case v > collectionIndexVersion:
		return fmt.Errorf("store: collection index version %d is newer than this program's %d", v, collectionIndexVersion)
	}
	return d.rebuildCollectionIndex()
}

// rebuildCollectionIndex recomputes tables 0a, 0b, 11 and 12 from the
// record index (table 08) and the account records (table 01), in bounded
// batches, and then sets the version marker. A crash part way leaves the
// marker unset, so the next Open starts over.
func (d *DB) rebuildCollectionIndex() error {
	start := time.Now()
	w := &rebuildWriter{db: d.db, b: d.db.NewBatch()}
	defer func() { w.b.Close() }()
	for _, t := range []byte{tCollCount, tCollIndex, tCollRepos, tStatus} {
		w.b.DeleteRange([]byte{t}, []byte{t + 1}, nil)
	}
	entries, err := d.rebuildFromRecords(w)
	if err != nil {
		return err
	}
	if err := w.commit(); err != nil { // table 11 is counted from the new 0b
		return err
	}
	colls, err := d.rebuildRepoCounts(w)
	if err != nil {
		return err
	}
	statuses, err := d.rebuildStatuses(w)
	if err != nil {
		return err
	}
	w.b.Set(metaCollIndex, binary.BigEndian.AppendUint64(nil, collectionIndexVersion), nil)
	if err := w.b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("store: rebuilding the collection index: %w", err)
	}
	d.log.Info("collection index rebuilt", "entries", entries, "collections", colls, "account_statuses", statuses, "took", time.Since(start))
	return nil
}

// rebuildWriter writes the rebuild in batches of bounded size.
type rebuildWriter struct {
	db *pebble.DB
	b  *pebble.Batch
}

func (w *rebuildWriter) set(k, v []byte) error {
	w.b.Set(k, v, nil)
	if w.b.Len() < rebuildBatchBytes {
		return nil
	}
	return w.commit()
}

// commit makes what is written so far visible to the rebuild's own reads.
// Durability waits for the final batch, which carries the marker.
func (w *rebuildWriter) commit() error {
	if err := w.b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("store: rebuilding the collection index: %w", err)
	}
	w.b.Close()
	w.b = w.db.NewBatch()
	return nil
}

// rebuildFromRecords walks the record index, which is ordered by repository
// and then path, so the records of one collection of one repository are
// adjacent: each run becomes a record count (0a) and an index entry (0b).
func (d *DB) rebuildFromRecords(w *rebuildWriter) (int, error) {
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tRecord}, UpperBound: []byte{tRecord + 1}})
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	var (
		uid     uint64
		coll    []byte
		n       uint64
		entries int
	)
	flush := func() error {
		if n == 0 {
			return nil
		}
		entries++
		if err := w.set(keyUIDString(tCollCount, uid, string(coll)), binary.AppendUvarint(nil, n)); err != nil {
			return err
		}
		return w.set(collIndexKey(string(coll), uid), nil)
	}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) < 9 {
			it.Close()
			return 0, fmt.Errorf("store: corrupt record-index key %q", k)
		}
		u := binary.BigEndian.Uint64(k[1:9])
		c := k[9:]
		if i := bytes.IndexByte(c, '/'); i >= 0 {
			c = c[:i]
		}
		if n > 0 && u == uid && bytes.Equal(c, coll) {
			n++
			continue
		}
		if err := flush(); err != nil {
			it.Close()
			return 0, err
		}
		uid, coll, n = u, append(coll[:0], c...), 1
	}
	if err := flush(); err != nil {
		it.Close()
		return 0, err
	}
	return entries, closeIter(it)
}

// rebuildRepoCounts counts the entries of each collection in the new index
// (ordered by collection) into table 11.
func (d *DB) rebuildRepoCounts(w *rebuildWriter) (int, error) {
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tCollIndex}, UpperBound: []byte{tCollIndex + 1}})
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	var (
		coll  []byte
		n     uint64
		colls int
	)
	flush := func() error {
		if n == 0 {
			return nil
		}
		colls++
		return w.set(collReposKey(string(coll)), binary.AppendUvarint(nil, n))
	}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) < 10 || k[len(k)-9] != 0 {
			it.Close()
			return 0, fmt.Errorf("store: corrupt collection-index key %q", k)
		}
		c := k[1 : len(k)-9]
		if n > 0 && bytes.Equal(c, coll) {
			n++
			continue
		}
		if err := flush(); err != nil {
			it.Close()
			return 0, err
		}
		coll, n = append(coll[:0], c...), 1
	}
	if err := flush(); err != nil {
		it.Close()
		return 0, err
	}
	return colls, closeIter(it)
}

// rebuildStatuses writes table 12 from the account records.
func (d *DB) rebuildStatuses(w *rebuildWriter) (int, error) {
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tAccount}, UpperBound: []byte{tAccount + 1}})
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	var n int
	for ok := it.First(); ok; ok = it.Next() {
		a, err := decodeAccount(it.Value())
		if err != nil {
			it.Close()
			return 0, fmt.Errorf("store: account %q: %w", it.Key()[1:], err)
		}
		if a.Status == StatusActive {
			continue
		}
		n++
		if err := w.set(uidKey(tStatus, a.UID), []byte(a.Status)); err != nil {
			it.Close()
			return 0, err
		}
	}
	return n, closeIter(it)
}
