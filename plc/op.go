package plc

import (
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

// The values of an operation's "type" field.
const (
	TypeOperation = "plc_operation"
	TypeTombstone = "plc_tombstone"
	TypeCreate    = "create" // legacy genesis format
)

// Names atproto uses inside operations.
const (
	VerificationMethodAtproto = "atproto"                   // verificationMethods key of the repo signing key
	ServiceAtprotoPDS         = "atproto_pds"               // services key of the PDS
	ServiceTypePDS            = "AtprotoPersonalDataServer" // its type
)

// Op is one did:plc operation: an *Operation, a *Tombstone or a
// *LegacyCreate. The set is closed.
//
// An Op is a plain value: nothing is validated by holding one. ParseOp and
// DecodeOp check the shape, Validate checks everything else.
type Op interface {
	// Type is the operation's "type" field.
	Type() string
	// PrevCID is the "prev" field: the CID string of the operation this
	// one follows, or "" for a genesis operation (prev null).
	PrevCID() string
	// Signature is the "sig" field, "" while unsigned.
	Signature() string
	// UnsignedCBOR is the DAG-CBOR encoding without "sig": the signed bytes.
	UnsignedCBOR() []byte
	// SignedCBOR is the DAG-CBOR encoding with "sig": the hashed bytes.
	SignedCBOR() []byte
	// CID is the CID of SignedCBOR (CIDv1, dag-cbor, sha2-256): what the
	// next operation's "prev" names and what the directory's logs show.
	CID() cid.Cid
	// MarshalJSON writes the operation's JSON form, keys in the
	// canonical DAG-CBOR order.
	MarshalJSON() ([]byte, error)

	appendCBOR(b []byte, withSig bool) []byte
	setSig(sig string)
}

// Service is one entry of an operation's "services" map.
type Service struct {
	Type     string `json:"type"`
	Endpoint string `json:"endpoint"`
}

// Operation is a regular "plc_operation": a genesis operation when Prev
// is "", an update otherwise. It carries the whole state of the DID.
type Operation struct {
	RotationKeys        []string           // did:keys, highest authority first
	VerificationMethods map[string]string  // id (no "#") → did:key
	AlsoKnownAs         []string           // URIs, "at://<handle>" first for atproto
	Services            map[string]Service // id (no "#") → service
	Prev                string             // CID string of the previous operation; "" is null
	Sig                 string             // base64url signature; "" while unsigned
}

// Tombstone is a "plc_tombstone": it deactivates the DID for good (unless
// recovered within the recovery window, like any other operation).
type Tombstone struct {
	Prev string // never ""
	Sig  string
}

// LegacyCreate is the deprecated "create" genesis format. It is never
// accepted as a new operation by a directory, but old DIDs are derived
// from it, so logs that start with one must still be verified.
type LegacyCreate struct {
	SigningKey  string // did:key
	RecoveryKey string // did:key
	Handle      string // bare handle, no at://
	Service     string // PDS URL
	Sig         string
}

func (*Operation) Type() string    { return TypeOperation }
func (*Tombstone) Type() string    { return TypeTombstone }
func (*LegacyCreate) Type() string { return TypeCreate }

func (o *Operation) PrevCID() string  { return o.Prev }
func (t *Tombstone) PrevCID() string  { return t.Prev }
func (*LegacyCreate) PrevCID() string { return "" }

func (o *Operation) Signature() string    { return o.Sig }
func (t *Tombstone) Signature() string    { return t.Sig }
func (l *LegacyCreate) Signature() string { return l.Sig }

func (o *Operation) setSig(s string)    { o.Sig = s }
func (t *Tombstone) setSig(s string)    { t.Sig = s }
func (l *LegacyCreate) setSig(s string) { l.Sig = s }

func (o *Operation) UnsignedCBOR() []byte    { return o.appendCBOR(nil, false) }
func (o *Operation) SignedCBOR() []byte      { return o.appendCBOR(nil, true) }
func (t *Tombstone) UnsignedCBOR() []byte    { return t.appendCBOR(nil, false) }
func (t *Tombstone) SignedCBOR() []byte      { return t.appendCBOR(nil, true) }
func (l *LegacyCreate) UnsignedCBOR() []byte { return l.appendCBOR(nil, false) }
func (l *LegacyCreate) SignedCBOR() []byte   { return l.appendCBOR(nil, true) }

func (o *Operation) CID() cid.Cid    { return dagcbor.SumCBOR(o.SignedCBOR()) }
func (t *Tombstone) CID() cid.Cid    { return dagcbor.SumCBOR(t.SignedCBOR()) }
func (l *LegacyCreate) CID() cid.Cid { return dagcbor.SumCBOR(l.SignedCBOR()) }

var (
	_ Op = (*Operation)(nil)
	_ Op = (*Tombstone)(nil)
	_ Op = (*LegacyCreate)(nil)
)

// Clone returns a deep copy of o.
func (o *Operation) Clone() *Operation {
	c := &Operation{
		RotationKeys: append([]string{}, o.RotationKeys...),
		AlsoKnownAs:  append([]string{}, o.AlsoKnownAs...),
		Prev:         o.Prev,
		Sig:          o.Sig,
	}
	c.VerificationMethods = make(map[string]string, len(o.VerificationMethods))
	for k, v := range o.VerificationMethods {
		c.VerificationMethods[k] = v
	}
	c.Services = make(map[string]Service, len(o.Services))
	for k, v := range o.Services {
		c.Services[k] = v
	}
	return c
}

// Normalize returns the regular form of a genesis or update operation, as
// the reference directory reads it: a *LegacyCreate becomes an Operation
// with rotationKeys [recoveryKey, signingKey], the signing key as
// verificationMethods.atproto, "at://"+handle and the service as
// atproto_pds. Prev and Sig are kept; the result is a copy. A tombstone has
// no regular form and returns nil.
func Normalize(op Op) *Operation {
	switch o := op.(type) {
	case *Operation:
		return o.Clone()
	case *LegacyCreate:
		return &Operation{
			RotationKeys:        []string{o.RecoveryKey, o.SigningKey},
			VerificationMethods: map[string]string{VerificationMethodAtproto: o.SigningKey},
			AlsoKnownAs:         []string{ensureAtprotoPrefix(o.Handle)},
			Services: map[string]Service{ServiceAtprotoPDS: {
				Type:     ServiceTypePDS,
				Endpoint: ensureHTTPPrefix(o.Service),
			}},
			Sig: o.Sig,
		}
	}
	return nil
}
