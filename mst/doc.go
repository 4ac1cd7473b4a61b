// Package mst is the Merkle Search Tree of atproto repositories: the sorted
// map from record paths ("app.bsky.feed.post/3jqfcqzm3fo2j") to record CIDs
// whose root CID a signed commit names as its "data".
//
// # Terminology
//
//   - key: a repo path, 1 to 1024 bytes. Insert and Builder.Add require the
//     path shape (CheckPath); Get, Delete, Walk and Proof take any key.
//   - value: the record CID stored under a key, kept exactly as given.
//   - height (layer) of a key: leading zero bits of SHA-256(key), divided by
//     two (HeightForKey). About one key in four climbs each level: fanout 4.
//   - node: a DAG-CBOR block {e: [entries], l: left}. Each entry is
//     {k: key suffix, p: prefix length shared with the previous entry's key,
//     t: subtree right of the entry or null, v: value}. A node holds the keys
//     of one height in order; its subtrees (l, then each t) hold the keys of
//     lower heights that fall between them, one level down.
//   - root: the node of the greatest height. The tree with no keys is the
//     single node {e: [], l: null}, bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm.
//
// The shape depends only on the set of keys, never on the order of edits, so
// every implementation computes the same root CID for the same records. That
// gives the rules Load, Verify and decoding enforce on untrusted blocks: keys
// strictly increasing, each in a node of its own height; links exactly one
// level down, with entry-less nodes (only l) standing in for levels that have
// no keys over a subtree two or more levels below, but never empty nodes and
// never a root that is only a pointer; maximal prefix compression; every
// field present, in canonical order, child links dag-cbor sha-256 CIDv1.
//
// # Editing
//
// Insert finds the key's slot in the node of its height. The subtree already
// in that slot has keys on both sides of the new key, so it splits in two
// along the key's search path (the new key's left and right subtrees). A key
// higher than the root splits the whole tree and becomes the new root, the
// halves lifted by entry-less nodes where levels are missing. Delete is the
// reverse: the subtrees either side of the removed key become neighbours and
// merge along their facing edges (the right edge of the left one, the left
// edge of the right one) until one side runs out; then a root left without
// entries is replaced by its only child, repeatedly (trimming).
//
// # Laziness and dirty tracking
//
// A Tree from Load holds only its root node. Each child is a CID stub until
// an operation must look inside it; then it is read from the BlockGetter and
// strictly decoded once. Get and Insert read the search path only; Delete
// adds the facing edges it merges; a split or a merge that keeps one side
// whole keeps it as a stub; Walk skips subtrees before its start; Diff skips
// equal subtrees. Edits only mark the nodes on their path dirty: Root encodes
// each dirty node once, bottom-up, so a thousand inserts cost one encoding
// per changed node, not per insert. NewBlocks then lists the nodes whose CID
// is new since the tree was loaded (what a commit must carry), and
// RemovedBlocks the loaded nodes the root no longer reaches (what the commit
// made garbage). An edit that
// fails, for example on a missing block, leaves the tree as it was.
//
// # Partial trees and inversion
//
// A relay checks a firehose commit by loading the new tree over only the
// blocks the commit carried (a MemBlocks of the CAR slice), undoing each op
// (delete what was created, re-insert what was deleted or updated) and
// comparing the root with the commit's prevData. That works because a
// producer sends NewBlocks plus Proof(key) of every op key, and the edits
// above read nothing else: Proof is the search path of the key plus, when it
// is present, the facing edges of its neighbour subtrees, exactly what a
// Delete merges and an Insert splits. Reaching a block that is absent fails
// with an error wrapping ErrNotFound that names the block's CID. One case
// needs care: when a delete leaves the root without entries, the new root is
// its only child, whose CID the link already gives. The child is still read
// if it is available, because it might itself be entry-less and need
// trimming too; if it is absent, its CID is taken as the root without
// reading it. That is the right root whenever the result is a valid tree
// (a valid root is never entry-less), and a commit whose ops are false yields
// a root that does not match prevData either way.
//
// # Diff, proofs, building
//
// Diff walks two trees in key order side by side and skips any pair of
// subtrees with equal CIDs, so its cost follows the change, not the trees.
// Apply takes such a batch of ops back: it checks every op's old value, then
// applies them all, with one round of hashing at the next Root.
// Proof reproduces the reference implementation's getCoveringProof. Builder
// makes a tree from keys in increasing order (a CAR import) while holding
// only the open right edge, emitting each node once it is complete.
//
// # Why not indigo's atproto/repo/mst
//
// indigo's package loads the whole tree eagerly, decodes nodes leniently
// (cbor-gen accepts non-canonical encodings, so distinct bytes could claim
// one node), and has neither diff nor covering proofs. This package decodes
// with our strict dagcbor and needs only the nodes an operation touches,
// which is what serving a PDS and verifying a firehose at relay scale need.
//
// # Concurrency
//
// A Tree is not safe for concurrent use, not even by readers only: Get,
// Walk, Proof, Diff and Verify load nodes into it, and Root caches
// encodings. Use one Tree per goroutine (Load is cheap), or a lock around it.
// Diff uses both of its trees. A BlockGetter may be shared if it is safe for
// concurrent reads (MemBlocks is, while nobody writes to it). A Builder is
// used by one goroutine. Keys passed to Walk callbacks and blocks passed to
// NewBlocks and Proof callbacks must not be modified; Builder's blocks are
// valid only during the callback.
package mst
