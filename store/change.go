package store

import (
	"time"

	"github.com/ipfs/go-cid"
)

// Block is a content-addressed block of a repository.
type Block struct {
	CID  cid.Cid
	Data []byte
}

// DeadBlock is a live block that a change makes unreachable: it moves to the
// history area, kept for the history window. Data is its bytes.
type DeadBlock struct {
	CID  cid.Cid
	Data []byte
}

// RecordWrite adds (CID defined) or removes (cid.Undef) a record path in
// the record index. The index keeps paths only; a record's CID is read from
// the MST.
type RecordWrite struct {
	Path string // collection/rkey
	CID  cid.Cid
}

// RefCount is the new number of record paths that point at a record CID.
// The store keeps counts above one only: a live record block is referenced
// once unless said otherwise.
type RefCount struct {
	CID   cid.Cid
	Count uint64
}

// CollectionCount is the new number of records a repository has in a
// collection. The committer keeps the collection index from it: a count
// that leaves zero adds the repository to the collection, one that reaches
// zero removes it. Old is the count the writer read before the change, when
// it knows it: with Old and Count both above zero the repository stays in
// the collection and the committer reads nothing (the common case, a record
// added to a collection the repository already uses). Zero means none or
// unknown, and the committer looks the entry up.
type CollectionCount struct {
	Collection string
	Count      uint64
	Old        uint64
}

// FrameEncoder appends the complete firehose frame of an event (header and
// body, DAG-CBOR) with the seq the committer assigns. It runs once, inside
// the committer, so it must be quick and must not block.
type FrameEncoder func(b []byte, seq int64) []byte

// Change is one atomic change to one repository: everything in it lands in
// the store together, or none of it does (invariant 1). It is prepared by
// the one writer of that repository (host or relay, under the repository's
// lock), who reads the current state first; the committer applies it without
// reading, assigning seqs in commit order.
type Change struct {
	// Account, when set, is written as the account record. A zero UID
	// creates the account: the store assigns the UID, and refuses the change
	// if the DID exists. Otherwise UID names the repository the change is
	// about and Account may be nil.
	Account *Account
	UID     uint64

	// OldHandle, when set, is removed from the handle index (the account's
	// handle changed or the account is deleted). The index maps every
	// account record's Handle to its DID.
	OldHandle string

	// Secret, when non-nil, replaces the account's signing secrets.
	Secret []byte

	// Head, when set, becomes the repository's head; NewBlocks are stored
	// with its rev.
	Head      *Head
	NewBlocks []Block
	Dead      []DeadBlock

	Records     []RecordWrite
	RefCounts   []RefCount
	Collections []CollectionCount

	// Blobs are written as given (absolute values), or removed when Delete
	// is set.
	Blobs []BlobMeta

	// Events are appended to the event log in order, each with its own seq.
	Events []FrameEncoder

	// ResetRecords removes every record-index entry and reference count of
	// the repository before the change's own are written (an import that
	// replaces the repository).
	ResetRecords bool

	// PurgeEvents lists earlier events of this account to delete from the
	// log (an account deletion), by seq.
	PurgeEvents []int64

	// DropContent removes the repository's content (blocks, history,
	// record index, reference counts, blob entries) and keeps its
	// state: account, head, collection counts and index. A relay switched
	// from archive to lean drops its mirrors' content so (relay/lean.go).
	DropContent bool

	// Delete removes every block, record, count, secret and index entry of
	// the repository, and the copies of its superseded blocks (Apply reads
	// their keys from the history index first). The account record stays (with the status the Account
	// field gives) so that the DID keeps its UID and status.
	Delete bool
}

// Result is what Apply reports about an applied change.
type Result struct {
	UID  uint64
	Seqs []int64 // one per event, in order
}

// CommittedEvent is an event as it landed in the log.
type CommittedEvent struct {
	Seq   int64
	UID   uint64
	Time  time.Time
	Frame []byte
}
