package wire

import (
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/repo"
)

// Event is a decoded frame: one of *CommitEvent, *SyncEvent,
// *IdentityEvent, *AccountEvent, *InfoEvent, *ErrorFrameEvent,
// *HandleEvent, *MigrateEvent, *TombstoneEvent or *UnknownEvent.
type Event interface {
	// Type is the header's t ("#commit", ...); "" for an error frame or an
	// unknown op.
	Type() string
}

// DIDEvent is an event about one account; its events must be processed in
// order, those of different accounts may run in parallel.
type DIDEvent interface {
	Event
	// EventDID is the account the event is about (repo of a #commit, did of
	// the others).
	EventDID() string
	// EventSeq is the upstream seq the body carries.
	EventSeq() int64
}

// CommitEvent is a #commit as received. Rev and Since (when not "") are
// valid TIDs, Repo a valid DID. Since is "" when the wire value is null (the
// repository's first commit); PrevData is cid.Undef when absent. Blocks
// aliases the frame.
type CommitEvent struct {
	Seq      int64
	Repo     string
	Rev      string
	Since    string
	Commit   cid.Cid
	PrevData cid.Cid
	Blocks   []byte
	Ops      []repo.Op
	TooBig   bool
	Rebase   bool
	Time     string
}

// Message returns the fields verification reads (repo.VerifyCommitMessage).
func (e *CommitEvent) Message() *repo.CommitMessage {
	return &repo.CommitMessage{
		Repo: e.Repo, Rev: e.Rev, Since: e.Since, Commit: e.Commit, PrevData: e.PrevData,
		Blocks: e.Blocks, Ops: e.Ops, TooBig: e.TooBig, Rebase: e.Rebase,
	}
}

// SyncEvent is a #sync: the account's current commit, alone in Blocks (a
// CAR, aliasing the frame). Rev is a valid TID.
type SyncEvent struct {
	Seq    int64
	DID    string
	Rev    string
	Blocks []byte
	Time   string
}

// Message returns the fields verification reads (repo.VerifySyncMessage).
func (e *SyncEvent) Message() *repo.SyncMessage {
	return &repo.SyncMessage{DID: e.DID, Rev: e.Rev, Blocks: e.Blocks}
}

// IdentityEvent is an #identity: the account's identity may have changed.
// Handle is "" when absent.
type IdentityEvent struct {
	Seq    int64
	DID    string
	Handle string
	Time   string
}

// AccountEvent is an #account: the account's status at the emitting host.
// Status is "" when absent.
type AccountEvent struct {
	Seq    int64
	DID    string
	Active bool
	Status string
	Time   string
}

// InfoEvent is an #info frame (no seq).
type InfoEvent struct {
	Name    string
	Message string
}

// ErrorFrameEvent is an error frame ({op: -1}); the stream ends after it.
type ErrorFrameEvent struct {
	Error   string
	Message string
}

// HandleEvent is the legacy #handle.
type HandleEvent struct {
	Seq    int64
	DID    string
	Handle string
	Time   string
}

// MigrateEvent is the legacy #migrate; MigrateTo is "" when null.
type MigrateEvent struct {
	Seq       int64
	DID       string
	MigrateTo string
	Time      string
}

// TombstoneEvent is the legacy #tombstone.
type TombstoneEvent struct {
	Seq  int64
	DID  string
	Time string
}

// UnknownEvent is a frame of a type (or op) this package does not know.
// Consumers ignore it; it is not an error.
type UnknownEvent struct {
	T  string // the header's t, "" if absent
	Op int64
}

func (*CommitEvent) Type() string     { return TypeCommit }
func (*SyncEvent) Type() string       { return TypeSync }
func (*IdentityEvent) Type() string   { return TypeIdentity }
func (*AccountEvent) Type() string    { return TypeAccount }
func (*InfoEvent) Type() string       { return TypeInfo }
func (*ErrorFrameEvent) Type() string { return "" }
func (*HandleEvent) Type() string     { return TypeHandle }
func (*MigrateEvent) Type() string    { return TypeMigrate }
func (*TombstoneEvent) Type() string  { return TypeTombstone }
func (e *UnknownEvent) Type() string  { return e.T }

func (e *CommitEvent) EventDID() string    { return e.Repo }
func (e *SyncEvent) EventDID() string      { return e.DID }
func (e *IdentityEvent) EventDID() string  { return e.DID }
func (e *AccountEvent) EventDID() string   { return e.DID }
func (e *HandleEvent) EventDID() string    { return e.DID }
func (e *MigrateEvent) EventDID() string   { return e.DID }
func (e *TombstoneEvent) EventDID() string { return e.DID }

func (e *CommitEvent) EventSeq() int64    { return e.Seq }
func (e *SyncEvent) EventSeq() int64      { return e.Seq }
func (e *IdentityEvent) EventSeq() int64  { return e.Seq }
func (e *AccountEvent) EventSeq() int64   { return e.Seq }
func (e *HandleEvent) EventSeq() int64    { return e.Seq }
func (e *MigrateEvent) EventSeq() int64   { return e.Seq }
func (e *TombstoneEvent) EventSeq() int64 { return e.Seq }

var (
	_ DIDEvent = (*CommitEvent)(nil)
	_ DIDEvent = (*SyncEvent)(nil)
	_ DIDEvent = (*IdentityEvent)(nil)
	_ DIDEvent = (*AccountEvent)(nil)
	_ DIDEvent = (*HandleEvent)(nil)
	_ DIDEvent = (*MigrateEvent)(nil)
	_ DIDEvent = (*TombstoneEvent)(nil)
)
