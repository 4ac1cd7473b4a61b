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
// seq that is not on disk. Writers of different repositories wait on each
// other only here.
//
// # Key layout
//
// The first byte of a key names its table. uid is the 8-byte big-endian
// number the store assigns to an account when it is created (UIDs follow
// creation order); cid is a binary CID; rev a 13-character TID.
//
//	00 "seq" | "uid"          → last seq, last uid (8 bytes each)
//	01 did                    → account record (DAG-CBOR map)
//	02 uid                    → did
//	03 uid                    → head: len commit-cid, len data-cid, rev
//	04 uid cid                → rev, block bytes            live blocks
//	05 uid rev cid            → ∅                           live blocks by rev
//	06 uid cid                → died (8 bytes ns), bytes    superseded blocks
//	07 died uid cid           → ∅                           superseded, by time
//	08 uid collection/rkey    → record cid                  record index
//	09 uid cid                → uvarint                     paths per record cid
//	0a uid collection         → uvarint                     records per collection
//	0b collection 00 uid      → ∅                           collection index
//	0c seq                    → time (8), uid (8), frame    event log
//	0d uid seq                → ∅                           events per account
//	0e uid                    → signing secrets (hosted accounts)
//	0f uid cid                → blob metadata
//	10 handle                 → did                         handle index
//
// # Live blocks and history
//
// Table 04 holds exactly the blocks reachable from a repository's head (its
// commit, MST nodes and records), so getRepo is one range scan. A change
// moves the blocks it makes unreachable (the previous commit, replaced MST
// nodes, records no path points at any more: table 09 counts the paths) to
// table 06 with the time they died; they stay readable there (Block, for
// reads at a past commit) until the history window passes, when the
// collector deletes them (table 07 orders them by time). A block stored
// again later is live again; its stale history copy simply expires.
// Every block a change adds is stored with the change's rev and indexed in
// table 05, so BlocksSince(rev) is exact: the blocks of later commits. An
// index entry left behind when a live block is stored again under a later
// rev is skipped (its rev no longer matches).
//
// # Events
//
// Table 0c is the firehose log: the frame bytes exactly as they are sent,
// encoded once. Table 0d finds an account's events, for the purge on
// account deletion. Events older than the event window are collected.
//
// # Concurrency
//
// A DB is safe for concurrent use. Reads see committed data only. Slices
// passed to callbacks are valid during the call.
package store
