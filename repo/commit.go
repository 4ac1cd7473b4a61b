package repo

import (
	"errors"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/sigverify"
)

// Version is the repository format version this package writes.
const Version = 3

// Commit is the signed root object of a repository (repo format v3).
type Commit struct {
	DID     syntax.DID
	Version int64
	Data    cid.Cid    // root of the MST
	Rev     syntax.TID // increases with every commit
	Prev    cid.Cid    // virtually always cid.Undef; encoded as null
	Sig     []byte     // 64-byte compact r‖s, low-S
}

// ErrMalformedCommit is the class of errors for commit blocks that do not
// decode or break the v3 structure rules.
var ErrMalformedCommit = errors.New("malformed commit")

// appendFields writes the commit map, with or without the signature, in
// canonical key order: did, rev, sig, data, prev, version.
func (c *Commit) appendFields(b []byte, withSig bool) []byte {
	n := 5
	if withSig {
		n = 6
	}
	b = dagcbor.AppendMapHeader(b, n)
	b = dagcbor.AppendText(b, "did")
	b = dagcbor.AppendText(b, string(c.DID))
	b = dagcbor.AppendText(b, "rev")
	b = dagcbor.AppendText(b, string(c.Rev))
	if withSig {
		b = dagcbor.AppendText(b, "sig")
		b = dagcbor.AppendBytes(b, c.Sig)
	}
	b = dagcbor.AppendText(b, "data")
	b = dagcbor.AppendCID(b, c.Data)
	b = dagcbor.AppendText(b, "prev")
	b = dagcbor.AppendNullableCID(b, c.Prev)
	b = dagcbor.AppendText(b, "version")
	return dagcbor.AppendInt(b, c.Version)
}

// UnsignedBytes is the canonical encoding without `sig`: what is signed.
func (c *Commit) UnsignedBytes() []byte { return c.appendFields(make([]byte, 0, 128), false) }

// Bytes is the canonical encoding of the signed commit: the block whose CID
// is the commit CID.
func (c *Commit) Bytes() []byte { return c.appendFields(make([]byte, 0, 192), true) }

// CID computes the commit CID from the signed encoding.
func (c *Commit) CID() cid.Cid { return dagcbor.SumCBOR(c.Bytes()) }

// Sign sets Sig to the signature of the unsigned encoding with key.
func (c *Commit) Sign(key atcrypto.PrivateKey) error {
	sig, err := key.HashAndSign(c.UnsignedBytes())
	if err != nil {
		return fmt.Errorf("repo: signing commit: %w", err)
	}
	c.Sig = sig
	return nil
}

// VerifySignature checks Sig against key, refusing high-S and non-64-byte
// (DER) signatures. It makes atcrypto's decisions; K-256 keys are checked
// by libsecp256k1 in cgo builds (see package sigverify).
func (c *Commit) VerifySignature(key atcrypto.PublicKey) error {
	if err := sigverify.Verify(key, c.UnsignedBytes(), c.Sig); err != nil {
		return fmt.Errorf("%w: %v", ErrSignature, err)
	}
	return nil
}

// VerifyStructure checks the v3 rules that decoding alone does not.
func (c *Commit) VerifyStructure() error {
	if c.Version != Version {
		return fmt.Errorf("%w: version %d, want %d", ErrMalformedCommit, c.Version, Version)
	}
	if len(c.Sig) == 0 {
		return fmt.Errorf("%w: empty signature", ErrMalformedCommit)
	}
	if !dagcbor.IsBlessed(c.Data, dagcbor.CodecDagCBOR) {
		return fmt.Errorf("%w: data CID %s is not dag-cbor sha2-256", ErrMalformedCommit, c.Data)
	}
	return nil
}

// DecodeCommit strictly decodes a commit block: canonical DAG-CBOR, exactly
// the keys did, rev, sig, data, prev (null allowed) and version, a valid DID
// and TID. Versions 2 and 3 decode; VerifyStructure requires 3.
func DecodeCommit(data []byte) (*Commit, error) {
	c, err := decodeCommit(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedCommit, err)
	}
	return c, nil
}

func decodeCommit(data []byte) (*Commit, error) {
	d := dagcbor.NewDecoder(data)
	n, err := d.ReadMapHeader()
	if err != nil {
		return nil, err
	}
	var (
		c    Commit
		prev []byte
		seen = map[string]bool{}
	)
	for i := 0; i < n; i++ {
		if prev, err = d.ReadMapKey(prev); err != nil {
			return nil, err
		}
		key := string(prev)
		seen[key] = true
		switch key {
		case "did":
			s, err := d.ReadText()
			if err != nil {
				return nil, fmt.Errorf("did: %w", err)
			}
			if c.DID, err = syntax.ParseDID(s); err != nil {
				return nil, err
			}
		case "rev":
			s, err := d.ReadText()
			if err != nil {
				return nil, fmt.Errorf("rev: %w", err)
			}
			if c.Rev, err = syntax.ParseTID(s); err != nil {
				return nil, err
			}
		case "sig":
			s, err := d.ReadBytes()
			if err != nil {
				return nil, fmt.Errorf("sig: %w", err)
			}
			c.Sig = append([]byte(nil), s...)
		case "data":
			if c.Data, err = d.ReadCID(); err != nil {
				return nil, fmt.Errorf("data: %w", err)
			}
		case "prev":
			if c.Prev, err = d.ReadNullableCID(); err != nil {
				return nil, fmt.Errorf("prev: %w", err)
			}
		case "version":
			if c.Version, err = d.ReadInt(); err != nil {
				return nil, fmt.Errorf("version: %w", err)
			}
		default:
			return nil, fmt.Errorf("unexpected field %q", key)
		}
	}
	if err := d.Done(); err != nil {
		return nil, err
	}
	for _, k := range []string{"did", "sig", "data", "prev", "version"} {
		if !seen[k] {
			return nil, fmt.Errorf("missing field %q", k)
		}
	}
	if !seen["rev"] && c.Version >= 3 {
		return nil, fmt.Errorf("missing field %q", "rev")
	}
	return &c, nil
}
