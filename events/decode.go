package events

import (
	"errors"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/repo"
)

// MaxFrameSize is the hard limit of a firehose frame, encoding included
// (sync-spec §3.2).
const MaxFrameSize = 5_000_000

// Legacy event types, removed from the lexicon in 2025 (sync-spec §1.3).
// DecodeFrame still reads them; a server never emits them.
const (
	TypeHandle    = "#handle"
	TypeMigrate   = "#migrate"
	TypeTombstone = "#tombstone"
)

// ErrMalformedFrame is the class of frames DecodeFrame refuses: too large,
// not two strict DAG-CBOR objects, a header or body of the wrong shape, a
// required field missing or of the wrong type.
var ErrMalformedFrame = errors.New("malformed frame")

// Event is a decoded upstream frame: one of *CommitEvent, *SyncEvent,
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

// CommitEvent is a #commit as received. Since is "" when the wire value is
// null (or, from old producers, absent); PrevData is cid.Undef when absent.
// Blocks aliases the frame.
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
// CAR, aliasing the frame).
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

// DecodeFrame decodes one upstream frame strictly: at most MaxFrameSize
// bytes, exactly two canonical DAG-CBOR maps (header, then body) and nothing
// after them. Unknown body fields are skipped (validated, then ignored); a
// known field of the wrong type, or a required one missing, is an error
// wrapping ErrMalformedFrame. A frame of an unknown t or op decodes to an
// *UnknownEvent, not an error. Byte fields (Blocks) alias frame.
func DecodeFrame(frame []byte) (Event, error) {
	if len(frame) > MaxFrameSize {
		return nil, fmt.Errorf("events: %w: %d bytes > %d", ErrMalformedFrame, len(frame), MaxFrameSize)
	}
	d := dagcbor.NewDecoder(frame)
	op, t, err := decodeHeader(d)
	if err != nil {
		return nil, fmt.Errorf("events: %w: header: %w", ErrMalformedFrame, err)
	}
	var ev Event
	switch {
	case op == OpError:
		ev, err = decodeErrorBody(d)
	case op != OpMessage:
		ev, err = &UnknownEvent{T: t, Op: op}, skipBody(d)
	default:
		ev, err = decodeMessageBody(d, t)
	}
	if err == nil {
		err = d.Done()
	}
	if err != nil {
		return nil, fmt.Errorf("events: %w: %s body: %w", ErrMalformedFrame, describe(op, t), err)
	}
	return ev, nil
}

func describe(op int64, t string) string {
	if op == OpError {
		return "error"
	}
	if t == "" {
		return fmt.Sprintf("op %d", op)
	}
	return t
}

// decodeHeader reads {t?: string, op: int}. t is required when op is 1.
func decodeHeader(d *dagcbor.Decoder) (op int64, t string, err error) {
	n, err := d.ReadMapHeader()
	if err != nil {
		return 0, "", err
	}
	var prev []byte
	var haveOp, haveT bool
	for range n {
		k, err := d.ReadMapKey(prev)
		if err != nil {
			return 0, "", err
		}
		prev = k
		switch string(k) {
		case "t":
			if t, err = d.ReadText(); err != nil {
				return 0, "", fmt.Errorf("t: %w", err)
			}
			haveT = true
		case "op":
			if op, err = d.ReadInt(); err != nil {
				return 0, "", fmt.Errorf("op: %w", err)
			}
			haveOp = true
		default:
			if err := d.Skip(); err != nil {
				return 0, "", err
			}
		}
	}
	if !haveOp {
		return 0, "", errors.New("no op")
	}
	if op == OpMessage && !haveT {
		return 0, "", errors.New("message header without t")
	}
	return op, t, nil
}

func skipBody(d *dagcbor.Decoder) error {
	if k, err := d.Peek(); err != nil {
		return err
	} else if k != dagcbor.KindMap {
		return fmt.Errorf("body is a %s, not a map", k)
	}
	return d.Skip()
}

func decodeMessageBody(d *dagcbor.Decoder, t string) (Event, error) {
	switch t {
	case TypeCommit:
		return decodeCommit(d)
	case TypeSync:
		e := &SyncEvent{}
		return e, decodeFields(d, fieldSet{
			{name: "seq", required: true, read: readSeq(&e.Seq)},
			{name: "did", required: true, read: readDID(&e.DID)},
			{name: "rev", required: true, read: readText(&e.Rev)},
			{name: "blocks", required: true, read: readBytes(&e.Blocks)},
			{name: "time", required: true, read: readText(&e.Time)},
		})
	case TypeIdentity:
		e := &IdentityEvent{}
		return e, decodeFields(d, fieldSet{
			{name: "seq", required: true, read: readSeq(&e.Seq)},
			{name: "did", required: true, read: readDID(&e.DID)},
			{name: "time", required: true, read: readText(&e.Time)},
			{name: "handle", read: readNullableText(&e.Handle)},
		})
	case TypeAccount:
		e := &AccountEvent{}
		return e, decodeFields(d, fieldSet{
			{name: "seq", required: true, read: readSeq(&e.Seq)},
			{name: "did", required: true, read: readDID(&e.DID)},
			{name: "time", required: true, read: readText(&e.Time)},
			{name: "active", required: true, read: readBool(&e.Active)},
			{name: "status", read: readNullableText(&e.Status)},
		})
	case TypeInfo:
		e := &InfoEvent{}
		return e, decodeFields(d, fieldSet{
			{name: "name", required: true, read: readText(&e.Name)},
			{name: "message", read: readNullableText(&e.Message)},
		})
	case TypeHandle:
		e := &HandleEvent{}
		return e, decodeFields(d, fieldSet{
			{name: "seq", required: true, read: readSeq(&e.Seq)},
			{name: "did", required: true, read: readDID(&e.DID)},
			{name: "handle", required: true, read: readText(&e.Handle)},
			{name: "time", required: true, read: readText(&e.Time)},
		})
	case TypeMigrate:
		e := &MigrateEvent{}
		return e, decodeFields(d, fieldSet{
			{name: "seq", required: true, read: readSeq(&e.Seq)},
			{name: "did", required: true, read: readDID(&e.DID)},
			{name: "migrateTo", read: readNullableText(&e.MigrateTo)},
			{name: "time", required: true, read: readText(&e.Time)},
		})
	case TypeTombstone:
		e := &TombstoneEvent{}
		return e, decodeFields(d, fieldSet{
			{name: "seq", required: true, read: readSeq(&e.Seq)},
			{name: "did", required: true, read: readDID(&e.DID)},
			{name: "time", required: true, read: readText(&e.Time)},
		})
	}
	return &UnknownEvent{T: t, Op: OpMessage}, skipBody(d)
}

func decodeCommit(d *dagcbor.Decoder) (*CommitEvent, error) {
	e := &CommitEvent{}
	return e, decodeFields(d, fieldSet{
		{name: "seq", required: true, read: readSeq(&e.Seq)},
		{name: "repo", required: true, read: readDID(&e.Repo)},
		{name: "rev", required: true, read: readText(&e.Rev)},
		{name: "since", read: readNullableText(&e.Since)},
		{name: "commit", required: true, read: readCID(&e.Commit)},
		{name: "prevData", read: func(d *dagcbor.Decoder) (err error) {
			e.PrevData, err = d.ReadNullableCID()
			return err
		}},
		{name: "blocks", required: true, read: readBytes(&e.Blocks)},
		{name: "ops", required: true, read: func(d *dagcbor.Decoder) (err error) { e.Ops, err = decodeOps(d); return err }},
		{name: "tooBig", read: readBool(&e.TooBig)},
		{name: "rebase", read: readBool(&e.Rebase)},
		{name: "time", required: true, read: readText(&e.Time)},
		// blobs (deprecated, always []) and the historical prev are
		// unknown fields: validated and skipped.
	})
}

// decodeOps reads the #repoOp array: {action, path, cid (nullable), prev?}.
func decodeOps(d *dagcbor.Decoder) ([]repo.Op, error) {
	n, err := d.ReadArrayHeader()
	if err != nil {
		return nil, err
	}
	ops := make([]repo.Op, n)
	for i := range ops {
		op := &ops[i]
		var action string
		err := decodeFields(d, fieldSet{
			{name: "action", required: true, read: readText(&action)},
			{name: "path", required: true, read: readText(&op.Path)},
			{name: "cid", required: true, read: func(d *dagcbor.Decoder) (err error) {
				op.CID, err = d.ReadNullableCID()
				return err
			}},
			{name: "prev", read: func(d *dagcbor.Decoder) (err error) {
				op.Prev, err = d.ReadNullableCID()
				return err
			}},
		})
		if err != nil {
			return nil, fmt.Errorf("op %d: %w", i, err)
		}
		op.Action = repo.Action(action)
	}
	return ops, nil
}

func decodeErrorBody(d *dagcbor.Decoder) (Event, error) {
	e := &ErrorFrameEvent{}
	return e, decodeFields(d, fieldSet{
		{name: "error", required: true, read: readText(&e.Error)},
		{name: "message", read: readNullableText(&e.Message)},
	})
}

// field is how one known body field is read.
type field struct {
	name     string
	required bool
	read     func(d *dagcbor.Decoder) error
}

// fieldSet lists the known fields of a map (at most 32).
type fieldSet []field

// decodeFields reads a map, dispatching known keys to their readers and
// skipping the others, then checks the required ones were all there.
func decodeFields(d *dagcbor.Decoder, fields fieldSet) error {
	n, err := d.ReadMapHeader()
	if err != nil {
		return err
	}
	var seen uint32
	var prev []byte
	for range n {
		k, err := d.ReadMapKey(prev)
		if err != nil {
			return err
		}
		prev = k
		i := fields.index(k)
		if i < 0 {
			if err := d.Skip(); err != nil {
				return err
			}
			continue
		}
		if err := fields[i].read(d); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		seen |= 1 << i
	}
	for i, f := range fields {
		if f.required && seen&(1<<i) == 0 {
			return fmt.Errorf("required field %q missing", f.name)
		}
	}
	return nil
}

func (fs fieldSet) index(k []byte) int {
	for i := range fs {
		if fs[i].name == string(k) {
			return i
		}
	}
	return -1
}

func readSeq(dst *int64) func(*dagcbor.Decoder) error {
	return func(d *dagcbor.Decoder) error {
		v, err := d.ReadInt()
		if err != nil {
			return err
		}
		if v < 0 {
			return fmt.Errorf("negative seq %d", v)
		}
		*dst = v
		return nil
	}
}

func readDID(dst *string) func(*dagcbor.Decoder) error {
	return func(d *dagcbor.Decoder) error {
		s, err := d.ReadText()
		if err != nil {
			return err
		}
		if _, err := syntax.ParseDID(s); err != nil {
			return err
		}
		*dst = s
		return nil
	}
}

func readText(dst *string) func(*dagcbor.Decoder) error {
	return func(d *dagcbor.Decoder) (err error) {
		*dst, err = d.ReadText()
		return err
	}
}

// readNullableText reads a string or null (null leaves "").
func readNullableText(dst *string) func(*dagcbor.Decoder) error {
	return func(d *dagcbor.Decoder) error {
		if null, err := d.ReadNull(); null || err != nil {
			return err
		}
		s, err := d.ReadText()
		*dst = s
		return err
	}
}

func readBytes(dst *[]byte) func(*dagcbor.Decoder) error {
	return func(d *dagcbor.Decoder) (err error) {
		*dst, err = d.ReadBytes()
		return err
	}
}

func readBool(dst *bool) func(*dagcbor.Decoder) error {
	return func(d *dagcbor.Decoder) (err error) {
		*dst, err = d.ReadBool()
		return err
	}
}

func readCID(dst *cid.Cid) func(*dagcbor.Decoder) error {
	return func(d *dagcbor.Decoder) (err error) {
		*dst, err = d.ReadCID()
		return err
	}
}
