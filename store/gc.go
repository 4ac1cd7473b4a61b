package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

func timeFromNanos(n uint64) time.Time { return time.Unix(0, int64(n)).UTC() }

// gcLoop runs CollectGarbage every GCInterval until Close.
func (d *DB) gcLoop() {
	defer d.wg.Done()
	t := time.NewTicker(d.opts.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-d.closing:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), d.opts.GCInterval)
			if err := d.CollectGarbage(ctx); err != nil {
				d.log.Warn("garbage collection", "err", err)
			}
			cancel()
		}
	}
}

// gcBatchSize bounds the deletions of one maintenance job.
const gcBatchSize = 4096

// CollectGarbage removes superseded blocks older than the history window and
// events older than the event window. Deletions go through the committer in
// bounded jobs, so they never race a change.
func (d *DB) CollectGarbage(ctx context.Context) error {
	now := d.opts.Now()
	for {
		n, err := d.collectHistory(ctx, now.Add(-d.opts.HistoryWindow))
		if err != nil || n < gcBatchSize {
			if err != nil {
				return err
			}
			break
		}
	}
	for {
		n, err := d.collectEvents(ctx, now.Add(-d.opts.EventWindow))
		if err != nil || n < gcBatchSize {
			return err
		}
	}
}

// collectHistory deletes up to gcBatchSize superseded blocks that died
// before cutoff. A block that died again later (its history entry is newer)
// is left to that later entry.
func (d *DB) collectHistory(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	job := func(b *pebble.Batch) error {
		hi := binary.BigEndian.AppendUint64([]byte{tGC}, uint64(cutoff.UnixNano()))
		it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tGC}, UpperBound: hi})
		if err != nil {
			return err
		}
		for ok := it.First(); ok && n < gcBatchSize; ok = it.Next() {
			k := it.Key()
			if len(k) < 17 {
				continue
			}
			died, rest := k[1:9], k[9:] // rest: uid cid
			dk := append([]byte{tDead}, rest...)
			if v, closer, err := d.db.Get(dk); err == nil {
				if bytes.Equal(v[:8], died) {
					b.Delete(dk, nil)
				}
				closer.Close()
			}
			b.Delete(k, nil)
			n++
		}
		return closeIter(it)
	}
	if _, err := d.submit(ctx, &request{job: job, done: make(chan result, 1)}); err != nil {
		return 0, fmt.Errorf("store: collecting history: %w", err)
	}
	return n, nil
}

// collectEvents deletes up to gcBatchSize events older than cutoff.
func (d *DB) collectEvents(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	job := func(b *pebble.Batch) error {
		it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tEvent}, UpperBound: []byte{tEvent + 1}})
		if err != nil {
			return err
		}
		for ok := it.First(); ok && n < gcBatchSize; ok = it.Next() {
			ev, err := decodeEvent(it.Key(), it.Value())
			if err != nil {
				it.Close()
				return err
			}
			if !ev.Time.Before(cutoff) {
				break
			}
			b.Delete(it.Key(), nil)
			b.Delete(eventByUIDKey(ev.UID, ev.Seq), nil)
			n++
		}
		return closeIter(it)
	}
	if _, err := d.submit(ctx, &request{job: job, done: make(chan result, 1)}); err != nil {
		return 0, fmt.Errorf("store: collecting events: %w", err)
	}
	return n, nil
}
