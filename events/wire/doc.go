// Package wire is the format of com.atproto.sync.subscribeRepos frames:
// the encoders the server's committer writes them with, the strict decoder
// the relay reads upstream hosts with, and the event types it decodes to.
// The client package decodes through it too, so there is one decoder.
//
// A frame is two DAG-CBOR objects back to back: a header {t: "#commit",
// op: 1} (or {op: -1} for an error) and the event body, whose keys follow
// canonical order. The encoders (Commit, Sync, Identity, Account and the
// legacy Handle, Migrate, Tombstone) append a whole frame given its seq;
// InfoFrame and ErrorFrame build the per-connection frames that have no
// seq. DecodeFrame refuses what the lexicons do not allow (see its
// comment); FrameType sniffs the type of a frame these encoders wrote
// without decoding it.
//
// The package is a leaf: it imports the codec (dagcbor), the commit types
// (repo), go-cid and indigo's syntax, nothing of the server, so importers
// of the client do not pull the store in (a test enforces it).
package wire
