package repostore

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/mst"
	"github.com/reservoir-atproto/reservoir/repo"
	"github.com/reservoir-atproto/reservoir/store"
)

// Repos reads and changes repositories in a store.
type Repos struct {
	DB *store.DB
}

// Blocks returns a repository's blocks (live, then history) as an MST block
// source.
func (r *Repos) Blocks(uid uint64) mst.BlockGetter { return blockGetter{r.DB, uid} }

type blockGetter struct {
	db  *store.DB
	uid uint64
}

func (b blockGetter) GetBlock(c cid.Cid) ([]byte, error) {
	data, _, err := b.db.Block(b.uid, c)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("repostore: block %s: %w", c, mst.ErrNotFound)
	}
	return data, err
}

// Tree returns the MST at the account's head (an empty tree before the
// first commit), loaded lazily over the store.
func (r *Repos) Tree(a *store.Account) (*mst.Tree, error) {
	bg := r.Blocks(a.UID)
	if !a.Head.Defined() {
		return mst.NewEmpty(bg), nil
	}
	t, err := mst.Load(bg, a.Head.Data)
	if err != nil {
		return nil, fmt.Errorf("repostore: %s: %w", a.DID, err)
	}
	return t, nil
}

// ErrNotHeld is returned by CommitChange when the store does not hold the
// repository's blocks (a mirror kept lean): the commit cannot be applied to
// it. It wraps mst.ErrNotFound, like a stored tree that lacks a node.
var ErrNotHeld = fmt.Errorf("the stored repository is not held whole: %w", mst.ErrNotFound)

// CommitChange builds the store change that records res, a commit applied
// to the account's repository; tree is the MST after the commit (loaded over
// this repository's blocks, so that the nodes it replaced are known), or nil
// when res.DeadNodes lists them (a verified upstream commit's TreeDelta). The
// change carries the #commit event, timestamped now.
func (r *Repos) CommitChange(a *store.Account, res *repo.CommitResult, tree *mst.Tree, now time.Time) (*store.Change, error) {
	c := &store.Change{
		UID:       a.UID,
		Head:      &store.Head{Commit: res.CID, Rev: string(res.Commit.Rev), Data: res.Commit.Data},
		NewBlocks: make([]store.Block, 0, len(res.NewBlocks)),
	}
	for _, b := range res.NewBlocks {
		c.NewBlocks = append(c.NewBlocks, store.Block{CID: b.CID, Data: b.Data})
	}
	fresh := make(map[cid.Cid]bool, len(res.NewBlocks))
	for _, b := range res.NewBlocks {
		fresh[b.CID] = true
	}
	kill := func(cc cid.Cid) error {
		if fresh[cc] {
			return nil
		}
		data, _, err := r.DB.LiveBlock(a.UID, cc)
		if errors.Is(err, store.ErrNotFound) {
			return nil // already gone (an imported repo may lack history)
		}
		if err != nil {
			return err
		}
		c.Dead = append(c.Dead, store.DeadBlock{CID: cc, Data: data})
		return nil
	}
	if a.Head.Defined() && !fresh[a.Head.Commit] {
		data, _, err := r.DB.LiveBlock(a.UID, a.Head.Commit)
		switch {
		case errors.Is(err, store.ErrNotFound) && tree == nil:
			// Without a tree read over the stored blocks, the previous
			// commit is what shows the store holds this repository whole
			// (its blocks are written in the head's batch).
			return nil, fmt.Errorf("repostore: %s: %w", a.DID, ErrNotHeld)
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, fmt.Errorf("repostore: previous commit: %w", err)
		default:
			c.Dead = append(c.Dead, store.DeadBlock{CID: a.Head.Commit, Data: data})
		}
	}
	if tree != nil {
		if err := tree.RemovedBlocks(kill); err != nil {
			return nil, fmt.Errorf("repostore: removed nodes: %w", err)
		}
	} else {
		for _, b := range res.DeadNodes {
			if !fresh[b.CID] {
				c.Dead = append(c.Dead, store.DeadBlock{CID: b.CID, Data: b.Data})
			}
		}
	}

	refDelta := map[cid.Cid]int64{}
	referenced := map[cid.Cid]bool{} // records the previous tree points at
	collDelta := map[string]int64{}
	for _, op := range res.Ops {
		coll := collectionOf(op.Path)
		if op.CID.Defined() {
			refDelta[op.CID]++
			c.Records = append(c.Records, store.RecordWrite{Path: op.Path, CID: op.CID})
		} else {
			c.Records = append(c.Records, store.RecordWrite{Path: op.Path})
		}
		if op.Prev.Defined() {
			refDelta[op.Prev]--
			referenced[op.Prev] = true
		}
		switch op.Action {
		case repo.ActionCreate:
			collDelta[coll]++
		case repo.ActionDelete:
			collDelta[coll]--
		}
	}
	alreadyLive := map[cid.Cid]bool{}
	for rc, delta := range refDelta {
		// A record only losing paths is one the previous tree points at:
		// its count needs no live-block lookup. One also written again
		// (an update to the same bytes) is checked whole, so a block the
		// store lacks is not taken for stored.
		refCount := r.DB.RefCount
		if referenced[rc] && delta < 0 {
			refCount = r.DB.ReferencedCount
		}
		cur, err := refCount(a.UID, rc)
		if err != nil {
			return nil, err
		}
		if cur > 0 {
			// The record is already stored (another path has the same
			// bytes): keep it under the rev that first stored it, so
			// getRepo?since= does not send it again.
			alreadyLive[rc] = true
		}
		if delta == 0 {
			continue
		}
		n := int64(cur) + delta
		if n < 0 {
			return nil, fmt.Errorf("repostore: %s: record %s referenced %d times, change removes %d", a.DID, rc, cur, -delta)
		}
		// The store keeps a count only above one (one path is implied by
		// the block being live): a count that neither was nor becomes more
		// than one has nothing to write, where a deletion would add a
		// tombstone for every new record.
		if cur > 1 || n > 1 {
			c.RefCounts = append(c.RefCounts, store.RefCount{CID: rc, Count: uint64(n)})
		}
		if n == 0 {
			if err := kill(rc); err != nil {
				return nil, fmt.Errorf("repostore: record %s: %w", rc, err)
			}
		}
	}
	if len(alreadyLive) > 0 {
		kept := c.NewBlocks[:0]
		for _, b := range c.NewBlocks {
			if !alreadyLive[b.CID] {
				kept = append(kept, b)
			}
		}
		c.NewBlocks = kept
	}
	for coll, delta := range collDelta {
		if delta == 0 {
			continue
		}
		cur, err := r.DB.CollectionCount(a.UID, coll)
		if err != nil {
			return nil, err
		}
		n := int64(cur) + delta
		if n < 0 {
			return nil, fmt.Errorf("repostore: %s: collection %s would hold %d records", a.DID, coll, n)
		}
		c.Collections = append(c.Collections, store.CollectionCount{Collection: coll, Count: uint64(n), Old: cur})
	}
	var err error
	if c.Blobs, err = r.blobChanges(a, res, c.Dead, now); err != nil {
		return nil, err
	}
	ev := &wire.Commit{
		Repo: a.DID, Rev: string(res.Commit.Rev), Since: string(res.Since), Commit: res.CID,
		PrevData: res.PrevData, Blocks: res.Slice, Ops: res.Ops, Time: now,
	}
	if ev.Ops == nil {
		ev.Ops = []repo.Op{}
	}
	c.Events = append(c.Events, ev.AppendFrame)
	return c, nil
}

// blobChanges counts the blob references the commit adds and removes and
// returns the new metadata of every blob whose count changes. A blob that a
// record references but that was never uploaded here (a mirrored repository)
// gets metadata with Stored false.
func (r *Repos) blobChanges(a *store.Account, res *repo.CommitResult, dead []store.DeadBlock, now time.Time) ([]store.BlobMeta, error) {
	// The records at hand: the commit's new blocks, and the superseded
	// blocks the change already read (a deleted record's bytes, moved to
	// history), which are not read from the store a second time.
	known := make(map[cid.Cid][]byte, len(res.NewBlocks)+len(dead))
	for _, b := range res.NewBlocks {
		known[b.CID] = b.Data
	}
	for _, b := range dead {
		known[b.CID] = b.Data
	}
	recordBlobs := func(c cid.Cid) ([]dagcbor.Blob, error) {
		data, ok := known[c]
		if !ok {
			var err error
			if data, _, err = r.DB.Block(a.UID, c); err != nil {
				return nil, fmt.Errorf("repostore: record %s: %w", c, err)
			}
		}
		if !bytes.Contains(data, mimeTypeKey) {
			return nil, nil // no blob without a mimeType: spare decoding the record
		}
		rec, err := dagcbor.UnmarshalRecord(data)
		if err != nil {
			return nil, nil // not a data-model record: it references nothing we track
		}
		return dagcbor.RecordBlobs(rec), nil
	}
	delta := map[cid.Cid]int64{}
	info := map[cid.Cid]dagcbor.Blob{}
	for _, op := range res.Ops {
		if op.CID.Defined() {
			bs, err := recordBlobs(op.CID)
			if err != nil {
				return nil, err
			}
			for _, b := range bs {
				delta[b.Ref]++
				info[b.Ref] = b
			}
		}
		if op.Prev.Defined() {
			bs, err := recordBlobs(op.Prev)
			if err != nil {
				return nil, err
			}
			for _, b := range bs {
				delta[b.Ref]--
			}
		}
	}
	var out []store.BlobMeta
	for bc, d := range delta {
		if d == 0 {
			continue
		}
		m, err := r.DB.Blob(a.UID, bc)
		if errors.Is(err, store.ErrNotFound) {
			ref := info[bc]
			m, err = &store.BlobMeta{CID: bc, MimeType: ref.MimeType, Size: ref.Size}, nil
		}
		if err != nil {
			return nil, err
		}
		n := int64(m.Refs) + d
		if n < 0 {
			n = 0 // references made before blob tracking began
		}
		m.Refs = uint64(n)
		if d > 0 {
			m.Rev = string(res.Commit.Rev)
		}
		m.Updated = now
		out = append(out, *m)
	}
	return out, nil
}

// mimeTypeKey is the map key "mimeType" as DAG-CBOR encodes it (a text
// string of 8 bytes: header 0x68, the only valid one). Both blob forms
// dagcbor.RecordBlobs accepts, {$type: blob, ...} and the legacy {cid,
// mimeType}, need it, so a record without these bytes references no blob.
var mimeTypeKey = []byte("\x68mimeType")

func collectionOf(path string) string {
	coll, _, _ := strings.Cut(path, "/")
	return coll
}
