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
//   - the reference PDS @atproto/pds 0.4.217 (the newest release that runs
//     on Node 20; pinned in interop/pds/package.json and its lockfile,
//     installed by scripts/interop-npm.sh interop/pds; its better-sqlite3
//     compiles from source on the first install, about 80 s), started by
//     interop/pds/pds.js;
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
//  6. TestReferencePDSUpstream: the reference PDS, started the way its
//     Docker entry starts it (dev mode, hostname localhost, invites off, no
//     appview, sqlite and blobs in a temporary directory) with `reservoir
//     plc` as its directory, is the upstream of a reservoir relay (`serve
//     --allow-insecure-hosts`, short RESERVOIR_RELAY_* timings). One
//     account with posts is made before the relay's requestCrawl (hostname
//     http://127.0.0.1:PORT), a second account, posts, likes and deletes
//     after it (through createAccount, createRecord and deleteRecord with
//     the account's JWT). The relay must reach both accounts' heads as the
//     PDS's getLatestCommit reports them, and getRepo from the relay must
//     have the PDS's root and exactly its blocks (in any order); the relay
//     must count the accounts active, the PDS as an active host, no
//     verification failure (relay_ingest_verify_failures_total), no event
//     with a bad outcome, and every write after the crawl applied as a
//     commit. pds.js changes two things of the Docker entry: the PDS has no
//     option for its listen address and listens on all interfaces, so
//     pds.js binds it to 127.0.0.1; and with hostname localhost its public
//     URL, which becomes the PDS endpoint in every DID document, would be
//     http://localhost:PORT, so pds.js sets it to http://127.0.0.1:PORT,
//     the host the relay crawls and checks events against.
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
