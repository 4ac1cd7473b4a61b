package host

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/car"
	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/mst"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/store"
)

// ErrInvalidRepo is the class of repository CARs that fail verification.
var ErrInvalidRepo = errors.New("invalid repository")

// ImportRepo replaces a hosted account's repository with the one in a CAR
// (com.atproto.repo.importRepo). The CAR is verified fully first: every
// block's hash, the commit's structure, DID and signature (with the
// account's key), every MST node's structure, every record present, and
// the tree rebuilt from its records gives the same root (which refuses a
// validly signed but non-canonical MST). The imported commit is kept as it
// is, so the repository is served with the same blocks and root; its rev
// must be newer than the current one. One #sync event announces it.
func (h *Host) ImportRepo(ctx context.Context, did string, r io.Reader) error {
	unlock := h.locks.Lock(did)
	defer unlock()
	a, err := h.account(did)
	if err != nil {
		return err
	}
	if !a.Status.Active() {
		return fmt.Errorf("host: %s is %s: %w", did, a.Status, ErrNotActive)
	}
	sec, err := h.secrets(a.UID)
	if err != nil {
		return err
	}
	pub, err := sec.signing.PublicKey()
	if err != nil {
		return err
	}
	roots, blocks, err := car.ReadAll(r, &car.Options{MaxTotal: h.opts.MaxImportSize})
	if err != nil {
		return fmt.Errorf("host: import: %w: %w", ErrInvalidRepo, err)
	}
	if len(roots) == 0 {
		return fmt.Errorf("host: import: %w: the CAR has no root", ErrInvalidRepo)
	}
	commitCID := roots[0]
	commitBytes, ok := blocks[commitCID]
	if !ok {
		return fmt.Errorf("host: import: %w: commit block %s missing", ErrInvalidRepo, commitCID)
	}
	commit, err := repo.DecodeCommit(commitBytes)
	if err != nil {
		return fmt.Errorf("host: import: %w: %w", ErrInvalidRepo, err)
	}
	if err := commit.VerifyStructure(); err != nil {
		return fmt.Errorf("host: import: %w: %w", ErrInvalidRepo, err)
	}
	if string(commit.DID) != did {
		return fmt.Errorf("host: import: %w: the commit is of %s", ErrInvalidRepo, commit.DID)
	}
	if err := commit.VerifySignature(pub); err != nil {
		return fmt.Errorf("host: import: %w: %w", ErrInvalidRepo, err)
	}
	if a.Head.Defined() && string(commit.Rev) <= a.Head.Rev {
		return fmt.Errorf("host: import: %w: rev %s is not after the current rev %s", ErrInvalidRepo, commit.Rev, a.Head.Rev)
	}

	next, err := verifiedTree(mst.MemBlocks(blocks), commit.Data)
	if err != nil {
		return fmt.Errorf("host: import: %w: %w", ErrInvalidRepo, err)
	}
	c, err := h.replaceChange(a, commitCID, commit, commitBytes, next)
	if err != nil {
		return err
	}
	c.Events = append(c.Events, syncEvent(did, commit, commitCID, h.opts.Now()))
	if _, err := h.db.Apply(ctx, c); err != nil {
		return fmt.Errorf("host: import into %s: %w", did, err)
	}
	h.log.Info("repository imported", "did", did, "rev", commit.Rev, "records", len(next.records))
	return nil
}

// importedTree is a verified repository: its node blocks and its records.
type importedTree struct {
	nodes   []store.Block
	records []importedRecord
}

type importedRecord struct {
	path string
	cid  cid.Cid
	data []byte
}

// verifiedTree checks the MST at root fully and returns its blocks. The
// nodes are the Builder's re-encoding of the records, whose root must be
// root: the same bytes if and only if the tree was canonical.
func verifiedTree(bg mst.MemBlocks, root cid.Cid) (*importedTree, error) {
	tree, err := mst.Load(bg, root)
	if err != nil {
		return nil, err
	}
	if err := tree.Verify(); err != nil {
		return nil, err
	}
	out := &importedTree{}
	b := mst.NewBuilder(func(c cid.Cid, data []byte) error {
		out.nodes = append(out.nodes, store.Block{CID: c, Data: append([]byte(nil), data...)})
		return nil
	})
	err = tree.Walk(nil, func(key []byte, val cid.Cid) error {
		data, ok := bg[val]
		if !ok {
			return fmt.Errorf("record %s (%s) missing", key, val)
		}
		out.records = append(out.records, importedRecord{path: string(key), cid: val, data: data})
		return b.Add(key, val)
	})
	if err != nil {
		return nil, err
	}
	rebuilt, err := b.Finish()
	if err != nil {
		return nil, err
	}
	if rebuilt != root {
		return nil, fmt.Errorf("the MST is not canonical: its records build %s, not %s", rebuilt, root)
	}
	return out, nil
}

// replaceChange builds the change that swaps the account's repository for
// next: everything live now that next lacks dies, next's blocks become live,
// and the record, collection, reference and blob indexes are recomputed.
func (h *Host) replaceChange(a *store.Account, commitCID cid.Cid, commit *repo.Commit, commitBytes []byte, next *importedTree) (*store.Change, error) {
	c := &store.Change{UID: a.UID, Head: &store.Head{Commit: commitCID, Rev: string(commit.Rev), Data: commit.Data}}
	keep := map[cid.Cid]bool{commitCID: true}
	c.NewBlocks = append(c.NewBlocks, store.Block{CID: commitCID, Data: commitBytes})
	for _, n := range next.nodes {
		if !keep[n.CID] {
			keep[n.CID] = true
			c.NewBlocks = append(c.NewBlocks, n)
		}
	}
	refs := map[cid.Cid]uint64{}
	colls := map[string]uint64{}
	blobRefs := map[cid.Cid]uint64{}
	blobInfo := map[cid.Cid]dagcbor.Blob{}
	for _, r := range next.records {
		refs[r.cid]++
		colls[collectionOf(r.path)]++
		c.Records = append(c.Records, store.RecordWrite{Path: r.path, CID: r.cid})
		if !keep[r.cid] {
			keep[r.cid] = true
			c.NewBlocks = append(c.NewBlocks, store.Block{CID: r.cid, Data: r.data})
		}
		if rec, err := dagcbor.UnmarshalRecord(r.data); err == nil {
			for _, b := range dagcbor.RecordBlobs(rec) {
				blobRefs[b.Ref]++
				blobInfo[b.Ref] = b
			}
		}
	}
	if err := h.db.LiveBlocks(a.UID, func(bc cid.Cid, data []byte) error {
		if keep[bc] {
			return nil
		}
		c.Dead = append(c.Dead, store.DeadBlock{CID: bc, Data: append([]byte(nil), data...)})
		return nil
	}); err != nil {
		return nil, err
	}
	// The record index and reference counts are rewritten whole; old
	// collections the import lacks go to zero (leaving the collection index).
	c.ResetRecords = true
	_, oldColls, err := h.db.Collections(a.UID)
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
	now := h.opts.Now()
	if err := h.db.Blobs(a.UID, cid.Undef, func(m *store.BlobMeta) error {
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

func collectionOf(path string) string {
	for i := 0; i < len(path); i++ {
		if path[i] == '/' {
			return path[:i]
		}
	}
	return path
}
