package store

import (
	"context"
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

// collectEvents deletes up to gcBatchSize events older than cutoff.
func (d *DB) collectEvents(ctx context.Context, cutoff time.Time) (int, error) {
	var n int
	var last int64
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
			b.Delete(eventByUIDKey(ev.UID, ev.Seq), nil)
			last = ev.Seq
			n++
		}
		if err := closeIter(it); err != nil {
			return err
		}
		if n > 0 {
			// One range deletion for the frames: Pebble drops the tables it
			// covers whole (the log's tables hold nothing else, spans.go).
			b.DeleteRange([]byte{tEvent}, eventKey(last+1), nil)
		}
		return nil
	}
	if _, err := d.submit(ctx, &request{job: job, done: make(chan result, 1)}); err != nil {
		return 0, fmt.Errorf("store: collecting events: %w", err)
	}
	return n, nil
}
