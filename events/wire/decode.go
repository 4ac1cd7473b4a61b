package wire

import (
	"errors"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/repo"
)

// ErrMalformedFrame is the class of frames DecodeFrame refuses: too large,
// not two strict DAG-CBOR objects, a header or body of the wrong shape, a
// field the lexicon requires missing, a known field of the wrong type or
// format. A consumer drops the connection on one (sync-spec §3.2); the
// relay's ingest skips the frame.
var ErrMalformedFrame = errors.New("malformed frame")

// DecodeFrame decodes one frame strictly: at most MaxFrameSize bytes,
// exactly two canonical DAG-CBOR maps (header, then body) and nothing after
// them. Every field the lexicon requires must be there (sync-spec §3.1;
// the legacy types as their last lexicons had them), seqs are in
// 1..MaxSeq, DIDs and TIDs (rev, since) have their syntax, links are CIDs.
// Unknown body fields are validated as DAG-CBOR, then ignored. A frame of
// an unknown t or op decodes to an *UnknownEvent, not an error. Every error
// wraps ErrMalformedFrame. Byte fields (Blocks) alias frame.
func DecodeFrame(frame []byte) (Event, error) {
	if len(frame) > MaxFrameSize {
		return nil, fmt.Errorf("wire: %w: %d bytes > %d", ErrMalformedFrame, len(frame), MaxFrameSize)
	}
	d := dagcbor.NewDecoder(frame)
	op, t, err := decodeHeader(d)
	if err != nil {
		return nil, fmt.Errorf("wire: %w: header: %w", ErrMalformedFrame, err)
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
		return nil, fmt.Errorf("wire: %w: %s body: %w", ErrMalformedFrame, describe(op, t), err)
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
	var haveOp, haveT bool
	err = readMap(d, func(k []byte) (err error) {
		switch string(k) {
		case "t":
			t, err = d.ReadText()
			haveT = true
		case "op":
			op, err = d.ReadInt()
			haveOp = true
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
	if op == OpMessage && !haveT {
		return 0, "", errors.New("message header without t")
	}
	return op, t, nil
}

// readMap reads a map, calling field for each key (in canonical order,
// checked); field must consume the value.
func readMap(d *dagcbor.Decoder, field func(k []byte) error) error {
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
	return readMap(d, func([]byte) error { return d.Skip() })
}

// The fields each lexicon type requires (at most 32 each).
var (
	commitFields    = []string{"seq", "rebase", "tooBig", "repo", "commit", "rev", "since", "blocks", "ops", "blobs", "time"}
	opFields        = []string{"action", "path", "cid"}
	syncFields      = []string{"seq", "did", "blocks", "rev", "time"}
	identityFields  = []string{"seq", "did", "time"}
	accountFields   = []string{"seq", "did", "time", "active"}
	infoFields      = []string{"name"}
	errorFields     = []string{"error"}
	handleFields    = []string{"seq", "did", "handle", "time"}
	migrateFields   = []string{"seq", "did", "migrateTo", "time"}
	tombstoneFields = []string{"seq", "did", "time"}
)

// required tracks which required fields a body had, without allocating.
type required struct {
	names []string
	seen  uint32
}

func (r *required) mark(k []byte) {
	for i, n := range r.names {
		if n == string(k) {
			r.seen |= 1 << i
			return
		}
	}
}

func (r *required) check() error {
	for i, n := range r.names {
		if r.seen&(1<<i) == 0 {
			return fmt.Errorf("required field %q missing", n)
		}
	}
	return nil
}

func decodeMessageBody(d *dagcbor.Decoder, t string) (Event, error) {
	switch t {
	case TypeCommit:
		return decodeCommit(d)
	case TypeSync:
		return decodeSync(d)
	case TypeIdentity:
		return decodeIdentity(d)
	case TypeAccount:
		return decodeAccount(d)
	case TypeInfo:
		return decodeInfo(d)
	case TypeHandle:
		return decodeHandle(d)
	case TypeMigrate:
		return decodeMigrate(d)
	case TypeTombstone:
		return decodeTombstone(d)
	}
	return &UnknownEvent{T: t, Op: OpMessage}, skipBody(d)
}

func decodeCommit(d *dagcbor.Decoder) (*CommitEvent, error) {
	e := &CommitEvent{}
	r := required{names: commitFields}
	err := readMap(d, func(k []byte) (err error) {
		r.mark(k)
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
		case "blobs": // deprecated, always []: validated, not kept
			err = skipCIDs(d)
		case "since":
			var null bool
			if null, err = d.ReadNull(); err == nil && !null {
				e.Since, err = readTID(d)
			}
		case "blocks":
			e.Blocks, err = d.ReadBytes()
		case "commit":
			e.Commit, err = d.ReadCID()
		case "rebase":
			e.Rebase, err = d.ReadBool()
		case "tooBig":
			e.TooBig, err = d.ReadBool()
		case "prevData":
			e.PrevData, err = d.ReadNullableCID()
		default: // the historical prev, and anything newer
			err = d.Skip()
		}
		return err
	})
	if err == nil {
		err = r.check()
	}
	return e, err
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

// decodeOps reads the #repoOp array: {action, path, cid (nullable), prev?}.
// The slice grows as ops are read: a count in the array header allocates
// nothing by itself.
func decodeOps(d *dagcbor.Decoder) ([]repo.Op, error) {
	n, err := d.ReadArrayHeader()
	if err != nil {
		return nil, err
	}
	ops := make([]repo.Op, 0, min(n, 64))
	for i := range n {
		var op repo.Op
		r := required{names: opFields}
		err := readMap(d, func(k []byte) (err error) {
			r.mark(k)
			switch string(k) {
			case "cid":
				op.CID, err = d.ReadNullableCID()
			case "path":
				op.Path, err = d.ReadText()
			case "prev":
				op.Prev, err = d.ReadNullableCID()
			case "action":
				var a string
				a, err = d.ReadText()
				op.Action = repo.Action(a)
			default:
				err = d.Skip()
			}
			return err
		})
		if err == nil {
			err = r.check()
		}
		if err != nil {
			return nil, fmt.Errorf("op %d: %w", i, err)
		}
		ops = append(ops, op)
	}
	return ops, nil
}

func decodeSync(d *dagcbor.Decoder) (*SyncEvent, error) {
	e := &SyncEvent{}
	r := required{names: syncFields}
	err := readMap(d, func(k []byte) (err error) {
		r.mark(k)
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
	if err == nil {
		err = r.check()
	}
	return e, err
}

func decodeIdentity(d *dagcbor.Decoder) (*IdentityEvent, error) {
	e := &IdentityEvent{}
	r := required{names: identityFields}
	err := readMap(d, func(k []byte) (err error) {
		r.mark(k)
		switch string(k) {
		case "did":
			e.DID, err = readDID(d)
		case "seq":
			e.Seq, err = readSeq(d)
		case "time":
			e.Time, err = d.ReadText()
		case "handle":
			e.Handle, err = readNullableText(d)
		default:
			err = d.Skip()
		}
		return err
	})
	if err == nil {
		err = r.check()
	}
	return e, err
}

func decodeAccount(d *dagcbor.Decoder) (*AccountEvent, error) {
	e := &AccountEvent{}
	r := required{names: accountFields}
	err := readMap(d, func(k []byte) (err error) {
		r.mark(k)
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
			e.Status, err = readNullableText(d)
		default:
			err = d.Skip()
		}
		return err
	})
	if err == nil {
		err = r.check()
	}
	return e, err
}

func decodeInfo(d *dagcbor.Decoder) (*InfoEvent, error) {
	e := &InfoEvent{}
	r := required{names: infoFields}
	err := readMap(d, func(k []byte) (err error) {
		r.mark(k)
		switch string(k) {
		case "name":
			e.Name, err = d.ReadText()
		case "message":
			e.Message, err = readNullableText(d)
		default:
			err = d.Skip()
		}
		return err
	})
	if err == nil {
		err = r.check()
	}
	return e, err
}

func decodeErrorBody(d *dagcbor.Decoder) (*ErrorFrameEvent, error) {
	e := &ErrorFrameEvent{}
	r := required{names: errorFields}
	err := readMap(d, func(k []byte) (err error) {
		r.mark(k)
		switch string(k) {
		case "error":
			e.Error, err = d.ReadText()
		case "message":
			e.Message, err = readNullableText(d)
		default:
			err = d.Skip()
		}
		return err
	})
	if err == nil {
		err = r.check()
	}
	return e, err
}

func decodeHandle(d *dagcbor.Decoder) (*HandleEvent, error) {
	e := &HandleEvent{}
	r := required{names: handleFields}
	err := readMap(d, func(k []byte) (err error) {
		r.mark(k)
		switch string(k) {
		case "did":
			e.DID, err = readDID(d)
		case "seq":
			e.Seq, err = readSeq(d)
		case "time":
			e.Time, err = d.ReadText()
		case "handle":
			e.Handle, err = d.ReadText()
		default:
			err = d.Skip()
		}
		return err
	})
	if err == nil {
		err = r.check()
	}
	return e, err
}

func decodeMigrate(d *dagcbor.Decoder) (*MigrateEvent, error) {
	e := &MigrateEvent{}
	r := required{names: migrateFields}
	err := readMap(d, func(k []byte) (err error) {
		r.mark(k)
		switch string(k) {
		case "did":
			e.DID, err = readDID(d)
		case "seq":
			e.Seq, err = readSeq(d)
		case "time":
			e.Time, err = d.ReadText()
		case "migrateTo":
			e.MigrateTo, err = readNullableText(d)
		default:
			err = d.Skip()
		}
		return err
	})
	if err == nil {
		err = r.check()
	}
	return e, err
}

func decodeTombstone(d *dagcbor.Decoder) (*TombstoneEvent, error) {
	e := &TombstoneEvent{}
	r := required{names: tombstoneFields}
	err := readMap(d, func(k []byte) (err error) {
		r.mark(k)
		switch string(k) {
		case "did":
			e.DID, err = readDID(d)
		case "seq":
			e.Seq, err = readSeq(d)
		case "time":
			e.Time, err = d.ReadText()
		default:
			err = d.Skip()
		}
		return err
	})
	if err == nil {
		err = r.check()
	}
	return e, err
}

// readSeq reads a seq: an integer in 1..MaxSeq (sync-spec §3.3).
func readSeq(d *dagcbor.Decoder) (int64, error) {
	s, err := d.ReadInt()
	if err != nil {
		return 0, err
	}
	if s < 1 || s > MaxSeq {
		return 0, fmt.Errorf("seq %d outside 1..2^53-1", s)
	}
	return s, nil
}

func readDID(d *dagcbor.Decoder) (string, error) {
	s, err := d.ReadText()
	if err != nil {
		return "", err
	}
	if _, err := syntax.ParseDID(s); err != nil {
		return "", err
	}
	return s, nil
}

func readTID(d *dagcbor.Decoder) (string, error) {
	s, err := d.ReadText()
	if err != nil {
		return "", err
	}
	if !IsTID(s) {
		return "", fmt.Errorf("%q is not a TID", s)
	}
	return s, nil
}

// readNullableText reads a string or null (null reads as "").
func readNullableText(d *dagcbor.Decoder) (string, error) {
	if null, err := d.ReadNull(); null || err != nil {
		return "", err
	}
	return d.ReadText()
}

// IsTID reports whether s has the syntax of a TID: 13 characters of the
// base32-sortable alphabet, the first one of 234567abcdefghij (the top bit
// zero). It accepts exactly what syntax.ParseTID accepts, without its
// regular expression (a fuzz test compares the two).
func IsTID(s string) bool {
	if len(s) != 13 || !tidFirst(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !(c >= '2' && c <= '7' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

func tidFirst(c byte) bool { return c >= '2' && c <= '7' || c >= 'a' && c <= 'j' }
