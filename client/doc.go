// Package client is the consumer side of com.atproto.sync: a Client for
// every endpoint of the namespace, a checked reader of repository CARs, and
// a Subscriber that follows the subscribeRepos firehose. It works against
// any atproto host or relay (reservoir, the reference PDS, Bluesky's
// relay), and is what the `reservoir` subcommands subscribe, export,
// blobs, verify, inspect, status and hosts are built on.
//
//	c, err := client.New("https://pds.example.com")   // or wss://, ws://, http://
//	lc, err := c.GetLatestCommit(ctx, "did:plc:...")
//	for did, err := range c.AllReposByCollection(ctx, "app.bsky.feed.post", 0) { ... }
//
// # Calls, errors, retries
//
// Each method is one XRPC call with typed results; response fields are
// checked (CIDs and DIDs parse, required fields are present) and a body
// that breaks the lexicon is ErrBadResponse. A non-2xx answer is an
// *APIError {Method, Status, Name, Message, RetryAfter}. Callers test it
// by the lexicon's error name, never by status, because hosts disagree on
// statuses (the reference PDS sends every named error as 400, reservoir
// and the reference relay 404 and 403): errors.Is(err,
// client.ErrRepoNotFound), or the class helpers IsNotFound,
// IsRepoUnavailable (taken down, suspended, deactivated, and the relay's
// RepoDeleted and RepoInactive) and IsRateLimited.
//
// Queries (GET) are retried after network errors, 429 and the temporary
// 5xx (500, 502, 503, 504; never 501), MaxRetries times with exponential
// backoff and jitter. A wait the server asks for wins when longer:
// Retry-After (seconds or an HTTP date), or on a 429 RateLimit-Reset
// (Unix seconds as the reference PDS sends it, or delay-seconds as the
// IETF draft does). A server asking for more than MaxRetryWait is not
// retried: its *APIError carries RetryAfter for the caller to decide.
// Procedures (requestCrawl) are never retried. Timeout bounds the wait for
// each response's headers and then every wait for more body bytes, so
// a multi-gigabyte getRepo that keeps moving is never cut while a stalled
// one is (ErrTimeout). JSON bodies are read up to MaxJSONBytes, CARs read
// into memory up to MaxCARBytes.
//
// Listings have one method per page (ListRepos, ListBlobs, ...) and an
// iterator that follows the cursors (AllRepos, AllBlobs, AllHosts,
// AllReposByCollection). A cursor that comes back a second time ends the
// iteration with ErrCursorLoop rather than looping; an empty page that
// still has a cursor continues, as the spec leaves it open.
//
// GetBlob streams the blob and hashes it on the way: the read that reaches
// the end returns ErrBlobMismatch instead of io.EOF if the bytes are not
// the CID's. GetRecord checks the proof CAR (commit, signature when a key
// is given, the MST path) and returns the proven record, or, for a proof
// of absence, the proof together with an error matching ErrRecordNotFound.
// GetBlocks checks every block and that each CID asked for came back.
//
// # Repository CARs
//
// OpenRepoCAR reads a CAR once through any io.ReaderAt (a file, a
// bytes.Reader), checking each block against its CID, and keeps only an
// index from CID to offset, so a repository of any size costs about a
// hundred bytes per block. RepoCAR.Verify then checks, in order:
//   - the first root is a v3 commit, of the expected DID if one is given;
//   - its signature, with the key from a KeySource (identity.Resolver, or
//     StaticKey for a key the caller has), retried once with a refreshed key;
//   - the whole MST: every node present and strictly decoded, keys in
//     order at their heights (mst.Tree.Verify);
//   - rebuilding the tree from its keys with mst.Builder gives exactly the
//     commit's data CID (the canonical form);
//   - every record present, and a valid record (strict DAG-CBOR, the
//     data-model rules); their blobs are counted.
//
// Partial skips the tree for diffs (getRepo since=REV). The RepoReport
// counts blocks, nodes, records per collection and their bytes, blobs, and
// blocks no path reaches. Records walks the records in key order.
// GetRepoVerified does download-and-verify in memory for small
// repositories; large ones are streamed with GetRepo to a file first.
// Verification needs the tree's nodes in memory (mst keeps the nodes it
// loaded), typically a few percent of the repository.
//
// # The firehose
//
// A Subscriber connects to /xrpc/com.atproto.sync.subscribeRepos, decodes
// every binary message with DecodeFrame (the server's own decoder,
// events/wire: two strict DAG-CBOR objects, a header {t, op} and a body,
// nothing after; required fields of the lexicon present; unknown fields
// skipped; DIDs, revs and seqs validated) and calls
// the Handler with *Commit, *Sync, *Identity, *Account, *Info or
// *ErrorFrame, one at a time, in order. Frames of an unknown type or op
// (the retired #handle, #migrate, #tombstone, or newer ones) are counted
// and skipped, as the spec asks (a retired type still needs the fields its
// last lexicon required). A malformed frame ends Run with
// ErrMalformedFrame: reconnecting would only fetch it again.
//
// Cursors follow the references (sync-spec §3.3, §10.4): Cursor nil
// starts live, 0 replays the whole window, N replays the events after
// seq N. After a network failure, an idle connection (nothing, not even a
// pong to the pings sent every PingInterval, for IdleTimeout), a
// ConsumerTooSlow error frame or any other error frame, the Subscriber
// reconnects with backoff and asks for the events after the last seq it
// delivered; an event with a seq at or below it (a server replaying an
// overlap) is skipped. So a handler sees each seq at most once and, while
// the server still holds them, every one. LastSeq is the resume point to
// save across processes. FutureCursor (the server is behind the cursor),
// InvalidRequest (the reference PDS's answer to a bad cursor) and
// handshakes refused with a 4xx other than 429 end Run; #info
// OutdatedCursor is handed to the handler and the stream goes on.
//
// With Keys set, each #commit is verified with repo.VerifyCommitMessage,
// the same code the relay runs: the signature (one key refresh on
// failure), and the sync-1.1 inversion of its ops back to prevData, with
// chain checks against the last state seen of the repository. A chain
// break or prevData mismatch is reported and the commit, if valid on its
// own, becomes the new state (the repository was desynchronized and
// continues from there). #sync is checked for its signature and moves the
// state forward. Verdicts are in Verified and VerifyErr; events are
// delivered either way, the caller decides. The per-repository states are
// bounded (MaxTrackedRepos, least recently used out) and #identity events
// purge a KeySource that caches (identity.Resolver). The records a
// #commit carries are attached to its ops (RepoOp.Record, the DAG-CBOR;
// Value and JSON decode it).
//
// Memory is bounded: one message at a time (at most MaxFrameBytes), the
// handler applies backpressure to the socket, and the state table has a
// fixed size.
//
// # Concurrency
//
// A Client is safe for concurrent use once configured. A Subscriber's Run
// must not run twice at once; Stats and LastSeq may be called from any
// goroutine. A RepoCAR is safe for concurrent reads if its io.ReaderAt is.
// Events handed to a Handler alias the frame and are the handler's to
// keep.
package client
