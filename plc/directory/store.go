package directory

import (
	"context"
	"errors"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/plc"
)

// Record is an accepted operation as the directory keeps it: its audit
// log entry and its sequence number, the export order.
type Record struct {
	Seq int64 // 1, 2, 3, ... across all DIDs, in acceptance order
	plc.LogEntry
}

// Append is one accepted operation to store.
type Append struct {
	DID     syntax.DID
	Op      plc.Op
	Nullify []cid.Cid // operations of DID the new one forks away
	// LogLen is how many records of DID the validation saw. If the log has
	// changed since, Append fails with ErrConflict and stores nothing.
	LogLen int
	Now    time.Time
}

// Cursor says where an export page starts: after a sequence number, or
// (ByTime, the legacy form) after a createdAt time.
type Cursor struct {
	Seq    int64
	Time   time.Time
	ByTime bool
}

// Errors of stores.
var (
	ErrConflict = errors.New("directory: the log changed since it was read") // Append raced another Append
	ErrClosed   = errors.New("directory: store closed")
)

// LogReader reads one DID's log.
type LogReader interface {
	// Log returns every record of did in acceptance order, nullified ones
	// included; none (and no error) for an unknown DID. The caller owns the
	// result.
	Log(ctx context.Context, did syntax.DID) ([]Record, error)
}

// Appender stores accepted operations.
type Appender interface {
	// Append stores a.Op as the next record of a.DID and marks a.Nullify
	// nullified, all in one atomic write, and returns the new record. The
	// store computes the CID itself, assigns the next sequence number, and
	// sets CreatedAt to a.Now truncated to milliseconds, or one millisecond
	// after the previous record's if that is not later: createdAt strictly
	// increases with seq, so paging by time never skips a record. Every
	// CID in Nullify must be a record of a.DID.
	Append(ctx context.Context, a Append) (Record, error)
}

// Exporter pages through every record of every DID.
type Exporter interface {
	// Export returns up to limit records after the cursor, in sequence
	// order: with Seq > after.Seq, or CreatedAt > after.Time if ByTime.
	Export(ctx context.Context, after Cursor, limit int) ([]Record, error)
}

// Store is what the directory keeps its logs in. Implementations must be
// safe for concurrent use and pass storetest.Run.
type Store interface {
	LogReader
	Appender
	Exporter
	Close() error
}

// NextCreatedAt is the createdAt rule of Appender.Append: now truncated to
// milliseconds, but at least one millisecond after last.
func NextCreatedAt(last, now time.Time) time.Time {
	t := now.UTC().Truncate(time.Millisecond)
	if !last.IsZero() && !t.After(last) {
		t = last.Add(time.Millisecond)
	}
	return t
}
