// Package relay mirrors other atproto hosts: it subscribes to their
// firehoses, verifies every event strictly, keeps a full copy of every
// repository it sees, and re-broadcasts what it accepted on our own
// firehose with our own seqs.
//
// # Ingest: from an upstream frame to our firehose
//
// The host side (subscriptions, one per upstream host) hands every frame it
// reads to Ingest.Submit with the host's name and the frame's seq. The
// ingest decodes it strictly (events.DecodeFrame) and queues it behind the
// earlier events of the same account. Workers (IngestOptions.Workers) take
// one runnable account at a time, process its first event, and put the
// account back at the end of the line if it has more: the events of one
// account are processed strictly in order, those of different accounts in
// parallel, and no account can starve the others. An account's queue exists
// only while it holds events or a resync; idle ones are freed, so memory
// follows the events in flight, not the accounts known. The queues are
// bounded all together, by events (QueueLen) and frame bytes (QueueBytes):
// Submit blocks when they are full, so a slow store slows the upstream
// reads instead of growing memory.
//
// Every submitted event ends in exactly one OnDone(hostname, seq), once its
// outcome is durable: applied and committed, or dropped after its verdict.
// Frames without an account (#info, error frames, unknown types) and frames
// that do not decode are settled at once, possibly before Submit returns.
// The host side persists a host's cursor only up to the highest seq below
// which every event is done, so a restart replays at most what was in
// flight; replayed commits are recognized as stale and dropped.
//
// # Per event (sync-spec §5.3, §7, §10)
//
// Mirrored accounts are store accounts with Hosted false and Host the
// upstream hostname. Events about an account hosted here are ignored.
//
//   - #commit. The account's DID document must name the event's host as its
//     PDS (re-resolved once when it does not; an account that moved here is
//     followed; otherwise the event is dropped, and the account untouched:
//     a host cannot desynchronize accounts it does not serve). An unknown
//     account is created on its first commit. Accounts not active here
//     (takendown, suspended, deactivated, deleted) drop their commits. A
//     commit at or before the stored head that does not claim to follow it
//     is a replay and is dropped quietly. The commit is verified with
//     repo.VerifyCommitMessage against the account's key and stored head
//     (after a signature failure, once more with the key of a freshly
//     fetched document); then its ops are applied forward to the stored
//     tree (read through the commit's blocks, then the store's), which must
//     give the signed root, and one store change holds the commit, the new
//     nodes, the new records, the indexes and our #commit frame, whose
//     blocks are the upstream's bytes unchanged. A first commit we see of a
//     repository we do not hold (since or prevData set) cannot be applied
//     forward: the repository is fetched whole instead.
//   - Any verification failure: the event is not forwarded, the account is
//     marked desynchronized (an #account {active: true, status:
//     desynchronized} tells consumers, when we held content of it) and a
//     resync is queued. Events of a desynchronized account are dropped
//     until a resync succeeds; each asks for one (after a failed resync, not
//     before ResyncBackoff, doubling with each failure).
//   - Resync: getRepo from the PDS the DID document names (bounded in time
//     and size; http and private addresses only with AllowInsecure),
//     verified fully with repostore.VerifyRepo (the signature with the
//     current key, every node, every record, the canonical rebuild), never
//     older than the stored rev, and applied with repostore.ReplaceChange
//     together with our own #sync (only the commit block) and, when it ends
//     an announced desynchronization, an #account. While a resync is
//     pending or running, the account's events wait in its queue (no worker
//     is held: resyncs have their own ResyncWorkers); afterwards those the
//     fetched state already covers are dropped as stale. Resyncs are
//     bounded (MaxPendingResyncs) and de-duplicated per account. Backfill
//     runs one in the caller's goroutine, for a host manager backfilling a
//     new host.
//   - #sync: verified (signature, DID, rev, not in the future); a rev at or
//     before the stored one is ignored (the same commit is a no-op);
//     otherwise the repository is resynced, and our #sync follows.
//   - #identity: the identity cache entry is purged and the DID resolved
//     again; the stored handle is the verified one (a handle only claimed
//     by the document could take another account's place in the handle
//     index); #identity is forwarded, with the handle only when it is the
//     one the document declares (as relay-ref does).
//   - #account: the host's status is kept apart (store.Account.Upstream)
//     from ours; the status served is the combination (our takedown or
//     suspension first, then the host's inactive statuses, then our
//     desynchronized), forwarded as #account. An inactive status we do not
//     know becomes deactivated: never the non-standard "inactive". A
//     deletion removes the stored repository and purges the account's
//     earlier events, as the host did.
//   - #handle, #migrate, #tombstone (legacy) and unknown types are counted
//     and skipped.
//
// Metrics: relay_ingest_events_total{type, outcome},
// relay_ingest_verify_failures_total{check}, relay_ingest_resyncs_total
// {result}, relay_ingest_queue_events, relay_ingest_queue_bytes,
// relay_ingest_event_seconds.
//
// # Concurrency
//
// Ingest's methods are safe for concurrent use. Only the ingest writes
// mirrored accounts: an account's queue is its write lock (one event or one
// resync at a time). Identity lookups and getRepo fetches happen without
// any lock held. Close stops new events, cancels resyncs, drains the queued
// events and waits for the workers; the store must stay open until it
// returns.
package relay
