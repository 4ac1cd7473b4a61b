package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/store"
)

// Errors of blob handling.
var (
	ErrBlobTooLarge = errors.New("blob too large")
	ErrBlobNotFound = errors.New("blob not found")
	ErrNoBlobStore  = errors.New("no blob store configured")
)

// UploadBlob stores a blob for a hosted account and returns its reference.
// Until a record references it, the blob is temporary: not served, not
// listed, and removed after Options.BlobGrace.
func (h *Host) UploadBlob(ctx context.Context, did, mimeType string, r io.Reader) (dagcbor.Blob, error) {
	if h.opts.Blobs == nil {
		return dagcbor.Blob{}, ErrNoBlobStore
	}
	if mimeType == "" {
		mimeType = "application/octet-stream"
	}
	a, err := h.account(did)
	if err != nil {
		return dagcbor.Blob{}, err
	}
	if !a.Status.Active() {
		return dagcbor.Blob{}, fmt.Errorf("host: %s is %s: %w", did, a.Status, ErrNotActive)
	}
	staged, err := h.opts.Blobs.Stage(a.UID)
	if err != nil {
		return dagcbor.Blob{}, err
	}
	defer staged.Abort()
	n, err := io.Copy(staged, io.LimitReader(r, h.opts.MaxBlobSize+1))
	if err != nil {
		return dagcbor.Blob{}, fmt.Errorf("host: reading the upload: %w", err)
	}
	if n > h.opts.MaxBlobSize {
		return dagcbor.Blob{}, fmt.Errorf("host: %w: more than %d bytes", ErrBlobTooLarge, h.opts.MaxBlobSize)
	}
	c, size, err := staged.Commit()
	if err != nil {
		return dagcbor.Blob{}, err
	}
	unlock := h.locks.Lock(did)
	defer unlock()
	meta, err := h.db.Blob(a.UID, c)
	if errors.Is(err, store.ErrNotFound) {
		meta, err = &store.BlobMeta{CID: c}, nil
	}
	if err != nil {
		return dagcbor.Blob{}, err
	}
	meta.MimeType, meta.Size, meta.Stored, meta.Updated = mimeType, size, true, h.opts.Now()
	if _, err := h.db.Apply(ctx, &store.Change{UID: a.UID, Blobs: []store.BlobMeta{*meta}}); err != nil {
		return dagcbor.Blob{}, fmt.Errorf("host: recording blob %s: %w", c, err)
	}
	return dagcbor.Blob{Ref: c, MimeType: mimeType, Size: size}, nil
}

// checkRecordBlobs refuses a record that references a blob never uploaded
// to this account.
func (h *Host) checkRecordBlobs(uid uint64, record []byte) error {
	rec, err := dagcbor.UnmarshalRecord(record)
	if err != nil {
		return nil // BuildCommit refuses it with the precise reason
	}
	for _, b := range dagcbor.RecordBlobs(rec) {
		m, err := h.db.Blob(uid, b.Ref)
		if errors.Is(err, store.ErrNotFound) || (err == nil && !m.Stored) {
			return fmt.Errorf("host: %w: %s", ErrBlobNotFound, b.Ref)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// OpenBlob opens a referenced blob of an account for reading.
func (h *Host) OpenBlob(a *store.Account, c cid.Cid) (store.BlobReader, *store.BlobMeta, error) {
	if h.opts.Blobs == nil {
		return nil, nil, ErrBlobNotFound
	}
	m, err := h.db.Blob(a.UID, c)
	if errors.Is(err, store.ErrNotFound) || (err == nil && (m.Refs == 0 || !m.Stored)) {
		return nil, nil, ErrBlobNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	r, err := h.opts.Blobs.Open(a.UID, c)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, ErrBlobNotFound
	}
	return r, m, err
}

// CollectBlobs removes blobs that no record references and that have not
// changed for Options.BlobGrace: abandoned uploads, and blobs whose last
// record went away.
func (h *Host) CollectBlobs(ctx context.Context) error {
	if h.opts.Blobs == nil {
		return nil
	}
	cutoff := h.opts.Now().Add(-h.opts.BlobGrace)
	for after := uint64(0); ; {
		accts, err := h.db.Accounts(after, 500)
		if err != nil || len(accts) == 0 {
			return err
		}
		for _, a := range accts {
			after = a.UID
			if !a.Hosted {
				continue
			}
			if err := h.collectRepoBlobs(ctx, a, cutoff); err != nil {
				return err
			}
		}
	}
}

func (h *Host) collectRepoBlobs(ctx context.Context, a *store.Account, cutoff time.Time) error {
	unlock := h.locks.Lock(a.DID)
	defer unlock()
	var gone []store.BlobMeta
	if err := h.db.Blobs(a.UID, cid.Undef, func(m *store.BlobMeta) error {
		if m.Refs == 0 && m.Updated.Before(cutoff) {
			gone = append(gone, store.BlobMeta{CID: m.CID, Delete: true})
		}
		return nil
	}); err != nil || len(gone) == 0 {
		return err
	}
	if _, err := h.db.Apply(ctx, &store.Change{UID: a.UID, Blobs: gone}); err != nil {
		return err
	}
	for _, m := range gone {
		if err := h.opts.Blobs.Remove(a.UID, m.CID); err != nil {
			h.log.Warn("removing blob", "did", a.DID, "cid", m.CID, "err", err)
		}
	}
	return nil
}
