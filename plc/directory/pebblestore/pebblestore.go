package pebblestore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/plc"
	"github.com/reservoir-atproto/reservoir/plc/directory"
)

// Key prefixes; see doc.go for the layout.
const (
	prefixOp      = 'o' // o <seq u64> → record
	prefixDID     = 'd' // d <did> 0x00 <seq u64> → binary CID
	prefixTime    = 't' // t <createdAt unix ms u64> → seq u64
	formatKey     = "v" // format version
	formatVersion = "1"
)

// Options configure Open.
type Options struct {
	Logger *slog.Logger // nil: discard; Pebble's own messages go here at debug level
	FS     vfs.FS       // nil: the OS file system; vfs.NewMem() for tests
	NoSync bool         // do not fsync each accepted operation (tests only)
}

// Store is a directory.Store in a Pebble database.
type Store struct {
	db    *pebble.DB
	write *pebble.WriteOptions
	// mu serializes Append: the log length check, the sequence number and
	// the batch commit must be one step. Readers never take it.
	mu struct {
		sync.Mutex
		lastSeq     int64
		lastCreated time.Time
	}
}

var _ directory.Store = (*Store)(nil)

// Open opens (creating if needed) the store in dir.
func Open(dir string, o Options) (*Store, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	popts := &pebble.Options{Logger: pebbleLogger{o.Logger}, FS: o.FS}
	db, err := pebble.Open(dir, popts)
	if err != nil {
		return nil, fmt.Errorf("pebblestore: open %s: %w", dir, err)
	}
	s := &Store{db: db, write: pebble.Sync}
	if o.NoSync {
		s.write = pebble.NoSync
	}
	if err := s.load(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// load checks the format version (writing it into a new store) and reads
// the last sequence number and createdAt.
func (s *Store) load() error {
	v, closer, err := s.db.Get([]byte(formatKey))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if err := s.db.Set([]byte(formatKey), []byte(formatVersion), pebble.Sync); err != nil {
			return fmt.Errorf("pebblestore: write format version: %w", err)
		}
	case err != nil:
		return fmt.Errorf("pebblestore: read format version: %w", err)
	default:
		ok := string(v) == formatVersion
		closer.Close()
		if !ok {
			return fmt.Errorf("pebblestore: unknown format version %q", v)
		}
	}
	it, err := s.db.NewIter(prefixBounds([]byte{prefixOp}))
	if err != nil {
		return fmt.Errorf("pebblestore: %w", err)
	}
	defer it.Close()
	if it.Last() {
		seq := int64(binary.BigEndian.Uint64(it.Key()[1:]))
		rec, err := decodeRecord(seq, it.Value())
		if err != nil {
			return err
		}
		s.mu.lastSeq, s.mu.lastCreated = seq, rec.CreatedAt
	}
	return it.Error()
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) Log(ctx context.Context, did syntax.DID) ([]directory.Record, error) {
	snap := s.db.NewSnapshot()
	defer snap.Close()
	it, err := snap.NewIter(prefixBounds(didPrefix(did)))
	if err != nil {
		return nil, fmt.Errorf("pebblestore: %w", err)
	}
	defer it.Close()
	var out []directory.Record
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		seq := int64(binary.BigEndian.Uint64(k[len(k)-8:]))
		rec, err := getRecord(snap, seq)
		if err != nil {
			return nil, err
		}
		if rec.DID != did {
			return nil, fmt.Errorf("pebblestore: index of %s points at record %d of %s", did, seq, rec.DID)
		}
		out = append(out, rec)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("pebblestore: log of %s: %w", did, err)
	}
	return out, nil
}

func (s *Store) Append(ctx context.Context, a directory.Append) (directory.Record, error) {
	opBytes := a.Op.SignedCBOR()
	c := dagcbor.SumCBOR(opBytes)
	s.mu.Lock()
	defer s.mu.Unlock()

	index, err := s.didIndex(a.DID)
	if err != nil {
		return directory.Record{}, err
	}
	if len(index) != a.LogLen {
		return directory.Record{}, fmt.Errorf("%w: %s has %d records, the validation saw %d", directory.ErrConflict, a.DID, len(index), a.LogLen)
	}
	seq := s.mu.lastSeq + 1
	created := directory.NextCreatedAt(s.mu.lastCreated, a.Now)
	b := s.db.NewBatch()
	defer b.Close()
	for _, n := range a.Nullify {
		i := indexOf(index, n)
		if i < 0 {
			return directory.Record{}, fmt.Errorf("pebblestore: cannot nullify %s: not a record of %s", n, a.DID)
		}
		rec, err := getRecord(s.db, index[i].seq)
		if err != nil {
			return directory.Record{}, err
		}
		if err := b.Set(opKey(index[i].seq), encodeRecord(rec.DID, rec.Op.SignedCBOR(), true, rec.CreatedAt), nil); err != nil {
			return directory.Record{}, err
		}
	}
	if err := b.Set(opKey(seq), encodeRecord(a.DID, opBytes, false, created), nil); err != nil {
		return directory.Record{}, err
	}
	if err := b.Set(didKey(a.DID, seq), c.Bytes(), nil); err != nil {
		return directory.Record{}, err
	}
	if err := b.Set(timeKey(created), u64(seq), nil); err != nil {
		return directory.Record{}, err
	}
	if err := b.Commit(s.write); err != nil {
		return directory.Record{}, fmt.Errorf("pebblestore: append to %s: %w", a.DID, err)
	}
	s.mu.lastSeq, s.mu.lastCreated = seq, created
	return directory.Record{Seq: seq, LogEntry: plc.LogEntry{DID: a.DID, Op: a.Op, CID: c, CreatedAt: created}}, nil
}

type indexEntry struct {
	seq int64
	cid []byte
}

func indexOf(index []indexEntry, c cid.Cid) int {
	for i, e := range index {
		if bytes.Equal(e.cid, c.Bytes()) {
			return i
		}
	}
	return -1
}

// didIndex reads the per-DID index: the DID's sequence numbers and CIDs.
func (s *Store) didIndex(did syntax.DID) ([]indexEntry, error) {
	it, err := s.db.NewIter(prefixBounds(didPrefix(did)))
	if err != nil {
		return nil, fmt.Errorf("pebblestore: %w", err)
	}
	defer it.Close()
	var out []indexEntry
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		out = append(out, indexEntry{int64(binary.BigEndian.Uint64(k[len(k)-8:])), bytes.Clone(it.Value())})
	}
	return out, it.Error()
}

func (s *Store) Export(ctx context.Context, after directory.Cursor, limit int) ([]directory.Record, error) {
	if limit <= 0 {
		return nil, nil
	}
	snap := s.db.NewSnapshot()
	defer snap.Close()
	start := max(after.Seq, 0) + 1
	if after.ByTime {
		var err error
		if start, err = firstSeqAfter(snap, after.Time); err != nil || start == 0 {
			return nil, err
		}
	}
	it, err := snap.NewIter(prefixBounds([]byte{prefixOp}))
	if err != nil {
		return nil, fmt.Errorf("pebblestore: %w", err)
	}
	defer it.Close()
	var out []directory.Record
	for it.SeekGE(opKey(start)); it.Valid() && len(out) < limit; it.Next() {
		rec, err := decodeRecord(int64(binary.BigEndian.Uint64(it.Key()[1:])), it.Value())
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, it.Error()
}

// firstSeqAfter returns the sequence number of the first record created
// after t, or 0 if there is none.
func firstSeqAfter(r pebble.Reader, t time.Time) (int64, error) {
	it, err := r.NewIter(prefixBounds([]byte{prefixTime}))
	if err != nil {
		return 0, fmt.Errorf("pebblestore: %w", err)
	}
	defer it.Close()
	seek := []byte{prefixTime}
	if ms := t.UnixMilli(); ms > 0 {
		seek = timeKeyMillis(ms)
	}
	for it.SeekGE(seek); it.Valid(); it.Next() {
		k := it.Key()
		created := time.UnixMilli(int64(binary.BigEndian.Uint64(k[1:])))
		if created.After(t) {
			return int64(binary.BigEndian.Uint64(it.Value())), nil
		}
	}
	return 0, it.Error()
}

func getRecord(r pebble.Reader, seq int64) (directory.Record, error) {
	v, closer, err := r.Get(opKey(seq))
	if err != nil {
		return directory.Record{}, fmt.Errorf("pebblestore: record %d: %w", seq, err)
	}
	defer closer.Close()
	return decodeRecord(seq, v)
}

// Records are DAG-CBOR maps {"c": createdAt unix ms, "d": DID,
// "n": nullified, "o": the signed operation's DAG-CBOR bytes}. The CID is
// computed from "o" when read.
func encodeRecord(did syntax.DID, op []byte, nullified bool, created time.Time) []byte {
	b := dagcbor.AppendMapHeader(make([]byte, 0, len(op)+64), 4)
	b = dagcbor.AppendText(b, "c")
	b = dagcbor.AppendInt(b, created.UnixMilli())
	b = dagcbor.AppendText(b, "d")
	b = dagcbor.AppendText(b, did.String())
	b = dagcbor.AppendText(b, "n")
	b = dagcbor.AppendBool(b, nullified)
	b = dagcbor.AppendText(b, "o")
	return dagcbor.AppendBytes(b, op)
}

func decodeRecord(seq int64, v []byte) (directory.Record, error) {
	fail := func(err error) (directory.Record, error) {
		return directory.Record{}, fmt.Errorf("pebblestore: record %d: %w", seq, err)
	}
	d := dagcbor.NewDecoder(v)
	n, err := d.ReadMapHeader()
	if err != nil {
		return fail(err)
	}
	if n != 4 {
		return fail(fmt.Errorf("%d fields, want 4", n))
	}
	var (
		rec  = directory.Record{Seq: seq}
		prev []byte
		op   []byte
	)
	for _, want := range []string{"c", "d", "n", "o"} {
		k, err := d.ReadMapKey(prev)
		if err != nil {
			return fail(err)
		}
		if string(k) != want {
			return fail(fmt.Errorf("field %q, want %q", k, want))
		}
		prev = k
		switch want {
		case "c":
			ms, err := d.ReadInt()
			if err != nil {
				return fail(err)
			}
			rec.CreatedAt = time.UnixMilli(ms).UTC()
		case "d":
			s, err := d.ReadText()
			if err != nil {
				return fail(err)
			}
			rec.DID = syntax.DID(s)
		case "n":
			if rec.Nullified, err = d.ReadBool(); err != nil {
				return fail(err)
			}
		case "o":
			if op, err = d.ReadBytes(); err != nil {
				return fail(err)
			}
		}
	}
	if err := d.Done(); err != nil {
		return fail(err)
	}
	if rec.Op, err = plc.DecodeOp(op); err != nil {
		return fail(err)
	}
	rec.CID = dagcbor.SumCBOR(op)
	return rec, nil
}

func u64(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }

func opKey(seq int64) []byte { return binary.BigEndian.AppendUint64([]byte{prefixOp}, uint64(seq)) }

func didPrefix(did syntax.DID) []byte {
	return append(append([]byte{prefixDID}, did...), 0)
}

func didKey(did syntax.DID, seq int64) []byte {
	return binary.BigEndian.AppendUint64(didPrefix(did), uint64(seq))
}

func timeKey(t time.Time) []byte { return timeKeyMillis(t.UnixMilli()) }

func timeKeyMillis(ms int64) []byte {
	return binary.BigEndian.AppendUint64([]byte{prefixTime}, uint64(ms))
}

// prefixBounds iterates exactly the keys starting with prefix.
func prefixBounds(prefix []byte) *pebble.IterOptions {
	upper := bytes.Clone(prefix)
	for i := len(upper) - 1; i >= 0; i-- {
		if upper[i] < 0xff {
			upper[i]++
			return &pebble.IterOptions{LowerBound: prefix, UpperBound: upper[:i+1]}
		}
	}
	return &pebble.IterOptions{LowerBound: prefix}
}

// pebbleLogger sends Pebble's messages to slog at debug level (errors at
// error level). Fatalf is Pebble's own invariant failure: it panics.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug("pebble: " + fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("pebble: " + fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error("pebble: fatal: " + msg)
	panic("pebble: " + msg)
}
