package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// Blob is a blob being downloaded. Reading it checks the bytes against the
// CID: the read that reaches the end returns ErrBlobMismatch (wrapped)
// instead of io.EOF if they do not hash to it, so a caller that reads to
// io.EOF has the right bytes. Close it.
type Blob struct {
	io.ReadCloser
	CID      cid.Cid
	MimeType string // the Content-Type the host sent
	Size     int64  // Content-Length, or -1 when the host did not send one
}

// GetBlob starts downloading a blob of the repository. Only sha2-256 CIDs
// (every atproto blob) can be checked; others are refused before any
// request.
func (c *Client) GetBlob(ctx context.Context, did string, blob cid.Cid) (*Blob, error) {
	if err := checkDID(NSIDGetBlob, did); err != nil {
		return nil, err
	}
	h, err := NewCIDVerifier(blob)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalidArgument, NSIDGetBlob, err)
	}
	q := url.Values{"did": {did}, "cid": {blob.String()}}
	resp, err := c.do(ctx, &request{method: http.MethodGet, nsid: NSIDGetBlob, query: q, accept: "*/*"})
	if err != nil {
		return nil, err
	}
	return &Blob{
		ReadCloser: &verifyingReader{rc: resp.Body, v: h},
		CID:        blob,
		MimeType:   resp.Header.Get("Content-Type"),
		Size:       resp.ContentLength,
	}, nil
}

// CIDVerifier hashes bytes as they stream by and says at the end whether
// they are the block a CID names. It is an io.Writer.
type CIDVerifier struct {
	c cid.Cid
	h hash.Hash
	n int64
}

// NewCIDVerifier returns a verifier for c, which must use sha2-256 with a
// full 32-byte digest (atproto's only hash).
func NewCIDVerifier(c cid.Cid) (*CIDVerifier, error) {
	if !c.Defined() {
		return nil, errors.New("undefined CID")
	}
	p := c.Prefix()
	if p.MhType != multihash.SHA2_256 || p.MhLength != sha256.Size {
		return nil, fmt.Errorf("CID %s: only sha2-256 CIDs can be checked", c)
	}
	return &CIDVerifier{c: c, h: sha256.New()}, nil
}

func (v *CIDVerifier) Write(p []byte) (int, error) {
	v.n += int64(len(p))
	return v.h.Write(p)
}

// Check reports, after the last Write, whether the bytes hash to the CID.
func (v *CIDVerifier) Check() error {
	dec, err := multihash.Decode(v.c.Hash())
	if err != nil {
		return fmt.Errorf("CID %s: %w", v.c, err)
	}
	if !bytes.Equal(v.h.Sum(nil), dec.Digest) {
		return fmt.Errorf("%w: %d bytes do not hash to %s", ErrBlobMismatch, v.n, v.c)
	}
	return nil
}

// verifyingReader passes reads through a CIDVerifier and checks at EOF.
type verifyingReader struct {
	rc   io.ReadCloser
	v    *CIDVerifier
	done error
}

func (r *verifyingReader) Read(p []byte) (int, error) {
	if r.done != nil {
		return 0, r.done
	}
	n, err := r.rc.Read(p)
	r.v.Write(p[:n])
	if errors.Is(err, io.EOF) {
		if cerr := r.v.Check(); cerr != nil {
			r.done = fmt.Errorf("client: %s: %w", NSIDGetBlob, cerr)
			return n, r.done
		}
		r.done = io.EOF
	}
	return n, err
}

func (r *verifyingReader) Close() error { return r.rc.Close() }
