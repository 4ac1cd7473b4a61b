package repostore

import (
	"errors"
	"fmt"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/car"
	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/mst"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/store"
)

// ErrInvalidRepo is the class of whole repositories (an importRepo CAR, a
// relay's getRepo) that fail VerifyRepo. A bad signature also wraps
// repo.ErrSignature, so a caller can refresh the key and try once more.
var ErrInvalidRepo = errors.New("invalid repository")

// VerifiedRepo is a whole repository that passed VerifyRepo: its signed
// commit, the MST nodes (as the canonical rebuild encodes them, the same
// bytes as the input's) and every record.
type VerifiedRepo struct {
	Commit      *repo.Commit
	CID         cid.Cid
	CommitBytes []byte
	Nodes       []store.Block
	Records     []VerifiedRecord
}

// VerifiedRecord is one record of a VerifiedRepo, in key order.
type VerifiedRecord struct {
	Path string
	CID  cid.Cid
	Data []byte
}

// VerifyRepo checks a whole repository whose blocks were read from a CAR
// (each already checked against its CID) and whose commit is commitCID: the
// commit decodes strictly and has the v3 structure, names did, and is signed
// by key; then every MST node is well formed, every record is present, and
// the tree rebuilt from its records has the same root (which refuses a
// validly signed but non-canonical MST). The cheap checks come first: a
// signature failure costs no walk of the tree. Every failure wraps
// ErrInvalidRepo.
func VerifyRepo(did string, blocks mst.MemBlocks, commitCID cid.Cid, key atcrypto.PublicKey) (*VerifiedRepo, error) {
	vr, err := verifyRepo(did, blocks, commitCID, key)
	if err != nil {
		return nil, fmt.Errorf("repostore: %w: %w", ErrInvalidRepo, err)
	}
	return vr, nil
}

func verifyRepo(did string, blocks mst.MemBlocks, commitCID cid.Cid, key atcrypto.PublicKey) (*VerifiedRepo, error) {
	commitBytes, ok := blocks[commitCID]
	if !ok {
		return nil, fmt.Errorf("commit block %s missing", commitCID)
	}
	commit, err := repo.DecodeCommit(commitBytes)
	if err != nil {
		return nil, err
	}
	if err := commit.VerifyStructure(); err != nil {
		return nil, err
	}
	if string(commit.DID) != did {
		return nil, fmt.Errorf("the commit is of %s, not %s", commit.DID, did)
	}
	if err := commit.VerifySignature(key); err != nil {
		return nil, err
	}
	vr := &VerifiedRepo{Commit: commit, CID: commitCID, CommitBytes: commitBytes}
	if err := verifyTree(vr, blocks, commit.Data); err != nil {
		return nil, err
	}
	return vr, nil
}

// verifyTree checks the MST at root fully and fills in vr's nodes and
// records. The nodes are the Builder's re-encoding of the records, whose
// root must be root: the same bytes if and only if the tree was canonical.
func verifyTree(vr *VerifiedRepo, bg mst.MemBlocks, root cid.Cid) error {
	tree, err := mst.Load(bg, root)
	if err != nil {
		return err
	}
	if err := tree.Verify(); err != nil {
		return err
	}
	b := mst.NewBuilder(func(c cid.Cid, data []byte) error {
		vr.Nodes = append(vr.Nodes, store.Block{CID: c, Data: append([]byte(nil), data...)})
		return nil
	})
	err = tree.Walk(nil, func(key []byte, val cid.Cid) error {
		data, ok := bg[val]
		if !ok {
			return fmt.Errorf("record %s (%s) missing", key, val)
		}
		vr.Records = append(vr.Records, VerifiedRecord{Path: string(key), CID: val, Data: data})
		return b.Add(key, val)
	})
	if err != nil {
		return err
	}
	rebuilt, err := b.Finish()
	if err != nil {
		return err
	}
	if rebuilt != root {
		return fmt.Errorf("the MST is not canonical: its records build %s, not %s", rebuilt, root)
	}
	return nil
}

// ReplaceChange builds the change that swaps the account's repository for
// next: everything live now that next lacks dies, next's blocks become live
// under its commit, and the record, collection, reference and blob indexes
// are recomputed. The caller holds the repository's write lock, checks that
// next may replace the current state (its rev), and adds the events (a
// #sync) and any account change.
func (r *Repos) ReplaceChange(a *store.Account, next *VerifiedRepo, now time.Time) (*store.Change, error) {
	commit := next.Commit
	c := &store.Change{UID: a.UID, Head: &store.Head{Commit: next.CID, Rev: string(commit.Rev), Data: commit.Data}}
	keep := map[cid.Cid]bool{next.CID: true}
	c.NewBlocks = append(c.NewBlocks, store.Block{CID: next.CID, Data: next.CommitBytes})
	for _, n := range next.Nodes {
		if !keep[n.CID] {
			keep[n.CID] = true
			c.NewBlocks = append(c.NewBlocks, n)
		}
	}
	refs := map[cid.Cid]uint64{}
	colls := map[string]uint64{}
	blobRefs := map[cid.Cid]uint64{}
	blobInfo := map[cid.Cid]dagcbor.Blob{}
	for _, rec := range next.Records {
		refs[rec.CID]++
		colls[collectionOf(rec.Path)]++
		c.Records = append(c.Records, store.RecordWrite{Path: rec.Path, CID: rec.CID})
		if !keep[rec.CID] {
			keep[rec.CID] = true
			c.NewBlocks = append(c.NewBlocks, store.Block{CID: rec.CID, Data: rec.Data})
		}
		if v, err := dagcbor.UnmarshalRecord(rec.Data); err == nil {
			for _, b := range dagcbor.RecordBlobs(v) {
				blobRefs[b.Ref]++
				blobInfo[b.Ref] = b
			}
		}
	}
	if err := r.DB.LiveBlocks(a.UID, func(bc cid.Cid, data []byte) error {
		if keep[bc] {
			return nil
		}
		c.Dead = append(c.Dead, store.DeadBlock{CID: bc, Data: append([]byte(nil), data...)})
		return nil
	}); err != nil {
		return nil, err
	}
	// The record index and reference counts are rewritten whole; old
	// collections the new repository lacks go to zero (leaving the
	// collection index).
	c.ResetRecords = true
	_, oldColls, err := r.DB.Collections(a.UID)
	if err != nil {
		return nil, err
	}
	for _, coll := range oldColls {
		if _, ok := colls[coll]; !ok {
			c.Collections = append(c.Collections, store.CollectionCount{Collection: coll})
		}
	}
	for rc, n := range refs {
		if n > 1 {
			c.RefCounts = append(c.RefCounts, store.RefCount{CID: rc, Count: n})
		}
	}
	for coll, n := range colls {
		c.Collections = append(c.Collections, store.CollectionCount{Collection: coll, Count: n})
	}
	if err := r.DB.Blobs(a.UID, cid.Undef, func(m *store.BlobMeta) error {
		if n := blobRefs[m.CID]; n != m.Refs {
			m.Refs, m.Updated = n, now
			if n > 0 {
				m.Rev = string(commit.Rev)
			}
			c.Blobs = append(c.Blobs, *m)
		}
		delete(blobRefs, m.CID)
		return nil
	}); err != nil {
		return nil, err
	}
	for bc, n := range blobRefs {
		info := blobInfo[bc]
		c.Blobs = append(c.Blobs, store.BlobMeta{CID: bc, MimeType: info.MimeType, Size: info.Size, Refs: n, Rev: string(commit.Rev), Updated: now})
	}
	return c, nil
}

// SyncEvent is the #sync of a repository's commit: a CAR holding only the
// commit block, which announces a state consumers must fetch whole (after
// an import or a relay's resync).
func SyncEvent(did string, commitCID cid.Cid, commitBytes []byte, rev string, now time.Time) store.FrameEncoder {
	b := car.AppendHeader(nil, commitCID)
	b = car.AppendBlock(b, commitCID, commitBytes)
	return (&wire.Sync{DID: did, Rev: rev, Blocks: b, Time: now}).AppendFrame
}
