// Package interop holds the checks of reservoir against the reference
// implementations of the AT Protocol (issue 9). It has no code of its own:
// its tests build the real binary (`go build ./cmd/reservoir`), run
// `reservoir plc` and `reservoir serve` as child processes on 127.0.0.1,
// and drive the reference tools against them:
//
//   - the TypeScript libraries @atproto/repo, @atproto/sync,
//     @atproto/identity and @atproto/crypto (Node 20, versions pinned in
//     interop/atproto/package.json and its committed package-lock.json,
//     installed by scripts/interop-npm.sh interop/atproto), through the
//     harness interop/atproto/atproto-interop.js;
//   - Bluesky's Go CLI goat, pinned and installed into bin/ by
//     scripts/interop-goat.sh.
//
// The checks, one test each:
//
//  1. TestReferenceReposServedByUs: repositories built and signed by
//     @atproto/repo (empty; a few records; a few thousand; every kind of
//     data-model value, with blobs) are imported into accounts that adopt
//     their DID and key; getRepo must serve exactly the reference's blocks
//     and root, and sync.getRecord proofs (of existence and of absence)
//     must pass the reference's verifyProofs with the key the directory
//     gives.
//  2. TestOurReposCheckedByReference: records written through reservoir's
//     API (createRecord, putRecord, deleteRecord, applyWrites, blobs) are
//     exported with getRepo; the reference verifies the CAR (hashes,
//     signature against the DID document's key, full MST walk), finds every
//     record with the CID it computes from the JSON that was written, and
//     rebuilds the same MST root.
//  3. TestOurFirehoseConsumedByReference: @atproto/sync's Firehose, with
//     commit validation on and identities resolved through `reservoir plc`,
//     reads subscribeRepos live and from cursor 0 while several accounts
//     write; it must report no invalid event, see seqs in order, and see
//     every write.
//  4. (did:plc against @did-plc/lib: package plc, plc/interop_test.go.)
//  5. TestGoat: `goat repo inspect|ls|mst` on CARs exported from reservoir,
//     and `goat firehose --verify-basic --verify-mst` while writes happen:
//     no warning or error about our events.
//  6. (A reference PDS as the upstream of a reservoir relay waits for the
//     relay.)
//
// The tests fail, never skip, when node, npm or go are missing: they are
// part of `go test ./...` and of CI. Every child process is stopped when its
// test ends (SIGTERM, then SIGKILL after a grace period), and every wait is
// bounded. Only loopback addresses are used: handles are not verified by
// the reference consumer (that would resolve them through DNS and HTTPS),
// and goat's --verify-sig is not used (it resolves through the public
// directory).
//
// Under `go test -race` the reservoir binary is built with -race too, and a
// data race reported by a child fails the test.
package interop
