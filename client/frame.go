package client

import (
	"errors"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

// ErrMalformedFrame: a subscribeRepos frame that breaks the framing (two
// strict DAG-CBOR objects, a header {t, op} and a map body, nothing after)
// or lacks a field its lexicon type requires. A client drops the
// connection on one (sync-spec §3.2).
var ErrMalformedFrame = errors.New("client: malformed frame")

// maxSeq is the largest seq allowed (2^53-1, sync-spec §3.3).
const maxSeq = 1<<53 - 1

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
// strictly (sync-spec §3.2): a header {t, op}, a body map of the type's
// fields (unknown fields are validated and skipped), nothing after.
// Byte fields (Blocks) alias frame.
func DecodeFrame(frame []byte) (Event, error) {
	d := dagcbor.NewDecoder(frame)
	op, typ, err := decodeHeader(d)
	if err != nil {
		return nil, malformed("header", err)
	}
	var ev Event
	switch {
	case op == -1:
		ev, err = decodeErrorBody(d)
	case op != 1:
		ev, err = &Unknown{Op: op, Type: typ}, skipBody(d)
	case typ == "#commit":
		ev, err = decodeCommit(d)
	case typ == "#sync":
		ev, err = decodeSync(d)
	case typ == "#identity":
		ev, err = decodeIdentity(d)
	case typ == "#account":
		ev, err = decodeAccount(d)
	case typ == "#info":
		ev, err = decodeInfo(d)
	default:
		ev, err = &Unknown{Op: op, Type: typ}, skipBody(d)
	}
	if err != nil {
		return nil, malformed(typeName(op, typ), err)
	}
	if err := d.Done(); err != nil {
		return nil, malformed(typeName(op, typ), err)
	}
	return ev, nil
}

func typeName(op int64, typ string) string {
	if op == -1 {
		return "error frame"
	}
	return typ
}

func malformed(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrMalformedFrame, what, err)
}

func decodeHeader(d *dagcbor.Decoder) (op int64, typ string, err error) {
	var haveOp, haveT bool
	err = decodeMap(d, func(k []byte) error {
		var err error
		switch string(k) {
		case "op":
			op, err = d.ReadInt()
			haveOp = true
		case "t":
			typ, err = d.ReadText()
			haveT = true
		default:
			err = d.Skip()
		}
		return err
	})
	if err != nil {
		return 0, "", err
	}
	if !haveOp {
		return 0, "", errors.New("no op")
	}
	if op == 1 && !haveT {
		return 0, "", errors.New("a message header without t")
	}
	return op, typ, nil
}

// decodeMap reads a map, calling field for each key (in canonical order,
// checked); field must consume the value.
func decodeMap(d *dagcbor.Decoder, field func(k []byte) error) error {
	n, err := d.ReadMapHeader()
	if err != nil {
		return err
	}
	var prev []byte
	for range n {
		k, err := d.ReadMapKey(prev)
		if err != nil {
			return err
		}
		prev = k
		if err := field(k); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

func skipBody(d *dagcbor.Decoder) error {
	return decodeMap(d, func([]byte) error { return d.Skip() })
}

// The required fields of each body (lexicon), at most 32.
var (
	commitFields   = []string{"seq", "rebase", "tooBig", "repo", "commit", "rev", "since", "blocks", "ops", "blobs", "time"}
	opFields       = []string{"action", "path", "cid"}
	syncFields     = []string{"seq", "did", "blocks", "rev", "time"}
	identityFields = []string{"seq", "did", "time"}
	accountFields  = []string{"seq", "did", "time", "active"}
	infoFields     = []string{"name"}
	errorFields    = []string{"error"}
)

// fields tracks which required fields a body had, without allocating.
type fields struct {
	need []string
	seen uint32
}

func (f *fields) mark(k []byte) {
	for i, n := range f.need {
		if n == string(k) {
			f.seen |= 1 << i
			return
		}
	}
}

func (f *fields) check() error {
	for i, n := range f.need {
		if f.seen&(1<<i) == 0 {
			return fmt.Errorf("required field %s missing", n)
		}
	}
	return nil
}

func readSeq(d *dagcbor.Decoder) (int64, error) {
	s, err := d.ReadInt()
	if err != nil {
		return 0, err
	}
	if s < 1 || s > maxSeq {
		return 0, fmt.Errorf("seq %d outside 1..2^53-1", s)
	}
	return s, nil
}

func readDID(d *dagcbor.Decoder) (syntax.DID, error) {
	s, err := d.ReadText()
	if err != nil {
		return "", err
	}
	return syntax.ParseDID(s)
}

func readTID(d *dagcbor.Decoder) (syntax.TID, error) {
	s, err := d.ReadText()
	if err != nil {
		return "", err
	}
	return syntax.ParseTID(s)
}

func decodeCommit(d *dagcbor.Decoder) (*Commit, error) {
	e := &Commit{}
	f := fields{need: commitFields}
	err := decodeMap(d, func(k []byte) error {
		var err error
		f.mark(k)
		switch string(k) {
		case "ops":
			e.Ops, err = decodeOps(d)
		case "rev":
			e.Rev, err = readTID(d)
		case "seq":
			e.Seq, err = readSeq(d)
		case "repo":
			e.Repo, err = readDID(d)
		case "time":
			e.Time, err = d.ReadText()
		case "blobs":
			err = skipCIDs(d)
		case "since":
			var null bool
			if null, err = d.ReadNull(); err == nil && !null {
				var t syntax.TID
				t, err = readTID(d)
				e.Since = string(t)
			}
		case "blocks":
			e.Blocks, err = d.ReadBytes()
		case "commit":
			e.CommitCID, err = d.ReadCID()
		case "rebase":
			e.Rebase, err = d.ReadBool()
		case "tooBig":
			e.TooBig, err = d.ReadBool()
		case "prevData":
			e.PrevData, err = d.ReadNullableCID()
		default:
			err = d.Skip()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return e, f.check()
}

func skipCIDs(d *dagcbor.Decoder) error {
	n, err := d.ReadArrayHeader()
	if err != nil {
		return err
	}
	for range n {
		if _, err := d.ReadCID(); err != nil {
			return err
		}
	}
	return nil
}

func decodeOps(d *dagcbor.Decoder) ([]RepoOp, error) {
	n, err := d.ReadArrayHeader()
	if err != nil {
		return nil, err
	}
	ops := make([]RepoOp, 0, min(n, 256))
	for i := range n {
		var op RepoOp
		f := fields{need: opFields}
		err := decodeMap(d, func(k []byte) error {
			var err error
			f.mark(k)
			switch string(k) {
			case "cid":
				op.CID, err = d.ReadNullableCID()
			case "path":
				op.Path, err = d.ReadText()
			case "prev":
				op.Prev, err = d.ReadNullableCID()
			case "action":
				op.Action, err = d.ReadText()
			default:
				err = d.Skip()
			}
			return err
		})
		if err == nil {
			err = f.check()
		}
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		ops = append(ops, op)
	}
	return ops, nil
}

func decodeSync(d *dagcbor.Decoder) (*Sync, error) {
	e := &Sync{}
	f := fields{need: syncFields}
	err := decodeMap(d, func(k []byte) error {
		var err error
		f.mark(k)
		switch string(k) {
		case "did":
			e.DID, err = readDID(d)
		case "rev":
			e.Rev, err = readTID(d)
		case "seq":
			e.Seq, err = readSeq(d)
		case "time":
			e.Time, err = d.ReadText()
		case "blocks":
			e.Blocks, err = d.ReadBytes()
		default:
			err = d.Skip()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return e, f.check()
}

func decodeIdentity(d *dagcbor.Decoder) (*Identity, error) {
	e := &Identity{}
	f := fields{need: identityFields}
	err := decodeMap(d, func(k []byte) error {
		var err error
		f.mark(k)
		switch string(k) {
		case "did":
			e.DID, err = readDID(d)
		case "seq":
			e.Seq, err = readSeq(d)
		case "time":
			e.Time, err = d.ReadText()
		case "handle":
			e.Handle, err = readOptionalText(d)
		default:
			err = d.Skip()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return e, f.check()
}

func decodeAccount(d *dagcbor.Decoder) (*Account, error) {
	e := &Account{}
	f := fields{need: accountFields}
	err := decodeMap(d, func(k []byte) error {
		var err error
		f.mark(k)
		switch string(k) {
		case "did":
			e.DID, err = readDID(d)
		case "seq":
			e.Seq, err = readSeq(d)
		case "time":
			e.Time, err = d.ReadText()
		case "active":
			e.Active, err = d.ReadBool()
		case "status":
			e.Status, err = readOptionalText(d)
		default:
			err = d.Skip()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return e, f.check()
}

func decodeInfo(d *dagcbor.Decoder) (*Info, error) {
	e := &Info{}
	f := fields{need: infoFields}
	err := decodeMap(d, func(k []byte) error {
		var err error
		f.mark(k)
		switch string(k) {
		case "name":
			e.Name, err = d.ReadText()
		case "message":
			e.Message, err = readOptionalText(d)
		default:
			err = d.Skip()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return e, f.check()
}

func decodeErrorBody(d *dagcbor.Decoder) (*ErrorFrame, error) {
	e := &ErrorFrame{}
	f := fields{need: errorFields}
	err := decodeMap(d, func(k []byte) error {
		var err error
		f.mark(k)
		switch string(k) {
		case "error":
			e.Name, err = d.ReadText()
		case "message":
			e.Message, err = readOptionalText(d)
		default:
			err = d.Skip()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return e, f.check()
}

// readOptionalText reads a text field that may be null ("" then).
func readOptionalText(d *dagcbor.Decoder) (string, error) {
	if null, err := d.ReadNull(); err != nil || null {
		return "", err
	}
	return d.ReadText()
}
