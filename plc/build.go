package plc

import (
	"fmt"
	"strings"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Account is what an atproto account puts in its DID: a handle, the PDS
// endpoint, the repository signing key and the rotation keys.
type Account struct {
	Handle       syntax.Handle
	Endpoint     string             // PDS URL, e.g. the host's --public-url
	SigningKey   atcrypto.PublicKey // verificationMethods.atproto
	RotationKeys []atcrypto.PublicKey
	// highest authority first: a key may undo, within RecoveryWindow, what a
	// later key in this list signed.
}

// NewGenesis builds the unsigned genesis operation of an account:
// rotationKeys, verificationMethods.atproto = the signing key,
// alsoKnownAs = ["at://<handle>"], services.atproto_pds = the endpoint,
// prev null.
func NewGenesis(a Account) (*Operation, error) {
	if a.SigningKey == nil || len(a.RotationKeys) == 0 {
		return nil, fmt.Errorf("plc: genesis needs a signing key and at least one rotation key")
	}
	op := &Operation{
		VerificationMethods: map[string]string{VerificationMethodAtproto: a.SigningKey.DIDKey()},
		AlsoKnownAs:         []string{"at://" + a.Handle.Normalize().String()},
		Services:            map[string]Service{ServiceAtprotoPDS: {Type: ServiceTypePDS, Endpoint: a.Endpoint}},
	}
	for _, k := range a.RotationKeys {
		op.RotationKeys = append(op.RotationKeys, k.DIDKey())
	}
	return op, nil
}

// CreateGenesis builds the genesis operation of an account, signs it with
// signer (which must be one of its rotation keys) and derives the DID.
func CreateGenesis(a Account, signer atcrypto.PrivateKey) (*Operation, syntax.DID, error) {
	op, err := NewGenesis(a)
	if err != nil {
		return nil, "", err
	}
	pub, err := signer.PublicKey()
	if err != nil {
		return nil, "", fmt.Errorf("plc: genesis signer: %w", err)
	}
	if !contains(op.RotationKeys, pub.DIDKey()) {
		return nil, "", fmt.Errorf("plc: genesis must be signed by one of its rotation keys, and %s is not one", pub.DIDKey())
	}
	if err := Sign(op, signer); err != nil {
		return nil, "", err
	}
	did, err := DIDFromGenesis(op)
	if err != nil {
		return nil, "", err
	}
	return op, did, nil
}

// Change edits an operation being built by Update.
type Change func(*Operation)

// Update builds the unsigned operation that follows prev: a copy of prev's
// state (a legacy create is normalized first), with "prev" set to prev's
// CID, then each change applied. It fails if prev is a tombstone.
func Update(prev Op, changes ...Change) (*Operation, error) {
	op := Normalize(prev)
	if op == nil {
		return nil, fmt.Errorf("plc: %w: no operation can follow a tombstone", ErrTombstoned)
	}
	op.Prev = prev.CID().String()
	op.Sig = ""
	for _, c := range changes {
		c(op)
	}
	return op, nil
}

// SetHandle replaces the first "at://" entry of alsoKnownAs with the
// handle, or puts it first if there is none.
func SetHandle(h syntax.Handle) Change {
	uri := "at://" + h.Normalize().String()
	return func(op *Operation) {
		for i, aka := range op.AlsoKnownAs {
			if strings.HasPrefix(aka, "at://") {
				op.AlsoKnownAs[i] = uri
				return
			}
		}
		op.AlsoKnownAs = append([]string{uri}, op.AlsoKnownAs...)
	}
}

// SetSigningKey sets verificationMethods.atproto.
func SetSigningKey(k atcrypto.PublicKey) Change {
	return func(op *Operation) { op.VerificationMethods[VerificationMethodAtproto] = k.DIDKey() }
}

// SetEndpoint sets the atproto_pds service.
func SetEndpoint(url string) Change {
	return func(op *Operation) {
		op.Services[ServiceAtprotoPDS] = Service{Type: ServiceTypePDS, Endpoint: url}
	}
}

// SetRotationKeys replaces the rotation keys, highest authority first.
func SetRotationKeys(keys ...atcrypto.PublicKey) Change {
	return func(op *Operation) {
		op.RotationKeys = op.RotationKeys[:0]
		for _, k := range keys {
			op.RotationKeys = append(op.RotationKeys, k.DIDKey())
		}
	}
}

// NewTombstone builds the unsigned tombstone that follows prev.
func NewTombstone(prev Op) *Tombstone {
	return &Tombstone{Prev: prev.CID().String()}
}

// ensureHTTPPrefix and ensureAtprotoPrefix normalize the fields of a
// legacy create the way the reference library does.
func ensureHTTPPrefix(s string) string {
	if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
		return s
	}
	return "https://" + s
}

func ensureAtprotoPrefix(s string) string {
	if strings.HasPrefix(s, "at://") {
		return s
	}
	s = strings.Replace(s, "http://", "", 1)
	s = strings.Replace(s, "https://", "", 1)
	return "at://" + s
}
