package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	sstblock "github.com/cockroachdb/pebble/v2/sstable/block"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Options configures Open. The zero value of every field but Dir has a
// default (see EnsureDefaults).
type Options struct {
	// Dir is the data directory. Ignored when InMemory is set.
	Dir string
	// InMemory keeps everything in memory (tests).
	InMemory bool
	// Logger receives the store's logs; default: discard.
	Logger *slog.Logger
	// HistoryWindow is how long superseded blocks stay readable. Default 72h.
	HistoryWindow time.Duration
	// EventWindow is how long events stay in the log. Default 72h.
	EventWindow time.Duration
	// GCInterval is how often expired history and events are removed.
	// Default 1m; negative disables the background collector (tests call
	// CollectGarbage themselves).
	GCInterval time.Duration
	// MaxGroup bounds how many changes one commit (one fsync) carries.
	// Default 256.
	MaxGroup int
	// QueueLen bounds the changes waiting for the committer; Apply blocks
	// (or gives up with its context) beyond it. Default 1024.
	QueueLen int
	// CacheSize is Pebble's block cache in bytes. Default 16 MiB: the
	// operating system's page cache holds the rest of the hot files, outside
	// the process's RSS, so a full-repository scan does not grow it (P4).
	CacheSize int64
	// AccountCache bounds the accounts (record, head, head commit block)
	// kept in memory for the writers' reads before a change. Default
	// 100,000 (about 40 MB when full); negative disables it.
	AccountCache int
	// OnCommit is called by the committer after each durable group with the
	// events it added, in seq order, before the group's Apply calls return.
	// It must not block: hand the events to a bounded queue.
	OnCommit func([]CommittedEvent)
	// Now is the clock; default time.Now.
	Now func() time.Time

	// fs replaces the in-memory file system of InMemory (tests that inject
	// disk errors).
	fs vfs.FS
}

// EnsureDefaults fills in the defaults of unset fields.
func (o *Options) EnsureDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HistoryWindow == 0 {
		o.HistoryWindow = 72 * time.Hour
	}
	if o.EventWindow == 0 {
		o.EventWindow = 72 * time.Hour
	}
	if o.GCInterval == 0 {
		o.GCInterval = time.Minute
	}
	if o.MaxGroup <= 0 {
		o.MaxGroup = 256
	}
	if o.QueueLen <= 0 {
		o.QueueLen = 1024
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 16 << 20
	}
	if o.AccountCache == 0 {
		o.AccountCache = 100_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// DB is the store on Pebble. It is safe for concurrent use: reads go
// straight to Pebble; every change goes through one committer goroutine,
// which batches changes into group commits and assigns seqs.
type DB struct {
	db   *pebble.DB
	opts Options
	log  *slog.Logger

	reqs    chan *request
	closing chan struct{}
	wg      sync.WaitGroup

	accounts      *accountCache // nil when disabled
	lastSeq       atomic.Int64  // newest durable seq
	nextSeq       int64         // committer only: the newest seq applied
	nextUID       uint64        // committer only
	broken        atomic.Bool   // a group's sync failed (commit.go)
	lastBatchSize int           // committer only: the previous group's batch bytes
	bottomFilters atomic.Bool   // lookups of likely absent keys read L6's filters (filters.go)

	mu     sync.RWMutex // held shared while submitting, exclusively to close
	closed bool
}

// memTableSize is Pebble's memtable size. Every change writes a few KiB
// (the relay's mirrored #commit: 6 KiB of blocks, history copies and its
// frame), so the default 4 MiB memtable flushed every ~700 commits and
// compactions rewrote the young data again and again (15.7 KB of
// compactions per commit on the relay ingest benchmark; 8.9 KB with 8 MiB,
// 5.8 KB with 16 MiB). The memtables' reservation is added to the block
// cache (see Open), and an idle store lends it to blocks: with 16 MiB the
// getRepo of a 1M-record repository grew the RSS by 78 MiB (P4 allows 64),
// with 8 MiB by 58 MiB (BENCHMARKS.md).
const memTableSize = 8 << 20

// blockSize is the data block size of every level (see Open).
const blockSize = 32 << 10

// ErrClosed is returned by calls on a closed DB.
var ErrClosed = errors.New("store: closed")

// Open opens (or creates) the store.
func Open(opts Options) (*DB, error) {
	opts.EnsureDefaults()
	// Pebble reserves the memory of its memtables (the mutable one and up
	// to two waiting for their flush) from the block cache: the cache is
	// sized so that CacheSize stays for blocks. (With 32 MiB memtables in
	// a 16 MiB cache, the block cache held nothing at all and every lookup
	// read its index blocks with pread: 1,552 verified commits/s on the
	// relay ingest benchmark, 5,205 once blocks were cached.)
	po := &pebble.Options{
		Cache:              pebble.NewCache(opts.CacheSize + 3*memTableSize),
		Logger:             pebbleLogger{opts.Logger},
		FormatMajorVersion: pebble.FormatNewest,
	}
	defer po.Cache.Unref()
	// No compression where data is young and rewritten soon; MinLZ on the
	// bottom level, where nearly all of it ends up. Measured on a
	// 100k-record repository (host BenchmarkDiskPerCARByte): 0.45 bytes of
	// tables per CAR byte with MinLZ on the bottom level, the same with it
	// on the two bottom levels and the fastest codec above, 0.65 with no
	// compression at all; zstd gave 0.47 (with 4 KiB blocks) and its
	// decompression (cgo, with its own buffers) made getRepo slower and
	// raised RSS. The relay ingest benchmark, where compactions into the
	// level above the bottom are a large share of the CPU (frames, CIDs and
	// signatures compress little), spent 288–296 CPU-µs per commit instead
	// of 307–320 (3 runs each). Pebble's own "Good" profile is adaptive and
	// kept choosing snappy here.
	po.ApplyCompressionSettings(func() pebble.DBCompressionSettings {
		cs := pebble.UniformDBCompressionSettings(sstblock.NoCompression)
		cs.Levels[len(cs.Levels)-1] = sstblock.MinLZCompression
		return cs
	})
	po.MemTableSize = memTableSize
	// Bloom filters answer most lookups of absent keys (reference counts,
	// which exist only above one; handles; accounts not seen yet) without
	// reading a data block of each level. Data blocks of 32 KiB instead of
	// Pebble's 4 KiB: compactions, which rewrite every byte a commit adds
	// several times, read and write an eighth of the blocks (each a pread,
	// a checksum, a compression call and an index entry), and scans
	// (getRepo) likewise; measured on the relay ingest benchmark (the load
	// generator's stream, 10k accounts), 353–360 CPU-µs per commit instead
	// of 405–531.
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		po.Levels[i].BlockSize = blockSize
	}
	po.Experimental.SpanPolicyFunc = tableSpans // spans.go
	dir := opts.Dir
	if opts.InMemory {
		po.FS = vfs.NewMem()
		if opts.fs != nil {
			po.FS = opts.fs
		}
		dir = ""
	} else if dir == "" {
		return nil, errors.New("store: no data directory")
	}
	pdb, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("store: opening %s: %w", dir, err)
	}
	d := &DB{
		db:   pdb,
		opts: opts,
		log:  opts.Logger,
		reqs: make(chan *request, opts.QueueLen),
		accounts: func() *accountCache {
			if opts.AccountCache < 0 {
				return nil
			}
			return newAccountCache(opts.AccountCache)
		}(),
		closing: make(chan struct{}),
	}
	if err := d.loadMeta(); err != nil {
		pdb.Close()
		return nil, err
	}
	if err := d.ensureCollectionIndex(); err != nil {
		pdb.Close()
		return nil, err
	}
	if err := d.ensureHostCounts(); err != nil {
		pdb.Close()
		return nil, err
	}
	if err := d.ensureHistory(); err != nil {
		pdb.Close()
		return nil, err
	}
	d.wg.Add(1)
	go d.commitLoop()
	if opts.GCInterval > 0 {
		d.wg.Add(1)
		go d.gcLoop()
	}
	d.wg.Add(1)
	go d.filterLoop()
	return d, nil
}

func (d *DB) loadMeta() error {
	seq, err := d.getUint(metaSeq)
	if err != nil {
		return err
	}
	uid, err := d.getUint(metaUID)
	if err != nil {
		return err
	}
	d.lastSeq.Store(int64(seq))
	d.nextSeq = int64(seq)
	d.nextUID = uid
	return nil
}

func (d *DB) getUint(key []byte) (uint64, error) {
	v, closer, err := d.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: reading %q: %w", key, err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("store: %q: corrupt value", key)
	}
	return binary.BigEndian.Uint64(v), nil
}

// Close stops the committer and the collector (changes already queued are
// committed first) and closes Pebble.
func (d *DB) Close() error {
	d.mu.Lock()
	already := d.closed
	d.closed = true
	d.mu.Unlock()
	if already {
		return nil
	}
	close(d.closing)
	d.wg.Wait()
	return d.db.Close()
}

// LastSeq is the newest durable event seq (0 before the first event).
func (d *DB) LastSeq() int64 { return d.lastSeq.Load() }

// request is one Apply call (or an internal job) waiting for the committer.
type request struct {
	change *Change
	copies [][]byte                    // history copies to delete with a deleted repository (history.go)
	job    func(b *pebble.Batch) error // internal maintenance, instead of change
	done   chan result
}

type result struct {
	res Result
	err error
}

// Apply commits one change durably and returns the UID and the seqs of its
// events. ctx bounds only the wait for a place in the queue: once queued, a
// change is committed (or fails) and Apply waits for that outcome.
func (d *DB) Apply(ctx context.Context, c *Change) (Result, error) {
	req := &request{change: c, done: make(chan result, 1)}
	if (c.Delete || c.DropContent) && c.UID != 0 {
		copies, err := d.historyCopies(c.UID)
		if err != nil {
			return Result{}, err
		}
		req.copies = copies
	}
	r, err := d.submit(ctx, req)
	return r.res, err
}

func (d *DB) submit(ctx context.Context, req *request) (result, error) {
	d.mu.RLock()
	if d.closed {
		d.mu.RUnlock()
		return result{}, ErrClosed
	}
	select {
	case d.reqs <- req:
	case <-ctx.Done():
		d.mu.RUnlock()
		return result{}, ctx.Err()
	}
	d.mu.RUnlock()
	r := <-req.done
	return r, r.err
}

// pebbleLogger sends Pebble's logs to slog.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any)  { p.l.Debug(fmt.Sprintf(format, args...)) }
func (p pebbleLogger) Errorf(format string, args ...any) { p.l.Error(fmt.Sprintf(format, args...)) }
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...))
	panic(fmt.Sprintf(format, args...))
}

// Healthy reports whether the store takes writes: it sends an empty change
// through the committer, which commits (and syncs) a batch.
func (d *DB) Healthy(ctx context.Context) error {
	_, err := d.submit(ctx, &request{job: func(*pebble.Batch) error { return nil }, done: make(chan result, 1)})
	return err
}

// Compact flushes and compacts the whole key space, so that DiskUsage
// reflects what the data costs at rest (benchmarks, maintenance).
func (d *DB) Compact(ctx context.Context) error {
	if err := d.db.Flush(); err != nil {
		return fmt.Errorf("store: flush: %w", err)
	}
	if err := d.db.Compact(ctx, []byte{0x00}, []byte{0xff}, true); err != nil {
		return fmt.Errorf("store: compact: %w", err)
	}
	return nil
}

// DiskUsage is the bytes the store takes on disk (sstables, WAL, manifest).
func (d *DB) DiskUsage() uint64 { return d.db.Metrics().DiskSpaceUsage() }

// TableBytes is the size of the live sstables: the data at rest, without the
// write-ahead log (a few recycled files of the memtable's size, whatever the
// data's size).
func (d *DB) TableBytes() uint64 { return d.db.Metrics().Table.Local.LiveSize }

// WriteStats are the bytes the store has written since it opened: to the
// write-ahead log, by flushes of memtables and by compactions (tables and
// blob files). Their sum over the data put is Pebble's write amplification.
type WriteStats struct {
	WAL, Flushed, Compacted uint64
	// Busy says a flush or compaction is running.
	Busy bool
}

// WriteStats reads Pebble's write counters.
func (d *DB) WriteStats() WriteStats {
	m := d.db.Metrics()
	s := WriteStats{
		WAL:  m.WAL.BytesWritten,
		Busy: m.Flush.NumInProgress > 0 || m.Compact.NumInProgress > 0,
	}
	// Summed here: Metrics.Total counts the WAL's bytes as flushed too.
	for i := range m.Levels {
		l := &m.Levels[i]
		s.Flushed += l.TableBytesFlushed + l.BlobBytesFlushed
		s.Compacted += l.TableBytesCompacted + l.BlobBytesCompacted
	}
	return s
}
