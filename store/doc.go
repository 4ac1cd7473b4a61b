// Package store keeps everything reservoir holds — accounts, repository
// blocks, heads, the record and collection indexes, the event log and
// signing secrets — in one embedded Pebble database, and applies every
// change to a repository as one atomic batch.
//
// # Writing: one change, one batch, one committer
//
// A Change is prepared by the only writer of its repository (the host under
// the repository's lock, or the relay's per-repository queue), which reads
// what it needs first (the head, record counts, blocks that die) and puts
// absolute values in the change. Apply hands it to the committer goroutine,
// which gathers the changes waiting (up to Options.MaxGroup), writes them
// into one Pebble batch, assigns each event its seq in that order, encodes
// each event's frame once (FrameEncoder) and commits with one fsync. Every
// change in the group lands or none does; a crash leaves the store before
// or after it. Apply returns only once the change is durable, and
// Options.OnCommit then hears of its events, so no subscriber ever sees a
// seq that is not on disk. The fsync of a group overlaps the building of
// the next: the committer applies a group to Pebble and goes on, and a
// second goroutine waits for the sync and answers the group, in commit
// order (commit.go); a failed sync fails every later group, and the store
// then refuses changes. Writers of different repositories wait on each
// other only here.
//
// # Key layout
//
// The first byte of a key names its table. uid is the 8-byte big-endian
// number the store assigns to an account when it is created (UIDs follow
// creation order); cid is a binary CID; rev a 13-character TID.
//
//	00 "seq" | "uid"          → last seq, last uid (8 bytes each)
//	00 "collidx"              → collection index version (8 bytes)
//	00 "hostid"               → last upstream host id (8 bytes)
//	00 "hostcnt"              → table 15's version (8 bytes; absent: counted at Open)
//	00 "history"              → layout version of tables 06 and 07 (8 bytes)
//	00 "mirror"               → "archive" | "lean": how the relay stores mirrors (mirrormode.go)
//	01 did                    → account record (DAG-CBOR map)
//	02 uid                    → did
//	03 uid                    → head: len commit-cid, len data-cid, rev
//	04 uid cid                → rev, block bytes            live blocks
//	05                        (unused)
//	06 uid cid died           → ∅                           superseded blocks: index
//	07 died uid cid           → bytes                       superseded blocks, by time
//	08 uid collection/rkey    → ∅                           record index
//	09 uid cid                → uvarint                     paths per record cid, when > 1
//	0a uid collection         → uvarint                     records per collection
//	0b collection 00 uid      → ∅                           collection index
//	0c seq                    → time (8), uid (8), frame    event log
//	0d uid seq                → ∅                           events per account
//	0e uid                    → signing secrets (hosted accounts)
//	0f uid cid                → blob metadata
//	10 handle                 → did                         handle index
//	11 collection             → uvarint                     repos per collection
//	12 uid                    → status                      account statuses
//	13 id                     → host record (DAG-CBOR map)  upstream hosts
//	14 hostname               → id                          host names
//	15 hostname               → uvarint                     accounts per host (not deleted)
//
// # Live blocks and history
//
// Table 04 holds exactly the blocks reachable from a repository's head (its
// commit, MST nodes and records), so getRepo is one range scan. A change
// moves the blocks it makes unreachable (the previous commit, replaced MST
// nodes, records no path points at any more) to the history: a copy in
// table 07, keyed by the time it died, and an index entry in table 06
// (history.go). They stay readable there (Block, for reads at a past
// commit) until the history window passes, when the collector deletes the
// index entries and the copies (one range deletion). A block stored again
// later is live again; its stale history copy simply expires.
// Every block a change adds is stored with the change's rev, so a since
// read (RepoAtHead) is exact: the live blocks of later commits, found by one
// scan of table 04 (a record stored again at a second path keeps its first
// rev: the writer leaves it out of the change).
//
// # What is kept only once (disk per CAR byte)
//
// Every CID costs 36 incompressible bytes, so no table repeats them beyond
// the block keys themselves: the record index (08) holds paths only, a
// record's CID is read from the MST; there is no rev index (a since scan
// reads table 04); a reference count (09) is stored only when more than
// one path shares a record, one being implied by the block being live.
//
// # The collection index
//
// listReposByCollection reads table 0b: one entry per repository and
// collection it has records in, ordered by collection, then UID, so a page
// is one range scan and a UID is a stable cursor (a repository keeps its UID
// for ever; one present during a whole walk is met exactly once, one added
// or removed meanwhile at most once). The writer of a change gives each
// collection's new record count (table 0a, an absolute value it read and
// adjusted under the repository's lock); the committer turns counts that
// reach zero or leave it into index entries removed or added, and keeps
// table 11, the number of repositories per collection (the admin view), in
// the same batch. It reads whether each entry exists (from the store, or
// from an earlier change of the same group), so the counters stay exact
// whoever writes; a writer that read the old count says so
// (CollectionCount.Old), which spares the committer that read when the
// count stays above zero, the common case on its serial path. A change with
// Delete removes every entry of the repository, listed in it or not.
//
// Table 12 holds the status of every account that is not plainly active,
// written with every account record, so a page learns which repositories to
// hide (takendown, suspended, deactivated) with one forward seek per entry
// instead of decoding account records. Hidden entries stay in the index,
// and count in table 11, while the status lasts.
//
// The marker 00 "collidx" holds the version of tables 0a, 0b, 11 and 12.
// Open rebuilds them when it is absent or older (a store written before
// them): it clears them, walks the record index (table 08, ordered by UID
// then path, so each repository's collection is one run of keys) and the
// account records, in batches of a few MiB, before the committer starts,
// and sets the marker last, so a crash part way starts the rebuild over.
//
// # Events
//
// Table 0c is the firehose log: the frame bytes exactly as they are sent,
// encoded once. Table 0d finds an account's events, for the purge on
// account deletion. Events older than the event window are collected (the
// frames with one range deletion). The log's keys and the history's copies
// only grow, so flushes write them in tables of their own (spans.go).
//
// # Upstream hosts
//
// Tables 13 and 14 hold the hosts the relay crawls, by the id the store
// assigns when a host is first put (so listHosts pages in first-seen
// order) and by name. Host writes are committer jobs, so they never race a
// change; they hold absolute values that the relay's host manager, their
// only writer, keeps in memory (its status, its durable cursor, its
// limits). Table 15 counts the accounts of each host (account records
// with that Host, not deleted), exact per change: the committer reads the
// record a change replaces when the change writes one (creations, moves,
// status changes, deletions; never a plain commit, the hot path) and moves
// the counts of the hosts it touched once per group, in the same batch
// (hostcount.go). The marker 00 "hostcnt" says the table is built; Open
// counts it from the account records (CountAccountsByHost) when it is
// absent, before the committer starts.
//
// # Pebble settings
//
// Open tunes Pebble for many small writes and point reads, each choice
// measured (db.go, BENCHMARKS.md): 32 KiB data blocks, no compression above
// the bottom level and MinLZ on it, 8 MiB memtables with the block cache
// sized above their reservation, and bloom filters on every level. Pebble's
// Get never reads the bottom level's filters; lookups of keys that are
// nearly always absent (a created record's live block) do, while those
// filters fit in a quarter of the cache (filters.go). A process that links
// the store bounds glibc's malloc arenas, since Pebble's block cache lives
// in C memory (malloc_cgo.go).
//
// # Concurrency
//
// A DB is safe for concurrent use. Reads see committed data only. Slices
// passed to callbacks are valid during the call.
//
// # The account cache
//
// Account, LiveBlock (for a head's commit block) and CollectionCount answer
// from a bounded in-memory cache of recent accounts when they can
// (acctcache.go): the committer, the only writer of account records, heads
// and collection counts, updates it as soon as it has applied a group (when
// reads of the store see the group too, before its fsync completes), and a
// reader that raced a commit does not insert what it read. Writers read the
// account before every change, and the counts of the collections they
// write, so this spares the relay's ingest three or four point lookups per
// upstream commit.
package store
