package store

import (
	"bytes"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Bottom-level bloom filters.
//
// Pebble's Get never reads the bloom filters of the bottom level (L6), where
// most data lives: its filter blocks are large, and a key that exists is
// found in a data block anyway. A key that is nearly always absent — the
// live block of a record created for the first time, looked up by
// RefCount before every create — then costs a data block of L6 for
// nothing: on the relay ingest benchmark that read was 10 % of the CPU
// (2.7 s of 26.8), and 5.7 % (1.2 s of 20.3) with the filters.
//
// So hasLikelyAbsent reads L6's filters too, while they fit in a quarter of
// the block cache (checkBottomFilters, every filterCheckInterval): beyond
// that each lookup could load a filter block bigger than the data block it
// spares, and it falls back to Get. The filters are ≈10 bits per key,
// a fraction of a percent of the tables, so the default 16 MiB cache
// keeps them for an archive of a few GiB.
const filterCheckInterval = 30 * time.Second

// maxCountedTables bounds the L6 tables whose properties are read to size
// their filters; beyond it (an archive of tens of GiB) the filters are not
// used.
const maxCountedTables = 1000

// filterLoop keeps bottomFilters current until Close.
func (d *DB) filterLoop() {
	defer d.wg.Done()
	t := time.NewTicker(filterCheckInterval)
	defer t.Stop()
	for {
		if err := d.checkBottomFilters(); err != nil {
			d.log.Warn("store: sizing the bottom level's filters", "err", err)
		}
		select {
		case <-d.closing:
			return
		case <-t.C:
		}
	}
}

// checkBottomFilters decides whether lookups of likely absent keys read
// L6's bloom filters: only while they fit in a quarter of the block cache.
func (d *DB) checkBottomFilters() error {
	if d.db.Metrics().Levels[6].TablesCount > maxCountedTables {
		d.bottomFilters.Store(false)
		return nil
	}
	levels, err := d.db.SSTables(pebble.WithProperties())
	if err != nil {
		return err
	}
	var size uint64
	for _, t := range levels[6] {
		if t.Properties != nil {
			size += t.Properties.FilterSize
		}
	}
	d.bottomFilters.Store(size <= uint64(d.opts.CacheSize)/4)
	return nil
}

var withBottomFilters = pebble.IterOptions{UseL6Filters: true}

// hasLikelyAbsent is has for a key that is nearly always absent: it reads
// the bottom level's bloom filters when they are small enough.
func (d *DB) hasLikelyAbsent(key []byte) (bool, error) {
	if !d.bottomFilters.Load() {
		return d.has(key)
	}
	it, err := d.db.NewIter(&withBottomFilters)
	if err != nil {
		return false, fmt.Errorf("store: %w", err)
	}
	found := it.SeekPrefixGE(key) && bytes.Equal(it.Key(), key)
	if err := it.Close(); err != nil {
		return false, fmt.Errorf("store: %w", err)
	}
	return found, nil
}
