package client

import (
	"fmt"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/events/wire"
)

// ErrMalformedFrame: a subscribeRepos frame that breaks the framing (two
// strict DAG-CBOR objects, a header {t, op} and a map body, nothing after)
// or lacks a field its lexicon type requires. A client drops the
// connection on one (sync-spec §3.2). It is wire.ErrMalformedFrame.
var ErrMalformedFrame = wire.ErrMalformedFrame

// Event is one decoded subscribeRepos frame: *Commit, *Sync, *Identity,
// *Account, *Info, *ErrorFrame, or *Unknown (a type or op this client does
// not know, which a Subscriber counts and skips).
type Event interface{ event() }

// RepoOp is one record operation of a #commit. CID is undefined for a
// delete, Prev for a create. Record holds the record's DAG-CBOR when the
// commit's blocks carry it (creates and updates; it aliases the frame).
type RepoOp struct {
	Action string // create, update, delete
	Path   string // collection/rkey
	CID    cid.Cid
	Prev   cid.Cid
	Record []byte
}

// Collection is the collection part of the op's path.
func (op *RepoOp) Collection() string {
	for i := 0; i < len(op.Path); i++ {
		if op.Path[i] == '/' {
			return op.Path[:i]
		}
	}
	return op.Path
}

// RKey is the record key part of the op's path.
func (op *RepoOp) RKey() string {
	for i := 0; i < len(op.Path); i++ {
		if op.Path[i] == '/' {
			return op.Path[i+1:]
		}
	}
	return ""
}

// Value decodes Record into the generic data model (strictly, as a
// record). It fails when the op carries no record.
func (op *RepoOp) Value() (map[string]any, error) {
	if op.Record == nil {
		return nil, fmt.Errorf("client: op %s %s carries no record", op.Action, op.Path)
	}
	return dagcbor.UnmarshalRecord(op.Record)
}

// JSON returns Record in the atproto JSON form ($link, $bytes).
func (op *RepoOp) JSON() ([]byte, error) {
	v, err := op.Value()
	if err != nil {
		return nil, err
	}
	return dagcbor.ToJSON(v)
}

// Commit is a #commit event. Since is "" when the wire value is null (the
// repository's first commit); PrevData is cid.Undef when absent.
type Commit struct {
	Seq       int64
	Repo      syntax.DID
	Rev       syntax.TID
	Since     string
	CommitCID cid.Cid
	PrevData  cid.Cid
	Blocks    []byte // CAR slice
	Ops       []RepoOp
	Time      string
	TooBig    bool
	Rebase    bool

	// Set by a Subscriber that verifies (Keys set): Verified when every
	// check passed, VerifyErr (a *repo.VerifyError, or the key lookup's
	// failure) otherwise. VerifyErr is also set, without verification,
	// when Blocks is not a CAR (the records are then missing).
	Verified  bool
	VerifyErr error
}

// Sync is a #sync event: the repository's current commit.
type Sync struct {
	Seq    int64
	DID    syntax.DID
	Rev    syntax.TID
	Blocks []byte // CAR holding the commit block
	Time   string

	// Set by a Subscriber: the commit's CID and data, read from Blocks, and,
	// when it verifies, whether the signature checked out. VerifyErr is
	// also set, without verification, when Blocks is not a CAR with the
	// commit.
	CommitCID cid.Cid
	Data      cid.Cid
	Verified  bool
	VerifyErr error
}

// Identity is an #identity event: the account's identity may have changed.
type Identity struct {
	Seq    int64
	DID    syntax.DID
	Handle string // "" when absent
	Time   string
}

// Account is an #account event: the account's hosting status at the
// emitting service. Status is "" when active.
type Account struct {
	Seq    int64
	DID    syntax.DID
	Active bool
	Status string
	Time   string
}

// Info is an #info message (no seq), such as OutdatedCursor.
type Info struct {
	Name    string
	Message string
}

// ErrorFrame is an error frame (op -1): the server closes the stream after
// it. It is an error matching ErrFutureCursor or ErrConsumerTooSlow by name.
type ErrorFrame struct {
	Name    string
	Message string
}

func (e *ErrorFrame) Error() string {
	if e.Message == "" {
		return "client: stream error " + e.Name
	}
	return "client: stream error " + e.Name + ": " + e.Message
}

// Is matches the sentinel of the error name.
func (e *ErrorFrame) Is(target error) bool {
	s, ok := sentinels[e.Name]
	return ok && s == target
}

// Unknown is a frame of an op or message type this client does not know
// (legacy #handle, #migrate, #tombstone, or something newer).
type Unknown struct {
	Op   int64
	Type string
}

func (*Commit) event()     {}
func (*Sync) event()       {}
func (*Identity) event()   {}
func (*Account) event()    {}
func (*Info) event()       {}
func (*ErrorFrame) event() {}
func (*Unknown) event()    {}

// Seq returns the event's seq, or 0 for the messages without one (#info,
// error frames, unknown).
func Seq(ev Event) int64 {
	switch e := ev.(type) {
	case *Commit:
		return e.Seq
	case *Sync:
		return e.Seq
	case *Identity:
		return e.Seq
	case *Account:
		return e.Seq
	}
	return 0
}

// DecodeFrame decodes one binary websocket message of subscribeRepos
// strictly, with the server's decoder (wire.DecodeFrame: at most 5 MB, a
// header {t, op} and a body map holding every field the lexicon requires,
// seqs in 1..2^53-1, DIDs and TIDs checked; unknown fields are validated
// and skipped; nothing after the body). Byte fields (Blocks) alias frame.
// The legacy #handle, #migrate and #tombstone decode to *Unknown.
func DecodeFrame(frame []byte) (Event, error) {
	ev, err := wire.DecodeFrame(frame)
	if err != nil {
		return nil, err
	}
	switch e := ev.(type) {
	case *wire.CommitEvent:
		c := &Commit{
			Seq: e.Seq, Repo: syntax.DID(e.Repo), Rev: syntax.TID(e.Rev), Since: e.Since,
			CommitCID: e.Commit, PrevData: e.PrevData, Blocks: e.Blocks, Time: e.Time,
			TooBig: e.TooBig, Rebase: e.Rebase, Ops: make([]RepoOp, len(e.Ops)),
		}
		for i, op := range e.Ops {
			c.Ops[i] = RepoOp{Action: string(op.Action), Path: op.Path, CID: op.CID, Prev: op.Prev}
		}
		return c, nil
	case *wire.SyncEvent:
		return &Sync{Seq: e.Seq, DID: syntax.DID(e.DID), Rev: syntax.TID(e.Rev), Blocks: e.Blocks, Time: e.Time}, nil
	case *wire.IdentityEvent:
		return &Identity{Seq: e.Seq, DID: syntax.DID(e.DID), Handle: e.Handle, Time: e.Time}, nil
	case *wire.AccountEvent:
		return &Account{Seq: e.Seq, DID: syntax.DID(e.DID), Active: e.Active, Status: e.Status, Time: e.Time}, nil
	case *wire.InfoEvent:
		return &Info{Name: e.Name, Message: e.Message}, nil
	case *wire.ErrorFrameEvent:
		return &ErrorFrame{Name: e.Error, Message: e.Message}, nil
	case *wire.UnknownEvent:
		return &Unknown{Op: e.Op, Type: e.T}, nil
	}
	return &Unknown{Op: wire.OpMessage, Type: ev.Type()}, nil // the legacy types
}
