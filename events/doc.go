// Package events is the firehose of com.atproto.sync.subscribeRepos: the
// frames of its events (#commit, #sync, #identity, #account, #info and error
// frames), encoded once as the store commits them, and the subscribers that
// replay and follow the log.
//
// # Frames
//
// The frame format is package events/wire: the encoders, the strict
// decoder the relay reads upstream hosts with (the client decodes through
// it too) and the event types. Bodies carry their seq, so a frame is
// encoded inside the store's committer, when the seq is known (see
// store.FrameEncoder); every later send, live or replayed, copies those
// bytes. Nothing is re-encoded. #info and error frames are made per
// connection (wire.InfoFrame, wire.ErrorFrame): they have no seq and are
// never stored. The legacy #handle, #migrate and #tombstone (sync-spec
// §1.3) are written only by a relay run with --legacy-events, next to the
// current event they duplicate.
//
// # The log, the ring and a stream
//
// The store's event log is the truth: every event, durable before anyone
// sees it, kept for the event window (--replay-window). The Ring is its
// in-memory tail: store.Options.OnCommit = Ring.Publish hands it each group
// commit's events, which it copies (one allocation per group) into a ring
// bounded by count and bytes, then wakes the waiting subscribers by closing
// a channel. Publish never blocks on a subscriber: the committer pays a
// copy and a short lock. The ring holds every event after its base seq (the
// seq before the first event it got, moving up as old ones are evicted).
//
// A Stream is one subscriber's position (the last seq it was given) and a
// page buffer. Poll pulls the next frames after the position: from the ring
// when the position is at or past the ring's base, otherwise a bounded page
// from the store (Options.BatchFrames, Options.BatchBytes). A subscriber far
// behind therefore reads the store at its own pace, page by page, until its
// position reaches the ring, and is never dropped for being behind while its
// position is inside the window; nothing is queued for it while it reads.
// The cut-over is exact because both sources answer the same question —
// the events with a seq greater than the position, in order — and the
// position only moves forward: no duplicate, no reordering, no gap except
// events the log no longer has. The wake channel is taken before the ring
// is read, so an event published after a read always wakes the reader.
//
// Memory per subscriber is its stream (a frames slice and, only while it
// reads the store, one page), two goroutines with small stacks, a 512-byte
// read buffer, and, for the duration of a write only, the frame headers and
// the writev list of the batch, borrowed from a pool: frames are written
// from the shared bytes, never copied per subscriber.
//
// # Cursors (sync-spec §3.3 and §10.4–10.6)
//
//   - no cursor: live from the current head, nothing older;
//   - cursor N: the events with seq > N (N is the last seq the consumer
//     processed);
//   - N past the newest seq: the error frame FutureCursor, then close 1008;
//   - N older than the oldest event kept: an #info OutdatedCursor frame,
//     then everything from the oldest kept event (also when the log is
//     empty: then the stream goes live). A hole at the start of the log left
//     by the deletion purge below looks the same, and gets the same info;
//   - 0: the whole window, from the oldest kept event, without info;
//   - not a non-negative integer: HTTP 400 before the upgrade (ParseCursor).
//
// # Account deletion: what a consumer sees
//
// When an account is deleted, reservoir (like the reference PDS) purges
// every earlier event of that account from the log, in the same commit that
// appends its #account {active: false, status: "deleted"} event (the relay
// does the same when an upstream host deletes a mirrored account, even if
// it then reports its own status, such as takendown). A consumer that
// replays the window afterwards sees no event of that account but the
// deletion. A consumer that had already received the account's events (it
// was live, or replayed past them) keeps what it has and then receives the
// deletion, which tells it to drop the account's content. A consumer that
// had not been sent them yet when the deletion committed never gets them:
// it continues with the next remaining event, without an error; the seqs of
// the purged events are simply absent.
//
// The ring follows the store, not a rule about statuses: every #account
// event marks the account's earlier events in the ring, and the first
// stream to read a marked event asks the store whether the log still has
// it, then tells the ring, which drops it or clears the mark. Publish does
// no I/O; the checks are rare (account events) and each is made once.
// Only a frame read in the instant between the deletion's commit and its
// Publish (or from a store page read just before the commit) can still go
// out, followed by the deletion.
//
// # ConsumerTooSlow
//
// Being behind is not being too slow. A subscriber is dropped with the
// error frame ConsumerTooSlow (then close 1008) only when
//   - its position fell out of the window: events after it were collected
//     before it read them (told apart from a purge by time: expiry removes
//     only events older than the window, so a hole after a position whose
//     own event is inside the window is a purge and is skipped), or
//   - its socket accepted nothing for Options.WriteTimeout (30 s). The
//     rest of the interrupted frame, the error frame and the close frame
//     then get a last 5 s; a client that reads again in that time still
//     sees whole frames.
//
// # Websocket
//
// gorilla/websocket does the handshake and reads the client: data frames
// are ignored (the stream is one-way), pings answered, a close frame or
// silence longer than Options.IdleTimeout ends the connection. Every write
// goes through one small type (wsConn) under one lock: the writer loop
// writes each batch of frames as binary messages in one writev, pings
// every Options.PingInterval, and sets a write deadline before each write.
// The subscriber runs on its own two goroutines: ServeWebSocket returns
// right after the upgrade, letting go of the request's buffers. Close shuts
// every subscriber down with close code 1001. The reasons connections end
// are counted (firehose_disconnects_total{reason}, the Reason* constants).
//
// # Concurrency
//
// Ring.Publish is called by the store's committer only, in seq order;
// Ring's other methods and everything on Firehose are safe for concurrent
// use. A Stream belongs to one goroutine. Frames handed out are shared and
// must not be modified.
package events
