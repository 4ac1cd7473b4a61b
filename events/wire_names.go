package events

import "github.com/reservoir-atproto/reservoir/events/wire"

// The frame format moved to package events/wire. These names remain only
// while work in progress elsewhere moves over; new code uses wire.
//
// Deprecated: use the same names in events/wire.
type (
	Commit    = wire.Commit
	Sync      = wire.Sync
	Identity  = wire.Identity
	Account   = wire.Account
	Handle    = wire.Handle
	Migrate   = wire.Migrate
	Tombstone = wire.Tombstone

	Event           = wire.Event
	DIDEvent        = wire.DIDEvent
	CommitEvent     = wire.CommitEvent
	SyncEvent       = wire.SyncEvent
	IdentityEvent   = wire.IdentityEvent
	AccountEvent    = wire.AccountEvent
	InfoEvent       = wire.InfoEvent
	ErrorFrameEvent = wire.ErrorFrameEvent
	HandleEvent     = wire.HandleEvent
	MigrateEvent    = wire.MigrateEvent
	TombstoneEvent  = wire.TombstoneEvent
	UnknownEvent    = wire.UnknownEvent
)

// Deprecated: use the same names in events/wire.
const (
	TimeFormat    = wire.TimeFormat
	MaxFrameSize  = wire.MaxFrameSize
	OpMessage     = wire.OpMessage
	OpError       = wire.OpError
	TypeCommit    = wire.TypeCommit
	TypeSync      = wire.TypeSync
	TypeIdentity  = wire.TypeIdentity
	TypeAccount   = wire.TypeAccount
	TypeInfo      = wire.TypeInfo
	TypeHandle    = wire.TypeHandle
	TypeMigrate   = wire.TypeMigrate
	TypeTombstone = wire.TypeTombstone
)

// Deprecated: use the same names in events/wire.
var (
	ErrMalformedFrame = wire.ErrMalformedFrame
	DecodeFrame       = wire.DecodeFrame
	InfoFrame         = wire.InfoFrame
	ErrorFrame        = wire.ErrorFrame
	FrameType         = wire.FrameType
)
