// Package loadgen is a synthetic AT Protocol network for benchmarks: N
// accounts with K-256 keys and did:plc identities, a realistic mix of record
// operations (likes, posts, follows, reposts, deletes, profile updates; most
// records 100–500 bytes, shaped like app.bsky records) signed into sync-1.1
// #commit frames with the repo and mst packages, and the services a relay
// needs to consume them:
//
//   - Generate pre-generates the stream once into a directory named by its
//     parameters (frames.bin: uvarint-length-prefixed firehose frames with
//     seqs 1..N; accounts.txt: each account's DID and public key), so
//     generation is never part of a measurement. Generation runs on every
//     core.
//   - Host is a fake PDS on loopback: com.atproto.sync.subscribeRepos
//     served from that file over websocket (cursor support), with the
//     frames released all at once, up to a mark, or at a target rate;
//     listRepos (empty: relays learn accounts from their first commit),
//     describeServer and _health, as far as relays need them.
//   - Directory is an in-process did:plc directory (GET /{did}) whose
//     documents name the Host as the accounts' PDS. It serves the
//     documents without the operation log: registering 1M signed genesis
//     operations in a real `reservoir plc` would cost more than the
//     benchmark it serves.
//
// The stream: first every account's genesis #commit (FirstRecords
// records), then Commits continuing commits, each of one operation, on
// accounts drawn at random (each account's commits in rev order).
package loadgen
