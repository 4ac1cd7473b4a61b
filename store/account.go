package store

import (
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

// Status is an account's hosting status at this service (sync-spec §7.1).
// The empty Status means active.
type Status string

const (
	StatusActive         Status = ""
	StatusTakendown      Status = "takendown"
	StatusSuspended      Status = "suspended"
	StatusDeleted        Status = "deleted"
	StatusDeactivated    Status = "deactivated"
	StatusDesynchronized Status = "desynchronized"
	StatusThrottled      Status = "throttled"
)

// Active reports whether an account with this status is served. A
// desynchronized or throttled repository is still active.
func (s Status) Active() bool {
	return s == StatusActive || s == StatusDesynchronized || s == StatusThrottled
}

// ParseStatus accepts the statuses of the lexicons ("active" or empty for
// active).
func ParseStatus(s string) (Status, error) {
	switch st := Status(s); st {
	case "active":
		return StatusActive, nil
	case StatusActive, StatusTakendown, StatusSuspended, StatusDeleted, StatusDeactivated, StatusDesynchronized, StatusThrottled:
		return st, nil
	}
	return "", fmt.Errorf("store: unknown account status %q", s)
}

// Head is a repository's current commit.
type Head struct {
	Commit cid.Cid
	Rev    string
	Data   cid.Cid
}

// Defined reports whether the repository has a commit.
func (h Head) Defined() bool { return h.Commit.Defined() }

// Account is one repository the store holds, hosted here or mirrored.
type Account struct {
	UID       uint64 // assigned by the store when the account is created
	DID       string
	Handle    string
	Status    Status
	Hosted    bool   // hosted by this service (false: mirrored from Host)
	Host      string // upstream hostname of a mirrored account
	CreatedAt time.Time
	Head      Head // read from its own key; kept up to date by Apply

	// Upstream is the status the upstream host last reported (#account) for
	// a mirrored account; Status is then the combined status served here,
	// which our own takedown or desynchronization may override (sync-spec
	// §7.1, hop by hop).
	Upstream Status
}

// ErrNotFound is returned when an account, block, record or event is not in
// the store.
var ErrNotFound = errors.New("not found")

// encodeAccount writes the account record (Head is stored apart).
func encodeAccount(a *Account) []byte {
	m := map[string]any{
		"uid":       int64(a.UID),
		"did":       a.DID,
		"hosted":    a.Hosted,
		"createdAt": a.CreatedAt.UnixMicro(),
	}
	if a.Handle != "" {
		m["handle"] = a.Handle
	}
	if a.Status != StatusActive {
		m["status"] = string(a.Status)
	}
	if a.Host != "" {
		m["host"] = a.Host
	}
	if a.Upstream != StatusActive {
		m["upstream"] = string(a.Upstream)
	}
	b, err := dagcbor.Marshal(m)
	if err != nil {
		panic("store: encoding an account: " + err.Error()) // only strings, ints and bools
	}
	return b
}

func decodeAccount(b []byte) (*Account, error) {
	v, err := dagcbor.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("store: decoding account: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("store: decoding account: not a map")
	}
	a := &Account{}
	uid, _ := m["uid"].(int64)
	a.UID = uint64(uid)
	a.DID, _ = m["did"].(string)
	a.Hosted, _ = m["hosted"].(bool)
	created, _ := m["createdAt"].(int64)
	a.CreatedAt = time.UnixMicro(created).UTC()
	a.Handle, _ = m["handle"].(string)
	status, _ := m["status"].(string)
	a.Status = Status(status)
	a.Host, _ = m["host"].(string)
	upstream, _ := m["upstream"].(string)
	a.Upstream = Status(upstream)
	if a.UID == 0 || a.DID == "" {
		return nil, errors.New("store: decoding account: missing uid or did")
	}
	return a, nil
}

// encodeHead: commit CID, data CID (each length-prefixed) and the rev.
func encodeHead(h Head) []byte {
	c, d := h.Commit.KeyString(), h.Data.KeyString()
	b := make([]byte, 0, 2+len(c)+len(d)+len(h.Rev))
	b = append(b, byte(len(c)))
	b = append(b, c...)
	b = append(b, byte(len(d)))
	b = append(b, d...)
	return append(b, h.Rev...)
}

func decodeHead(b []byte) (Head, error) {
	var h Head
	take := func() (cid.Cid, error) {
		if len(b) == 0 || len(b) < 1+int(b[0]) {
			return cid.Undef, errors.New("store: decoding head: truncated")
		}
		n := int(b[0])
		raw := b[1 : 1+n]
		b = b[1+n:]
		if n == 0 {
			return cid.Undef, nil
		}
		return cid.Cast(raw)
	}
	var err error
	if h.Commit, err = take(); err != nil {
		return h, err
	}
	if h.Data, err = take(); err != nil {
		return h, err
	}
	h.Rev = string(b)
	return h, nil
}
