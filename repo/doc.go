// Package repo is the atproto repository layer above the MST: signed v3
// commits, revs, record operations, the blocks a commit adds and sends,
// getRecord proofs, and sync-1.1 verification of firehose messages.
//
// # Commits
//
// A commit is the DAG-CBOR map {did, rev, sig, data, prev, version}; prev is
// always present (null in practice) because omitting it changes the signed
// bytes. The signature is over the canonical encoding without sig, SHA-256
// hashed, ECDSA K-256 or P-256, 64-byte r‖s with low S (anything else is
// refused). Commit.VerifySignature goes through package sigverify, which
// makes atcrypto's exact decisions but checks K-256 with libsecp256k1 in cgo
// builds, about twice as fast. DecodeCommit is strict: canonical bytes and exactly those
// keys. Revs come from a RevClock, which never goes backwards and always
// passes the repository's previous rev.
//
// # Producing a commit
//
// BuildCommit applies writes to an MST, signs the next commit and returns
// both what the store adds (the commit, new nodes, new records) and the
// #commit CAR slice, which also carries the covering proof of every op key
// so that any consumer can invert the ops back to prevData.
//
// # Verifying a firehose commit (sync 1.1)
//
// VerifyCommitMessage runs, in order: size and op limits; CAR parsing with
// every block checked against its CID; the commit's structure, repo and rev;
// the rev's order and clock skew; chain continuity (since and prevData
// against the stored state); the signature; and the MST inversion — load the
// partial tree from the slice, check each create and update is present,
// undo every op (deletions first, then by path) and require the root to be
// prevData. A failure is a *VerifyError whose Check says which rule broke
// (ErrSignature, ErrRevOrder, ErrFutureRev, ErrInversion,
// ErrPrevDataMismatch, ErrChainBreak, ErrMissingBlock, ErrCIDMismatch,
// ErrTooManyOps, ErrTooLarge, ...). Identity resolution and the retry after a
// key refresh are the caller's: this package takes the key as input.
//
// # Concurrency
//
// Functions here keep no state; a RevClock is safe for concurrent use; an
// mst.Tree passed to BuildCommit belongs to the caller, who serializes
// commits of one repository.
package repo
