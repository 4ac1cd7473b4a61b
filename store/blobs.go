package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

// BlobMeta is what the store knows of one blob of one repository. Refs
// counts the records that reference it; a blob with no reference is a
// temporary upload (never served or listed) until a record uses it, and is
// removed after a grace period.
type BlobMeta struct {
	CID      cid.Cid
	MimeType string
	Size     int64 // -1 when unknown (a mirrored repository's blob not fetched)
	Refs     uint64
	Rev      string    // rev of the last commit that added a reference
	Stored   bool      // the bytes are in the BlobStore
	Updated  time.Time // last change of Refs or upload
	Delete   bool      // in a Change: remove this entry
}

func encodeBlobMeta(m *BlobMeta) []byte {
	v := map[string]any{"mime": m.MimeType, "size": m.Size, "refs": int64(m.Refs), "stored": m.Stored, "updated": m.Updated.UnixMicro()}
	if m.Rev != "" {
		v["rev"] = m.Rev
	}
	b, err := dagcbor.Marshal(v)
	if err != nil {
		panic("store: encoding blob metadata: " + err.Error())
	}
	return b
}

func decodeBlobMeta(c cid.Cid, b []byte) (*BlobMeta, error) {
	v, err := dagcbor.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("store: blob metadata: %w", err)
	}
	m, _ := v.(map[string]any)
	out := &BlobMeta{CID: c}
	out.MimeType, _ = m["mime"].(string)
	out.Size, _ = m["size"].(int64)
	refs, _ := m["refs"].(int64)
	out.Refs = uint64(refs)
	out.Rev, _ = m["rev"].(string)
	out.Stored, _ = m["stored"].(bool)
	upd, _ := m["updated"].(int64)
	out.Updated = time.UnixMicro(upd).UTC()
	return out, nil
}

// Blob returns the metadata of a blob of a repository, or ErrNotFound.
func (d *DB) Blob(uid uint64, c cid.Cid) (*BlobMeta, error) {
	v, err := d.get(keyUIDCID(tBlob, uid, c))
	if err != nil {
		return nil, err
	}
	return decodeBlobMeta(c, v)
}

// Blobs calls fn for the blob metadata of a repository in CID order, after
// the CID after (cid.Undef: from the start), until fn returns ErrStop.
func (d *DB) Blobs(uid uint64, after cid.Cid, fn func(*BlobMeta) error) error {
	p := uidKey(tBlob, uid)
	lo := p
	if after.Defined() {
		lo = append(keyUIDCID(tBlob, uid, after), 0)
	}
	it, err := d.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(p)})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		c, err := cid.Cast(it.Key()[len(p):])
		if err != nil {
			it.Close()
			return fmt.Errorf("store: corrupt blob key: %w", err)
		}
		m, err := decodeBlobMeta(c, it.Value())
		if err != nil {
			it.Close()
			return err
		}
		if err := fn(m); err != nil {
			it.Close()
			if errors.Is(err, ErrStop) {
				return nil
			}
			return err
		}
	}
	return closeIter(it)
}

// BlobStore keeps blob bytes, one file per repository and CID. Metadata is
// in the DB; bytes are written first (Stage, then Commit once the CID is
// known), so a crash leaves at worst a file without metadata, which the
// next upload of the same blob overwrites.
type BlobStore interface {
	// Stage returns a writer for a new blob's bytes; Commit names it.
	Stage(uid uint64) (StagedBlob, error)
	Open(uid uint64, c cid.Cid) (BlobReader, error)
	Remove(uid uint64, c cid.Cid) error
	RemoveAll(uid uint64) error
}

// StagedBlob receives an upload's bytes and computes its CID.
type StagedBlob interface {
	io.Writer
	// Commit stores the bytes under their raw sha2-256 CID.
	Commit() (cid.Cid, int64, error)
	// Abort drops the bytes; it is a no-op after Commit.
	Abort()
}

// BlobReader reads a stored blob; Size is its length.
type BlobReader interface {
	io.ReadSeekCloser
	Size() int64
}

// FSBlobs is a BlobStore on the local filesystem: Dir/<uid>/<cid>.
type FSBlobs struct{ Dir string }

var _ BlobStore = (*FSBlobs)(nil)

func (f *FSBlobs) repoDir(uid uint64) string {
	return filepath.Join(f.Dir, strconv.FormatUint(uid, 10))
}

// Stage implements BlobStore.
func (f *FSBlobs) Stage(uid uint64) (StagedBlob, error) {
	dir := f.repoDir(uid)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("store: blob dir: %w", err)
	}
	var r [8]byte
	rand.Read(r[:])
	tmp := filepath.Join(dir, ".upload-"+hex.EncodeToString(r[:]))
	fh, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("store: staging a blob: %w", err)
	}
	return &fsStaged{f: fh, dir: dir, h: sha256.New()}, nil
}

type fsStaged struct {
	f    *os.File
	dir  string
	h    hash.Hash
	n    int64
	done bool
}

func (s *fsStaged) Write(p []byte) (int, error) {
	n, err := s.f.Write(p)
	s.h.Write(p[:n])
	s.n += int64(n)
	return n, err
}

func (s *fsStaged) Commit() (cid.Cid, int64, error) {
	defer s.Abort()
	if err := s.f.Sync(); err != nil {
		return cid.Undef, 0, fmt.Errorf("store: blob sync: %w", err)
	}
	var digest [32]byte
	copy(digest[:], s.h.Sum(nil))
	c := rawCID(digest)
	if err := os.Rename(s.f.Name(), filepath.Join(s.dir, c.String())); err != nil {
		return cid.Undef, 0, fmt.Errorf("store: blob rename: %w", err)
	}
	s.done = true
	return c, s.n, nil
}

func (s *fsStaged) Abort() {
	s.f.Close()
	if !s.done {
		os.Remove(s.f.Name())
		s.done = true
	}
}

func rawCID(digest [32]byte) cid.Cid {
	b := append([]byte{0x01, dagcbor.CodecRaw, 0x12, 0x20}, digest[:]...)
	c, err := cid.Cast(b)
	if err != nil {
		panic("store: building a raw CID: " + err.Error())
	}
	return c
}

// Open implements BlobStore.
func (f *FSBlobs) Open(uid uint64, c cid.Cid) (BlobReader, error) {
	fh, err := os.Open(filepath.Join(f.repoDir(uid), c.String()))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: opening blob: %w", err)
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, err
	}
	return fsReader{fh, st.Size()}, nil
}

type fsReader struct {
	*os.File
	size int64
}

func (r fsReader) Size() int64 { return r.size }

// Remove implements BlobStore.
func (f *FSBlobs) Remove(uid uint64, c cid.Cid) error {
	err := os.Remove(filepath.Join(f.repoDir(uid), c.String()))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// RemoveAll implements BlobStore.
func (f *FSBlobs) RemoveAll(uid uint64) error { return os.RemoveAll(f.repoDir(uid)) }
