package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// metaMirrorMode holds how the relay last stored its mirrors: "archive"
// (whole repositories) or "lean" (their state only). Empty in a store no
// relay has run on, and in stores older than the key.
var metaMirrorMode = []byte{tMeta, 'm', 'i', 'r', 'r', 'o', 'r'}

// Mirror modes (MirrorMode, SetMirrorMode).
const (
	MirrorArchive = "archive"
	MirrorLean    = "lean"
)

// MirrorMode returns the mode SetMirrorMode last recorded ("" if none).
func (d *DB) MirrorMode() (string, error) {
	v, err := d.get(metaMirrorMode)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	return string(v), err
}

// SetMirrorMode records how the relay stores its mirrors from now on.
func (d *DB) SetMirrorMode(mode string) error {
	if err := d.db.Set(metaMirrorMode, []byte(mode), pebble.Sync); err != nil {
		return fmt.Errorf("store: recording the mirror mode: %w", err)
	}
	return nil
}

// NextUIDWithBlocks returns the smallest UID above after that has live
// blocks stored (ok false when there is none). Walking it skips the
// repositories without blocks: a lean relay's mirrors.
func (d *DB) NextUIDWithBlocks(after uint64) (uid uint64, ok bool, err error) {
	if after == ^uint64(0) {
		return 0, false, nil
	}
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: uidKey(tBlock, after+1), UpperBound: []byte{tBlock + 1}})
	if err != nil {
		return 0, false, fmt.Errorf("store: %w", err)
	}
	if it.First() {
		if k := it.Key(); len(k) >= 9 {
			uid, ok = binary.BigEndian.Uint64(k[1:9]), true
		}
	}
	return uid, ok, closeIter(it)
}
