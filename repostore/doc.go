// Package repostore is the repository view of the store: it reads a
// repository (its MST over the stored blocks, record proofs, CAR exports)
// and turns an applied commit into the one store.Change that records it
// (new blocks, the blocks that die, the new head, record and collection
// index changes, and the #commit event). Hosted writes and mirrored commits
// both end in CommitChange, so the store sees one shape of change whatever
// produced it.
//
// A whole repository (an importRepo CAR on the host, a getRepo fetched by
// the relay's resync) takes the other door: VerifyRepo checks it fully (the
// signed commit, every node, every record, and a canonical rebuild of the
// tree), and ReplaceChange turns it into the change that swaps the stored
// repository for it; SyncEvent is the #sync that announces it.
//
// The caller holds the repository's write lock from reading the state to
// applying the change: CommitChange reads counters (paths per record CID,
// records per collection) and turns them into absolute values, which is
// only right if no other change of the same repository lands in between.
package repostore
