// Package events is the firehose of com.atproto.sync.subscribeRepos: the
// frames of its events (#commit, #sync, #identity, #account, #info and error
// frames), encoded once as the store commits them.
//
// A frame is two DAG-CBOR objects back to back: a header {t: "#commit",
// op: 1} (or {op: -1} for an error) and the event body, whose keys follow
// canonical order. Bodies carry their seq, so a frame is encoded inside the
// store's committer, when the seq is known (see store.FrameEncoder); every
// later send, live or replayed, copies those bytes.
//
// Where the subscription side (sequencer hookup, replay, fan-out) stands:
// only the frame encoders exist so far (issue 5 builds the rest).
package events
