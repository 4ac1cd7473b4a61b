package loadgen

import (
	"fmt"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/mst"
	"github.com/reservoir-atproto/reservoir/repo"
)

// BigRepo is a large synthetic repository built without a tree in memory
// (the streaming mst.Builder): the records of the mix's create kinds in
// their proportions, every block handed to Emit once, in no particular
// order (Emit must copy data it keeps: the builder reuses its buffers).
type BigRepo struct {
	DID     string
	Key     atcrypto.PrivateKey
	Records int
	Seed    int64
	Emit    func(c cid.Cid, data []byte) error
}

// Build emits every record and MST node, then the signed commit; it
// returns the commit's CID and the commit.
func (b *BigRepo) Build() (cid.Cid, *repo.Commit, error) {
	a := newAccountGen(b.Seed, 0, time.Now())
	createdAt := time.UnixMicro(a.micros).UTC().Format("2006-01-02T15:04:05.000Z")
	builder := mst.NewBuilder(b.Emit)
	// Sorted paths: collection by collection (in sorted order), record
	// keys increasing within each.
	var total int
	for _, k := range []Kind{KindLike, KindPost, KindRepost, KindFollow} { // app.bsky.feed.like < .post < .repost < app.bsky.graph.follow
		total += DefaultMix[k]
	}
	done := 0
	for i, k := range []Kind{KindLike, KindPost, KindRepost, KindFollow} {
		n := b.Records * DefaultMix[k] / total
		if i == 3 {
			n = b.Records - done
		}
		coll := map[Kind]string{KindLike: CollectionLike, KindPost: CollectionPost, KindFollow: CollectionFollow, KindRepost: CollectionRepost}[k]
		for range n {
			rec := a.record(k, createdAt)
			c := dagcbor.SumCBOR(rec)
			if err := builder.Add([]byte(coll+"/"+a.rkey()), c); err != nil {
				return cid.Undef, nil, fmt.Errorf("loadgen: big repo: %w", err)
			}
			if err := b.Emit(c, rec); err != nil {
				return cid.Undef, nil, err
			}
		}
		done += n
	}
	data, err := builder.Finish()
	if err != nil {
		return cid.Undef, nil, fmt.Errorf("loadgen: big repo: %w", err)
	}
	commit := &repo.Commit{DID: syntax.DID(b.DID), Version: 3, Data: data, Rev: syntax.NewTIDNow(0)}
	if err := commit.Sign(b.Key); err != nil {
		return cid.Undef, nil, err
	}
	cb := commit.Bytes()
	cc := dagcbor.SumCBOR(cb)
	if err := b.Emit(cc, cb); err != nil {
		return cid.Undef, nil, err
	}
	return cc, commit, nil
}
