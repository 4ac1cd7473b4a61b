package plc

import (
	"fmt"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

// TimeFormat is how directories write createdAt: JavaScript's
// toISOString, always UTC with milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// FormatTime writes t in TimeFormat.
func FormatTime(t time.Time) string { return t.UTC().Format(TimeFormat) }

// MarshalJSON writes the entry as the audit log and the legacy export
// do: {"did", "operation", "cid", "nullified", "createdAt"}.
func (e LogEntry) MarshalJSON() ([]byte, error) {
	return e.AppendJSON(nil), nil
}

// AppendJSON appends the entry's JSON form to b.
func (e LogEntry) AppendJSON(b []byte) []byte {
	b = append(b, `{"did":`...)
	b = appendJSONString(b, e.DID.String())
	b = append(b, `,"operation":`...)
	b = AppendJSON(b, e.Op)
	b = append(b, `,"cid":`...)
	b = appendJSONString(b, e.CID.String())
	b = append(b, `,"nullified":`...)
	if e.Nullified {
		b = append(b, "true"...)
	} else {
		b = append(b, "false"...)
	}
	b = append(b, `,"createdAt":`...)
	b = appendJSONString(b, FormatTime(e.CreatedAt))
	return append(b, '}')
}

// UnmarshalJSON reads an audit log entry. The entry must be data-model
// JSON with the five fields (others are ignored) in their JSON types, the
// operation is parsed strictly (ParseOp), and the entry's cid must be the
// operation's CID.
func (e *LogEntry) UnmarshalJSON(data []byte) error {
	v, err := dagcbor.FromJSON(data)
	if err != nil {
		return fmt.Errorf("plc: log entry: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("plc: log entry is not an object")
	}
	var strs [3]string
	for i, k := range [...]string{"did", "cid", "createdAt"} {
		if strs[i], ok = m[k].(string); !ok {
			return fmt.Errorf("plc: log entry: %q must be a string", k)
		}
	}
	nullified, ok := m["nullified"].(bool)
	if !ok {
		return fmt.Errorf("plc: log entry: \"nullified\" must be a boolean")
	}
	did, err := syntax.ParseDID(strs[0])
	if err != nil {
		return fmt.Errorf("plc: log entry: %w", err)
	}
	op, err := fromModel(m["operation"])
	if err != nil {
		return fmt.Errorf("plc: log entry of %s: %w", did, err)
	}
	c, err := cid.Decode(strs[1])
	if err != nil {
		return fmt.Errorf("plc: log entry of %s: cid: %w", did, err)
	}
	if !c.Equals(op.CID()) {
		return reject(ErrAuditLog, "entry of %s claims cid %s, but its operation's CID is %s", did, c, op.CID())
	}
	created, err := time.Parse(time.RFC3339Nano, strs[2])
	if err != nil {
		return fmt.Errorf("plc: log entry of %s: createdAt: %w", did, err)
	}
	*e = LogEntry{DID: did, Op: op, CID: c, Nullified: nullified, CreatedAt: created.UTC()}
	return nil
}

// VerifyAuditLog checks a DID's whole audit log as a directory served it:
// every entry is for did and carries its operation's CID, entries are in
// createdAt order, and replaying the operations in order through the hard
// rules of Validate (each at its own createdAt; the size and count limits
// of new operations are not applied to old ones) accepts every one of them
// and nullifies exactly the entries marked nullified. It returns the
// current state, or nil if the DID is tombstoned.
func VerifyAuditLog(did syntax.DID, log []LogEntry) (*DocumentData, error) {
	if len(log) == 0 {
		return nil, reject(ErrAuditLog, "the log of %s is empty", did)
	}
	replay := make([]LogEntry, 0, len(log))
	for i, e := range log {
		if e.DID != did {
			return nil, reject(ErrAuditLog, "entry %d is for %s, not %s", i, e.DID, did)
		}
		if !e.CID.Equals(e.Op.CID()) {
			return nil, reject(ErrAuditLog, "entry %d claims cid %s, but its operation's CID is %s", i, e.CID, e.Op.CID())
		}
		if i > 0 && e.CreatedAt.Before(log[i-1].CreatedAt) {
			return nil, reject(ErrAuditLog, "entry %d was created before entry %d", i, i-1)
		}
		acc, err := validateNext(did, active(replay), e.Op, e.CreatedAt)
		if err != nil {
			return nil, fmt.Errorf("plc: audit log of %s, entry %d (%s): %w", did, i, e.CID, err)
		}
		for _, n := range acc.Nullified {
			for j := range replay {
				if replay[j].CID.Equals(n) {
					replay[j].Nullified = true
				}
			}
		}
		replay = append(replay, LogEntry{DID: did, Op: e.Op, CID: e.CID, CreatedAt: e.CreatedAt})
	}
	for i := range log {
		if log[i].Nullified != replay[i].Nullified {
			return nil, reject(ErrAuditLog, "entry %d (%s) is marked nullified=%t, but the replay says %t", i, log[i].CID, log[i].Nullified, replay[i].Nullified)
		}
	}
	act := active(replay)
	return Data(did, act[len(act)-1].Op), nil
}
