// Package relay mirrors other atproto hosts: it subscribes to their
// firehoses, verifies every event strictly, keeps a full copy of every
// repository it sees (or, as a lean relay, only its state), and
// re-broadcasts what it accepted on our own firehose with our own seqs.
//
// # Ingest: from an upstream frame to our firehose
//
// The host side (subscriptions, one per upstream host) hands every frame it
// reads to Ingest.Submit with the host's name and the frame's seq. The
// ingest decodes it strictly (wire.DecodeFrame) and queues it behind the
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
//     account is created by its first event (of any kind but a deletion).
//     Accounts not active here
//     (takendown, suspended, deactivated, deleted) drop their commits. A
//     commit at or before the stored head that does not claim to follow it
//     is a replay and is dropped quietly. The commit is verified with
//     repo.VerifyCommitMessage against the account's key and stored head
//     (after a signature failure, once more with the key of a freshly
//     fetched document). The sync-1.1 inversion back to prevData, which
//     must be the stored root, also tells exactly which MST nodes the
//     commit adds and removes (repo.TreeDelta): one store change built from
//     it, without reading the stored tree, holds the commit, the new nodes,
//     the new records, the superseded blocks, the indexes and our #commit
//     frame, whose blocks are the upstream's bytes unchanged. Only a
//     lenient commit without prevData has its ops applied forward to the
//     stored tree (read through the commit's blocks, then the store's),
//     which must give the signed root. A first commit we see of a
//     repository we do not hold (since or prevData set), or one the store
//     holds only lean (no head commit block), is not applied: the
//     repository is fetched whole instead.
//   - Any verification failure: the event is not forwarded, the account is
//     marked desynchronized (an #account {active: true, status:
//     desynchronized} tells consumers, when we held content of it) and a
//     resync is queued. Events of a desynchronized account are dropped
//     until a resync succeeds; each asks for one (after a failed resync, not
//     before ResyncBackoff, doubling with each failure up to
//     MaxResyncBackoff). A failed resync is also asked for again on a
//     timer when its backoff ends (resync_retry.go), so an account that
//     posts nothing more recovers as soon as its PDS serves it again.
//   - Resync: getRepo from the PDS the DID document names (bounded in time
//     and size; http and private addresses only with AllowInsecure),
//     verified fully with repostore.VerifyRepo (the signature with the
//     current key, every node, every record, the canonical rebuild), never
//     older than the stored rev, and applied with repostore.ReplaceChange
//     together with our own #sync (only the commit block) and, when it ends
//     an announced desynchronization, an #account. While a resync is
//     pending or running, the account's events wait in its queue (no worker
//     is held: resyncs have their own ResyncWorkers), counted apart from the
//     queues' bounds (MaxHeldEvents, MaxHeldBytes, beyond which they are
//     dropped) so that accounts being resynced never stall the others;
//     afterwards those the fetched state already covers are dropped as
//     stale. Resyncs are
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
//   - legacy types from older hosts (sync-spec §1.3): #handle is handled
//     as an #identity (purge, resolve again, store the verified handle,
//     forward #identity); #tombstone as a deletion #account (the repository
//     removed, earlier events purged, #account {active: false, status:
//     deleted} forwarded); #migrate resolves the DID afresh (the event is
//     a hint, the document the authority) and, when its PDS is another
//     host, moves the account there (the new host's events are accepted,
//     the old host's refused) and forwards #identity. A #migrate of an
//     account never seen, or one whose PDS did not change, is counted
//     (outcome "legacy") and skipped.
//   - unknown types are counted and skipped, never fatal.
//
// # Lean relay (IngestOptions.Lean, serve --archive=false)
//
// A lean relay keeps of a mirrored account only its state: the head (rev,
// commit CID, data CID), status, host and handle, and its record count per
// collection; no blocks, no record index, no blob references (lean.go,
// repostore.HeadChange). A #commit gets every check that needs no stored
// tree — the host against the DID document, then repo.VerifyCommitMessage
// against the key and the stored head: signature, rev order and clock
// skew, commit equal to the CAR root, the inversion of the ops giving the
// stored prevData, the ops and size limits — and is re-broadcast, blocks
// unchanged, in the change that stores its head. The creates and deletes
// of its ops move the collection counts, which are exact since a verified
// inversion proves the ops are the whole diff, so listReposByCollection
// keeps working. A resync fetches getRepo, verifies it fully, and stores
// only the head and the counts of the fetched records
// (repostore.HeadReplaceChange), with our #sync. Failures are handled as in
// an archive. Without prevData (--lenient) there is nothing to check the
// ops against: the commit passes on the other checks. Hosted accounts are
// unaffected. The API answers state reads from the head and redirects
// content reads to the PDS (api.Options.LeanMirrors). A store kept lean and
// then run as an archive resyncs each account at its first commit, whose
// ops find no stored tree (mst.ErrNotFound) to apply to. The other way, a
// lean relay started on a store whose mirrors were archived (the store's
// mirror mode is not "lean") drops their content in the background, one
// store.Change{DropContent} per repository, keeping their state, and then
// records the lean mode (lean.go, recordMirrorMode).
//
// # Our own status of a mirrored account
//
// Ingest.SetStatus is the admin's takedown or suspension of a mirrored
// account, or its reversal. It is queued behind the account's events like
// one of them (ingest_local.go; it is not bound by MaxHeldEvents), so an
// event submitted before it is handled with the old status and one after
// it with the new. The status served combines ours with the host's (our
// takedown first) and an #account says so; a taken-down account drops its
// upstream commits and its reads answer RepoTakendown. The reversal emits
// #account (and, in an archive, #sync of the stored head) and resyncs the
// account, since commits were dropped meanwhile. Deactivation and deletion
// are the account's own, on its PDS (ErrStatusNotOurs).
//
// With IngestOptions.LegacyEvents (--legacy-events) the legacy frames are
// also emitted, each with its own seq, right after the current one: a
// #handle after each #identity that carries a handle, a #tombstone after
// each deletion #account, a #migrate (then a #handle) after the #identity
// of an account that moved. Events of hosted accounts are not affected.
//
// Metrics: relay_ingest_events_total{type, outcome},
// relay_ingest_verify_failures_total{check}, relay_ingest_resyncs_total
// {result}, relay_ingest_resync_retries_total, relay_ingest_queue_events,
// relay_ingest_queue_bytes, relay_ingest_event_seconds.
//
// # Hosts: one subscription each
//
// The Manager runs the upstream hosts, stored in the store's host tables
// (store.Host): for every host that is not idle or banned, one goroutine
// dials ws(s)://host/xrpc/com.atproto.sync.subscribeRepos, reads frames
// (at most 5 MB each), and hands each frame with a seq to the ingest,
// whose Submit blocks while its queues are full: backpressure reaches the
// socket, nothing is dropped. A frame is read only as far as the
// subscription needs (header, seq, error name); an error frame or a
// frame that is not DAG-CBOR ends the connection. Frames with a seq at or
// below the last one submitted are skipped, #info frames logged.
//
// The cursor. Events of different accounts finish out of order, so the
// durable cursor of a host is the highest seq S such that every event
// submitted with a seq up to S was reported done (OnDone → Manager.Done):
// applied, or dropped after its verdict. It is stored every FlushInterval
// (1s) and at Close, so a restart replays at most the events that were in
// flight, which the ingest recognizes as stale. A reconnection in the same
// process resumes after the last seq submitted. A host that has sent
// nothing has no cursor (store.NoCursor, -1, shown without a seq): the
// first connection is live; a reconnection to it asks for its whole window
// (cursor 0), so nothing it wrote while we were away is lost.
//
// Status (sync-spec §7.2), with automatic recovery:
//
//   - active: subscribed; reconnects with exponential backoff and jitter
//     (MinBackoff to MaxBackoff) after any failure;
//   - offline: more than OfflineAfter (15) failed attempts in a row; still
//     retried every OfflineRetry, and active again with the first
//     connection that succeeds (a crawl request retries at once);
//   - idle: the host answered FutureCursor (its seqs restarted below our
//     cursor); not subscribed until the next crawl request, which resumes
//     it live with its cursor forgotten;
//   - throttled: shown while reading is delayed by the host's events per
//     second limit (HostLimits, default EventsPerSecond), or while it is
//     at its account limit (HostLimits.MaxAccounts, none by default), when
//     the events of accounts the store does not hold are skipped (counted
//     handled for the cursor); never stored;
//   - banned: by the admin (also before the host is ever seen); the
//     subscription stops, crawl requests are refused (ErrHostBanned), and
//     resyncs of its accounts fetch nothing (they fail, and their timed
//     retries find it unbanned or not); unbanned, it resumes after its
//     stored cursor.
//
// Crawl requests (RequestCrawl: requestCrawl and notifyOfUpdate) take a
// hostname or a service URL (ParseHostAddr: http and ws only with
// AllowInsecure, a port only for localhost, handle syntax), check that it
// resolves to public addresses only and that it answers /xrpc/_health (or
// describeServer), and count new hosts against a daily quota; the admin's
// AddHost skips the quota and the answer check. Every connection the
// manager makes goes through a dialer that refuses non-public addresses
// unless AllowInsecure, after resolution, so a name cannot be pointed at
// an internal address later. A new host is backfilled alongside its live
// events: listRepos page by page, each active repository fetched whole
// through the Backfiller (Ingest.Backfill), the position stored after each
// page so a backfill cut short resumes.
//
// Hosts found through DID documents (hosts_discover.go): when the DID
// document of a mirrored account names a PDS other than the host its event
// came from (after #identity, a re-resolve, a #migrate, or a resync), the
// ingest tells the manager (IngestOptions.DiscoverHost → Discover), which
// crawls that host unless it knows it (banned hosts stay banned), as a
// public crawl request: the same hostname and address checks, the check
// that it answers, and the daily quota. The account is then followed there
// without an operator: the new host is backfilled, which fetches the
// account from it, and its events are accepted. Discoveries are queued
// (at most 64, beyond which they are dropped: the next event finds them
// again) and crawled one at a time on the manager's goroutine; a host whose
// crawl failed is not tried again for ten minutes.
//
// Account counts per host (listHosts' accountCount, getHostStatus) are
// exact per change: the store's committer moves them in the batch that
// creates, moves or deletes an account (store.HostAccountCount). The host
// records take a copy every RecountInterval, stored at the next flush.
//
// Metrics: relay_upstream_frames_total, relay_upstream_submitted_total,
// relay_upstream_skipped_total{reason}, relay_upstream_connects_total
// {result}, relay_upstream_disconnects_total{reason},
// relay_upstream_throttled_seconds_total, relay_crawl_requests_total
// {result}, relay_backfill_repos_total{result}, relay_hosts{status}.
//
// # Concurrency
//
// Manager's methods are safe for concurrent use; it is the only writer of
// host records (one lock orders their writes, so a record stored later is
// never older), and holds no lock during network I/O. Stop ends the
// subscriptions (their Submit calls return with the context); close the
// ingest after it, then Close the manager, which stores the final cursors.
//
// Ingest's methods are safe for concurrent use. Only the ingest writes
// mirrored accounts: an account's queue is its write lock (one event, one
// resync or one status change of ours at a time). Identity lookups and getRepo fetches happen without
// any lock held. Close stops new events, cancels resyncs, drains the queued
// events and waits for the workers; the store must stay open until it
// returns.
package relay
