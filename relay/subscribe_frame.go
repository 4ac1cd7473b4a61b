package relay

import (
	"errors"
	"fmt"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

// errMalformedFrame is the class of upstream frames whose header or body is
// not the DAG-CBOR a frame must be. The spec calls broken framing a hard
// error: the subscription drops the connection and reconnects.
var errMalformedFrame = errors.New("relay: malformed upstream frame")

// frameHead is what a subscription reads of an upstream frame to route it:
// the header, the seq of a message, the name of an error. The body is
// otherwise left to the ingest, which decodes it strictly.
type frameHead struct {
	Op     int64
	Type   string // header t, for messages ("#commit", ...)
	Seq    int64
	HasSeq bool
	// DID is the account of the event: repo of a #commit, did of the
	// others ("" when absent).
	DID string
	// Error and Message are the payload of an error frame (op -1).
	Error, Message string
}

// didField names the account field of the event types that have one (the
// fields of other types are not read: unknown types are the ingest's to
// count and skip).
var didField = map[string]string{"#commit": "repo", "#sync": "did", "#identity": "did", "#account": "did"}

// readFrameHead reads a frame's header and the fields of its body the
// subscription needs (seq, the account, an error's name). It checks the CBOR of the header and of the body's
// top level (keys in canonical order, known fields of the right type), not
// the values it skips: those are the ingest's to verify.
func readFrameHead(frame []byte) (frameHead, error) {
	var h frameHead
	d := dagcbor.NewDecoder(frame)
	n, err := d.ReadMapHeader()
	if err != nil {
		return h, fmt.Errorf("%w: header: %w", errMalformedFrame, err)
	}
	var prev []byte
	hasOp := false
	for range n {
		k, err := d.ReadMapKey(prev)
		if err != nil {
			return h, fmt.Errorf("%w: header: %w", errMalformedFrame, err)
		}
		prev = k
		switch string(k) {
		case "op":
			h.Op, err = d.ReadInt()
			hasOp = true
		case "t":
			h.Type, err = d.ReadText()
		default:
			err = d.Skip()
		}
		if err != nil {
			return h, fmt.Errorf("%w: header %q: %w", errMalformedFrame, k, err)
		}
	}
	if !hasOp {
		return h, fmt.Errorf("%w: header without op", errMalformedFrame)
	}
	if h.Op != 1 && h.Op != -1 {
		return h, nil // unknown op: ignored, body unread
	}
	if n, err = d.ReadMapHeader(); err != nil {
		return h, fmt.Errorf("%w: body: %w", errMalformedFrame, err)
	}
	prev = nil
	for range n {
		k, err := d.ReadMapKey(prev)
		if err != nil {
			return h, fmt.Errorf("%w: body: %w", errMalformedFrame, err)
		}
		prev = k
		switch {
		case h.Op == 1 && string(k) == "seq":
			h.Seq, err = d.ReadInt()
			h.HasSeq = true
		case h.Op == 1 && string(k) == didField[h.Type]:
			h.DID, err = d.ReadText()
		case h.Op == -1 && string(k) == "error":
			h.Error, err = d.ReadText()
		case h.Op == -1 && string(k) == "message":
			h.Message, err = d.ReadText()
		default:
			err = d.Skip()
		}
		if err != nil {
			return h, fmt.Errorf("%w: body field %q: %w", errMalformedFrame, k, err)
		}
	}
	if err := d.Done(); err != nil {
		return h, fmt.Errorf("%w: %w", errMalformedFrame, err)
	}
	if h.HasSeq && h.Seq < 1 {
		return h, fmt.Errorf("%w: seq %d", errMalformedFrame, h.Seq)
	}
	return h, nil
}
