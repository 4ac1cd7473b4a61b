package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ipfs/go-cid"
)

// History: superseded blocks.
//
// A block a change makes unreachable leaves table 04 and is kept, for the
// history window, in two entries written in the change's batch:
//
//	06 uid cid died → ∅      where the copy is (the index)
//	07 died uid cid → data   the copy, ordered by time of death
//
// The copies, about a fifth of the bytes a relay commit adds, are keyed by
// time, so their keys only grow: flushes write them in tables of their own
// (spans.go) that move down the levels unmerged, where copies keyed by
// repository were merged with everything at every level. The collector
// deletes the index entries of the copies that expired (one point deletion
// each, no read) and the copies with one range deletion, which lets Pebble
// drop whole tables. A block that dies twice has two copies, both the same
// bytes; a read takes either.
//
// Version 1 (before 2026-11-26) kept the bytes in table 06 (uid cid → died,
// data) and only keys in 07; Open converts such a store (migrateHistory).
const historyVersion = 2

// historyBlock returns a superseded block of a repository that is still
// inside the history window. One iterator reads the index entry and the
// copy, so both come from the same state of the store.
func (d *DB) historyBlock(uid uint64, c cid.Cid) ([]byte, error) {
	prefix := appendKeyUIDCID(nil, tHistIndex, uid, c)
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tHistIndex}, UpperBound: []byte{tHistory + 1}})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	// A longer key with this prefix would be another CID's: binary CIDs
	// carry their lengths, so none is a prefix of another.
	if !it.SeekGE(prefix) || len(it.Key()) != len(prefix)+8 || !bytes.HasPrefix(it.Key(), prefix) {
		if err := closeIter(it); err != nil {
			return nil, err
		}
		return nil, ErrNotFound
	}
	died := int64(binary.BigEndian.Uint64(it.Key()[len(prefix):]))
	key := appendHistoryKey(nil, died, uid, c)
	var data []byte
	if it.SeekGE(key) && bytes.Equal(it.Key(), key) {
		data = append([]byte(nil), it.Value()...)
	}
	if err := closeIter(it); err != nil {
		return nil, err
	}
	if data == nil {
		return nil, fmt.Errorf("store: history of uid %d: index entry without its copy %x", uid, key)
	}
	return data, nil
}

// maxPurgedCopies bounds the history copies one deletion reads and
// deletes; beyond it (a repository that superseded more blocks within the
// window), the rest, unreachable without their index entries, expire with
// the window.
const maxPurgedCopies = 200_000

// historyCopies returns the keys of the history copies of a repository
// (from its index entries), which its deletion deletes with it: a deleted
// account's superseded blocks leave the disk at once, not at the end of
// the window. It runs in Apply, in the writer's goroutine: the committer
// does not read. A copy that the writer's change races with (another
// change of the same repository, which its one writer does not make, or
// the collector) is at worst left to the window or deleted twice.
func (d *DB) historyCopies(uid uint64) ([][]byte, error) {
	d.mu.RLock() // Pebble must not close under the iterator
	defer d.mu.RUnlock()
	if d.closed {
		return nil, ErrClosed
	}
	prefix := uidKey(tHistIndex, uid)
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	var keys [][]byte
	for ok := it.First(); ok && len(keys) < maxPurgedCopies; ok = it.Next() {
		k := it.Key() // 06 uid cid died
		if len(k) < len(prefix)+8 {
			continue
		}
		c, died := k[len(prefix):len(k)-8], k[len(k)-8:]
		key := make([]byte, 0, 1+8+8+len(c))
		key = append(append(append(append(key, tHistory), died...), prefix[1:]...), c...)
		keys = append(keys, key)
	}
	if err := closeIter(it); err != nil {
		return nil, err
	}
	return keys, nil
}

// collectHistory deletes up to gcBatchSize superseded blocks that died
// before cutoff: their index entries one by one, their copies with one range
// deletion.
func (d *DB) collectHistory(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	job := func(b *pebble.Batch) error {
		lo := []byte{tHistory}
		hi := binary.BigEndian.AppendUint64([]byte{tHistory}, uint64(cutoff.UnixNano()))
		it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			return err
		}
		var last, key []byte
		for ok := it.First(); ok && n < gcBatchSize; ok = it.Next() {
			k := it.Key()
			last = append(last[:0], k...)
			n++
			if len(k) < 17 {
				continue // not a copy's key; the range deletion takes it
			}
			died, rest := k[1:9], k[9:] // rest: uid cid
			key = append(append(append(key[:0], tHistIndex), rest...), died...)
			b.Delete(key, nil)
		}
		if err := closeIter(it); err != nil {
			return err
		}
		if last != nil {
			b.DeleteRange(lo, append(last, 0), nil)
		}
		return nil
	}
	if _, err := d.submit(ctx, &request{job: job, done: make(chan result, 1)}); err != nil {
		return 0, fmt.Errorf("store: collecting history: %w", err)
	}
	return n, nil
}

// ensureHistory converts a store whose history predates historyVersion.
// It runs in Open before the committer starts.
func (d *DB) ensureHistory() error {
	v, err := d.getUint(metaHistory)
	if err != nil {
		return err
	}
	switch {
	case v == historyVersion:
		return nil
	case v > historyVersion:
		return fmt.Errorf("store: history layout version %d is newer than this program's %d", v, historyVersion)
	}
	return d.migrateHistory()
}

// migrateHistory rewrites version 1's history (06 uid cid → died, data and
// 07 died uid cid → ∅) as version 2's, in batches of rebuildBatchBytes,
// each of which converts whole entries: an interrupted run is taken up by
// the next Open. Version 2's index entries have empty values and its
// copies non-empty ones (a block has at least one byte), which tells the
// layouts apart. A fresh store has nothing to convert and only gets the
// marker.
func (d *DB) migrateHistory() error {
	start := time.Now()
	var converted, dropped int
	// Version 1's 06 entries become a version 2 index entry and copy.
	err := d.convertTable(tHistIndex, func(b *pebble.Batch, k, v []byte) error {
		if len(v) == 0 {
			return nil // version 2 already
		}
		if len(v) < 9 || len(k) < 9 {
			return fmt.Errorf("store: history entry %x: corrupt value", k)
		}
		died, rest := v[:8], k[9:] // rest: cid
		b.Delete(k, nil)
		b.Set(append(append([]byte(nil), k...), died...), nil, nil)
		b.Set(append(append(append([]byte{tHistory}, died...), k[1:9]...), rest...), v[8:], nil)
		converted++
		return nil
	}, nil)
	if err != nil {
		return err
	}
	// What is left of version 1's 07 (keys without bytes) marked blocks
	// that died again later, whose copy is under the later time.
	err = d.convertTable(tHistory, func(b *pebble.Batch, k, v []byte) error {
		if len(v) == 0 {
			b.Delete(k, nil)
			dropped++
		}
		return nil
	}, func(b *pebble.Batch) {
		b.Set(metaHistory, binary.BigEndian.AppendUint64(nil, historyVersion), nil)
	})
	if err != nil {
		return err
	}
	if converted > 0 || dropped > 0 {
		d.log.Info("history converted", "blocks", converted, "stale_keys", dropped, "took", time.Since(start))
	}
	return nil
}

// convertTable passes every entry of one table to convert, in batches of
// about rebuildBatchBytes, each committed on its own (an entry is converted
// whole in one batch); last, when set, writes into the final batch, which
// is synced.
func (d *DB) convertTable(table byte, convert func(b *pebble.Batch, k, v []byte) error, last func(b *pebble.Batch)) error {
	from := []byte{table}
	for from != nil {
		b := d.db.NewBatch()
		err := func() error {
			it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: from, UpperBound: []byte{table + 1}})
			if err != nil {
				return fmt.Errorf("store: %w", err)
			}
			from = nil
			for ok := it.First(); ok; ok = it.Next() {
				if !b.Empty() && b.Len() >= rebuildBatchBytes {
					from = append([]byte(nil), it.Key()...)
					break
				}
				if err := convert(b, it.Key(), it.Value()); err != nil {
					it.Close()
					return err
				}
			}
			if err := closeIter(it); err != nil {
				return err
			}
			sync := pebble.NoSync
			if from == nil {
				if last != nil {
					last(b)
				}
				sync = pebble.Sync
			}
			if err := b.Commit(sync); err != nil {
				return fmt.Errorf("store: converting table %02x: %w", table, err)
			}
			return nil
		}()
		b.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
