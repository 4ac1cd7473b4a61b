package directory

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/plc"
)

// MemStore is a Store in memory, for tests and throwaway directories.
type MemStore struct {
	mu struct {
		sync.Mutex
		records []memRecord            // index seq-1
		byDID   map[syntax.DID][]int64 // seqs of each DID
		closed  bool
	}
}

// memRecord keeps the operation encoded, as a disk store would, so a
// caller can never modify what is stored.
type memRecord struct {
	did       syntax.DID
	op        []byte
	cid       cid.Cid
	nullified bool
	createdAt time.Time
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	s := &MemStore{}
	s.mu.byDID = make(map[syntax.DID][]int64)
	return s
}

func (s *MemStore) Log(ctx context.Context, did syntax.DID) ([]Record, error) {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	seqs := s.mu.byDID[did]
	recs := make([]memRecord, len(seqs))
	for i, seq := range seqs {
		recs[i] = s.mu.records[seq-1]
	}
	s.mu.Unlock()
	out := make([]Record, len(recs))
	for i, r := range recs {
		rec, err := r.decode(seqs[i])
		if err != nil {
			return nil, err
		}
		out[i] = rec
	}
	return out, nil
}

func (s *MemStore) Append(ctx context.Context, a Append) (Record, error) {
	op := a.Op.SignedCBOR()
	r := memRecord{did: a.DID, op: op, cid: a.Op.CID()}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return Record{}, ErrClosed
	}
	seqs := s.mu.byDID[a.DID]
	if len(seqs) != a.LogLen {
		return Record{}, fmt.Errorf("%w: %s has %d records, the validation saw %d", ErrConflict, a.DID, len(seqs), a.LogLen)
	}
	var nullify []int64
	for _, c := range a.Nullify {
		i := slices.IndexFunc(seqs, func(seq int64) bool { return s.mu.records[seq-1].cid.Equals(c) })
		if i < 0 {
			return Record{}, fmt.Errorf("directory: cannot nullify %s: not a record of %s", c, a.DID)
		}
		nullify = append(nullify, seqs[i])
	}
	var last time.Time
	if n := len(s.mu.records); n > 0 {
		last = s.mu.records[n-1].createdAt
	}
	r.createdAt = NextCreatedAt(last, a.Now)
	for _, seq := range nullify {
		s.mu.records[seq-1].nullified = true
	}
	s.mu.records = append(s.mu.records, r)
	seq := int64(len(s.mu.records))
	s.mu.byDID[a.DID] = append(seqs, seq)
	return Record{Seq: seq, LogEntry: plc.LogEntry{DID: a.DID, Op: a.Op, CID: r.cid, CreatedAt: r.createdAt}}, nil
}

func (s *MemStore) Export(ctx context.Context, after Cursor, limit int) ([]Record, error) {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	start := int(max(after.Seq, 0))
	if after.ByTime {
		start = sort.Search(len(s.mu.records), func(i int) bool { return s.mu.records[i].createdAt.After(after.Time) })
	}
	start = min(start, len(s.mu.records))
	end := min(start+max(limit, 0), len(s.mu.records))
	recs := append([]memRecord(nil), s.mu.records[start:end]...)
	s.mu.Unlock()
	out := make([]Record, len(recs))
	for i, r := range recs {
		rec, err := r.decode(int64(start + i + 1))
		if err != nil {
			return nil, err
		}
		out[i] = rec
	}
	return out, nil
}

// Close makes every later call fail.
func (s *MemStore) Close() error {
	s.mu.Lock()
	s.mu.closed = true
	s.mu.Unlock()
	return nil
}

func (r memRecord) decode(seq int64) (Record, error) {
	op, err := plc.DecodeOp(r.op)
	if err != nil {
		return Record{}, fmt.Errorf("directory: record %d: %w", seq, err)
	}
	return Record{Seq: seq, LogEntry: plc.LogEntry{DID: r.did, Op: op, CID: r.cid, Nullified: r.nullified, CreatedAt: r.createdAt}}, nil
}
