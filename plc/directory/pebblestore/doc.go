// Package pebblestore is the directory.Store of `reservoir plc --data`, in
// a Pebble database.
//
// # Key layout
//
//	v                              → "1", the format version
//	o <seq u64 BE>                 → record: DAG-CBOR {c: createdAt unix ms, d: DID, n: nullified, o: signed operation bytes}
//	d <DID> 0x00 <seq u64 BE>      → binary CID of that record's operation (per-DID index)
//	t <createdAt unix ms u64 BE>   → seq u64 BE (time index of the legacy export)
//
// Sequence numbers start at 1. createdAt strictly increases with seq, so
// the time index has one key per record. The CID is recomputed from the
// operation bytes on read; the index keeps it too so that Append can find
// the records to nullify without decoding them all.
//
// # Writes and reads
//
// Append runs under one mutex: it reads the DID's index to check LogLen,
// takes the next seq, and commits a single batch holding the new record,
// its two index entries and the rewritten records it nullifies, synced to
// disk unless Options.NoSync. Log and Export read from a snapshot, so they
// never see half of an Append and never block one.
package pebblestore
