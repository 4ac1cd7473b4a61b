// Package directory is the did:plc directory server behind `reservoir
// plc`: an http.Handler with the routes of the reference directory, over a
// small Store.
//
// # Routes
//
//	GET  /_health             {"version": ...}
//	POST /{did}               submit a signed operation (JSON); 200 "OK"
//	GET  /{did}               DID document (application/did+ld+json)
//	GET  /{did}/data          current state {did, verificationMethods, rotationKeys, alsoKnownAs, services}
//	GET  /{did}/log           active operations, oldest first
//	GET  /{did}/log/audit     every operation: [{did, operation, cid, nullified, createdAt}]
//	GET  /{did}/log/last      the last active operation
//	GET  /export?after=&count= every operation of every DID, JSON lines
//
// Errors are {"message": ...}, as the reference writes them: 400 for an
// operation the rules refuse (plc.Validate's message), 404 "DID not
// registered: <did>" for an unknown DID and "DID not available: <did>"
// for the document or data of a tombstoned one, 409 when two writers race
// on one DID, 413 for a body over MaxBodyBytes (100 KiB), 500 "Internal
// Server Error" for anything else (the cause is logged, never shown).
// Handlers return errors; one adapter writes them and recovers panics.
//
// /export pages through all operations in acceptance order, at most
// MaxExportCount (1000) lines per page, separated by "\n". With an integer
// after=<seq>, lines are {seq, type: "indexed_op", operation, did, cid,
// createdAt} and the next page starts after the last seq. With after=<time>
// or no after (the legacy form), lines are audit log entries and the next
// page starts after the last createdAt; since the store makes createdAt
// strictly increasing, that never skips an operation, which the
// reference's millisecond timestamps do not guarantee.
//
// # Writes
//
// POST validates against the DID's log and appends, under a lock per DID,
// so concurrent submissions for one DID are decided one after the other.
// Append also checks that the log still has the length the validation saw
// (ErrConflict, 409), so even two processes on one store cannot both fork
// a log. Each accepted operation is one atomic store write: the record,
// its indexes and the nullified flags of the operations it forks away.
//
// # Stores
//
// Store is LogReader + Appender + Exporter + Close. MemStore keeps
// everything in memory; pebblestore keeps it in Pebble. Both run the
// storetest conformance suite. The store assigns sequence numbers and
// createdAt (now, or 1 ms after the previous record) and computes CIDs
// itself.
//
// # Concurrency
//
// A Server is safe for concurrent use; Options must not change after New.
// Stores are safe for concurrent use.
package directory
