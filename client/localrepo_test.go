package client

import (
	"bytes"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/car"
	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/events/wire"
	"github.com/reservoir-atproto/reservoir/mst"
	"github.com/reservoir-atproto/reservoir/repo"
)

// localRepo is a repository built offline with repo.BuildCommit, the way a
// host builds one: for CAR verification tests and for the frames of a fake
// firehose.
type localRepo struct {
	t       testing.TB
	did     syntax.DID
	key     atcrypto.PrivateKey
	blocks  mst.MemBlocks
	head    *repo.Commit
	headCID cid.Cid
	clock   *repo.RevClock
}

func newLocalRepo(t testing.TB, did string) *localRepo {
	t.Helper()
	key, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		t.Fatal(err)
	}
	return &localRepo{t: t, did: syntax.DID(did), key: key, blocks: mst.MemBlocks{}, clock: repo.NewRevClock(3)}
}

func (r *localRepo) publicKey() atcrypto.PublicKey {
	pub, err := r.key.PublicKey()
	if err != nil {
		r.t.Fatal(err)
	}
	return pub
}

func (r *localRepo) tree() *mst.Tree {
	if r.head == nil {
		return mst.NewEmpty(r.blocks)
	}
	tr, err := mst.Load(r.blocks, r.head.Data)
	if err != nil {
		r.t.Fatal(err)
	}
	return tr
}

// record is the DAG-CBOR of a post with text.
func record(t testing.TB, text string) []byte {
	t.Helper()
	b, err := dagcbor.Marshal(map[string]any{"$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-11-25T00:00:00.000Z"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func create(path string, rec []byte) repo.Write {
	return repo.Write{Action: repo.ActionCreate, Path: path, Record: rec}
}

// commit applies writes and returns the commit.
func (r *localRepo) commit(writes ...repo.Write) *repo.CommitResult {
	r.t.Helper()
	res, err := repo.BuildCommit(r.tree(), r.head, writes, repo.CommitOptions{DID: r.did, Key: r.key, Clock: r.clock})
	if err != nil {
		r.t.Fatal(err)
	}
	for _, b := range res.NewBlocks {
		r.blocks[b.CID] = b.Data
	}
	r.head, r.headCID = res.Commit, res.CID
	return res
}

// commitFrame is the #commit frame of res, as reservoir's firehose encodes
// it.
func (r *localRepo) commitFrame(res *repo.CommitResult, seq int64) []byte {
	e := &wire.Commit{Repo: string(r.did), Rev: string(res.Commit.Rev), Since: string(res.Since), Commit: res.CID,
		PrevData: res.PrevData, Blocks: res.Slice, Ops: res.Ops, Time: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)}
	return e.AppendFrame(nil, seq)
}

// syncBlocks is the CAR of a #sync: the current commit only.
func (r *localRepo) syncBlocks() []byte {
	blocks := car.AppendHeader(nil, r.headCID)
	return car.AppendBlock(blocks, r.headCID, r.head.Bytes())
}

// syncFrame is a #sync frame of the current commit.
func (r *localRepo) syncFrame(seq int64) []byte {
	e := &wire.Sync{DID: string(r.did), Rev: string(r.head.Rev), Blocks: r.syncBlocks(), Time: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)}
	return e.AppendFrame(nil, seq)
}

// carBytes writes the current repository as getRepo would: the commit,
// then the tree in the streamable order, records after their nodes. skip
// drops blocks; extra adds blocks at the end. Each block is written once.
func (r *localRepo) carBytes(skip map[cid.Cid]bool, extra ...[]byte) []byte {
	r.t.Helper()
	var buf bytes.Buffer
	w, err := car.NewWriter(&buf, []cid.Cid{r.headCID})
	if err != nil {
		r.t.Fatal(err)
	}
	written := map[cid.Cid]bool{}
	put := func(c cid.Cid, data []byte) error {
		if skip[c] || written[c] {
			return nil
		}
		written[c] = true
		return w.WriteBlock(c, data)
	}
	if err := put(r.headCID, r.head.Bytes()); err != nil {
		r.t.Fatal(err)
	}
	err = r.tree().WalkBlocks(put, func(c cid.Cid) error { return put(c, r.blocks[c]) })
	if err != nil {
		r.t.Fatal(err)
	}
	for _, e := range extra {
		if err := w.WriteBlock(dagcbor.SumCBOR(e), e); err != nil {
			r.t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		r.t.Fatal(err)
	}
	return buf.Bytes()
}
