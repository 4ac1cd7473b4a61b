package wire

import (
	"time"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/repo"
)

// TimeFormat is how event times are written: RFC 3339, UTC, milliseconds.
const TimeFormat = "2006-01-02T15:04:05.000Z"

// MaxFrameSize is the hard limit of a firehose frame, encoding included
// (sync-spec §3.2).
const MaxFrameSize = 5_000_000

// MaxSeq is the largest seq the protocol allows (2^53-1, sync-spec §3.3).
const MaxSeq = 1<<53 - 1

// Frame header ops.
const (
	OpMessage = 1
	OpError   = -1
)

// Event types as the frame header names them.
const (
	TypeCommit   = "#commit"
	TypeSync     = "#sync"
	TypeIdentity = "#identity"
	TypeAccount  = "#account"
	TypeInfo     = "#info"
)

// Legacy event types, removed from the lexicon in 2025 (sync-spec §1.3).
// A server emits them only next to the current event they duplicate (a
// relay run with --legacy-events); DecodeFrame reads them from older hosts.
const (
	TypeHandle    = "#handle"
	TypeMigrate   = "#migrate"
	TypeTombstone = "#tombstone"
)

// appendMessageHeader writes {t: typ, op: 1}; "t" sorts before "op".
func appendMessageHeader(b []byte, typ string) []byte {
	b = dagcbor.AppendMapHeader(b, 2)
	b = dagcbor.AppendText(b, "t")
	b = dagcbor.AppendText(b, typ)
	b = dagcbor.AppendText(b, "op")
	return dagcbor.AppendInt(b, OpMessage)
}

func appendTime(b []byte, t time.Time) []byte {
	return dagcbor.AppendText(b, t.UTC().Format(TimeFormat))
}

// Commit is a #commit event (sync 1.1).
type Commit struct {
	Repo     string
	Rev      string
	Since    string // "" encodes null: the repository's first commit
	Commit   cid.Cid
	PrevData cid.Cid // cid.Undef omits the field
	Blocks   []byte  // CAR slice
	Ops      []repo.Op
	Time     time.Time
}

// AppendFrame writes the whole #commit frame with seq. Keys in canonical
// order: ops rev seq repo time blobs since blocks commit rebase tooBig
// prevData.
func (e *Commit) AppendFrame(b []byte, seq int64) []byte {
	b = appendMessageHeader(b, TypeCommit)
	n := 11
	if e.PrevData.Defined() {
		n++
	}
	b = dagcbor.AppendMapHeader(b, n)
	b = dagcbor.AppendText(b, "ops")
	b = dagcbor.AppendArrayHeader(b, len(e.Ops))
	for i := range e.Ops {
		b = appendOp(b, &e.Ops[i])
	}
	b = dagcbor.AppendText(b, "rev")
	b = dagcbor.AppendText(b, e.Rev)
	b = dagcbor.AppendText(b, "seq")
	b = dagcbor.AppendInt(b, seq)
	b = dagcbor.AppendText(b, "repo")
	b = dagcbor.AppendText(b, e.Repo)
	b = dagcbor.AppendText(b, "time")
	b = appendTime(b, e.Time)
	b = dagcbor.AppendText(b, "blobs")
	b = dagcbor.AppendArrayHeader(b, 0)
	b = dagcbor.AppendText(b, "since")
	if e.Since == "" {
		b = dagcbor.AppendNull(b)
	} else {
		b = dagcbor.AppendText(b, e.Since)
	}
	b = dagcbor.AppendText(b, "blocks")
	b = dagcbor.AppendBytes(b, e.Blocks)
	b = dagcbor.AppendText(b, "commit")
	b = dagcbor.AppendCID(b, e.Commit)
	b = dagcbor.AppendText(b, "rebase")
	b = dagcbor.AppendBool(b, false)
	b = dagcbor.AppendText(b, "tooBig")
	b = dagcbor.AppendBool(b, false)
	if e.PrevData.Defined() {
		b = dagcbor.AppendText(b, "prevData")
		b = dagcbor.AppendCID(b, e.PrevData)
	}
	return b
}

// appendOp writes a #repoOp: cid (null for deletes), path, prev (absent for
// creates), action.
func appendOp(b []byte, op *repo.Op) []byte {
	n := 3
	if op.Prev.Defined() {
		n++
	}
	b = dagcbor.AppendMapHeader(b, n)
	b = dagcbor.AppendText(b, "cid")
	b = dagcbor.AppendNullableCID(b, op.CID)
	b = dagcbor.AppendText(b, "path")
	b = dagcbor.AppendText(b, op.Path)
	if op.Prev.Defined() {
		b = dagcbor.AppendText(b, "prev")
		b = dagcbor.AppendCID(b, op.Prev)
	}
	b = dagcbor.AppendText(b, "action")
	return dagcbor.AppendText(b, string(op.Action))
}

// Sync is a #sync event: the repository's current commit, nothing else.
type Sync struct {
	DID    string
	Rev    string
	Blocks []byte // CAR holding only the commit block
	Time   time.Time
}

// AppendFrame writes the #sync frame: did rev seq time blocks.
func (e *Sync) AppendFrame(b []byte, seq int64) []byte {
	b = appendMessageHeader(b, TypeSync)
	b = dagcbor.AppendMapHeader(b, 5)
	b = dagcbor.AppendText(b, "did")
	b = dagcbor.AppendText(b, e.DID)
	b = dagcbor.AppendText(b, "rev")
	b = dagcbor.AppendText(b, e.Rev)
	b = dagcbor.AppendText(b, "seq")
	b = dagcbor.AppendInt(b, seq)
	b = dagcbor.AppendText(b, "time")
	b = appendTime(b, e.Time)
	b = dagcbor.AppendText(b, "blocks")
	return dagcbor.AppendBytes(b, e.Blocks)
}

// Identity is an #identity event. Handle "" omits the field.
type Identity struct {
	DID    string
	Handle string
	Time   time.Time
}

// AppendFrame writes the #identity frame: did seq time handle.
func (e *Identity) AppendFrame(b []byte, seq int64) []byte {
	b = appendMessageHeader(b, TypeIdentity)
	n := 3
	if e.Handle != "" {
		n++
	}
	b = dagcbor.AppendMapHeader(b, n)
	b = dagcbor.AppendText(b, "did")
	b = dagcbor.AppendText(b, e.DID)
	b = dagcbor.AppendText(b, "seq")
	b = dagcbor.AppendInt(b, seq)
	b = dagcbor.AppendText(b, "time")
	b = appendTime(b, e.Time)
	if e.Handle != "" {
		b = dagcbor.AppendText(b, "handle")
		b = dagcbor.AppendText(b, e.Handle)
	}
	return b
}

// Account is an #account event. Status "" (active) omits the field.
type Account struct {
	DID    string
	Active bool
	Status string
	Time   time.Time
}

// AppendFrame writes the #account frame: did seq time active status.
func (e *Account) AppendFrame(b []byte, seq int64) []byte {
	b = appendMessageHeader(b, TypeAccount)
	n := 4
	if e.Status != "" {
		n++
	}
	b = dagcbor.AppendMapHeader(b, n)
	b = dagcbor.AppendText(b, "did")
	b = dagcbor.AppendText(b, e.DID)
	b = dagcbor.AppendText(b, "seq")
	b = dagcbor.AppendInt(b, seq)
	b = dagcbor.AppendText(b, "time")
	b = appendTime(b, e.Time)
	b = dagcbor.AppendText(b, "active")
	b = dagcbor.AppendBool(b, e.Active)
	if e.Status != "" {
		b = dagcbor.AppendText(b, "status")
		b = dagcbor.AppendText(b, e.Status)
	}
	return b
}

// InfoFrame returns an #info frame (not persisted, no seq).
func InfoFrame(name, message string) []byte {
	b := appendMessageHeader(nil, TypeInfo)
	n := 1
	if message != "" {
		n++
	}
	b = dagcbor.AppendMapHeader(b, n)
	b = dagcbor.AppendText(b, "name")
	b = dagcbor.AppendText(b, name)
	if message != "" {
		b = dagcbor.AppendText(b, "message")
		b = dagcbor.AppendText(b, message)
	}
	return b
}

// ErrorFrame returns an error frame: header {op: -1}, body {error, message}.
func ErrorFrame(name, message string) []byte {
	b := dagcbor.AppendMapHeader(nil, 1)
	b = dagcbor.AppendText(b, "op")
	b = dagcbor.AppendInt(b, OpError)
	b = dagcbor.AppendMapHeader(b, 2)
	b = dagcbor.AppendText(b, "error")
	b = dagcbor.AppendText(b, name)
	b = dagcbor.AppendText(b, "message")
	return dagcbor.AppendText(b, message)
}

// Handle is the legacy #handle event (sync-spec §1.3), emitted only next to
// an #identity for consumers that still expect it (--legacy-events).
type Handle struct {
	DID    string
	Handle string
	Time   time.Time
}

// AppendFrame writes the #handle frame: did seq time handle.
func (e *Handle) AppendFrame(b []byte, seq int64) []byte {
	b = appendMessageHeader(b, TypeHandle)
	b = dagcbor.AppendMapHeader(b, 4)
	b = dagcbor.AppendText(b, "did")
	b = dagcbor.AppendText(b, e.DID)
	b = dagcbor.AppendText(b, "seq")
	b = dagcbor.AppendInt(b, seq)
	b = dagcbor.AppendText(b, "time")
	b = appendTime(b, e.Time)
	b = dagcbor.AppendText(b, "handle")
	return dagcbor.AppendText(b, e.Handle)
}

// Migrate is the legacy #migrate event (sync-spec §1.3), emitted only next
// to the #identity of an account that moved hosts (--legacy-events).
// MigrateTo "" writes null (the field is required and nullable).
type Migrate struct {
	DID       string
	MigrateTo string
	Time      time.Time
}

// AppendFrame writes the #migrate frame: did seq time migrateTo.
func (e *Migrate) AppendFrame(b []byte, seq int64) []byte {
	b = appendMessageHeader(b, TypeMigrate)
	b = dagcbor.AppendMapHeader(b, 4)
	b = dagcbor.AppendText(b, "did")
	b = dagcbor.AppendText(b, e.DID)
	b = dagcbor.AppendText(b, "seq")
	b = dagcbor.AppendInt(b, seq)
	b = dagcbor.AppendText(b, "time")
	b = appendTime(b, e.Time)
	b = dagcbor.AppendText(b, "migrateTo")
	if e.MigrateTo == "" {
		return dagcbor.AppendNull(b)
	}
	return dagcbor.AppendText(b, e.MigrateTo)
}

// Tombstone is the legacy #tombstone event (sync-spec §1.3), emitted only
// next to the #account of a deletion (--legacy-events).
type Tombstone struct {
	DID  string
	Time time.Time
}

// AppendFrame writes the #tombstone frame: did seq time.
func (e *Tombstone) AppendFrame(b []byte, seq int64) []byte {
	b = appendMessageHeader(b, TypeTombstone)
	b = dagcbor.AppendMapHeader(b, 3)
	b = dagcbor.AppendText(b, "did")
	b = dagcbor.AppendText(b, e.DID)
	b = dagcbor.AppendText(b, "seq")
	b = dagcbor.AppendInt(b, seq)
	b = dagcbor.AppendText(b, "time")
	return appendTime(b, e.Time)
}
