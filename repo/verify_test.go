package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/atcrypto"
	indigorepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/car"
	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/mst"
)

// testRepo is a hosted repository built with BuildCommit over an in-memory
// block store, producing #commit messages the way a host does.
type testRepo struct {
	t      testing.TB
	did    syntax.DID
	key    atcrypto.PrivateKey
	blocks mst.MemBlocks
	head   *Commit
	clock  *RevClock
	rng    *rand.Rand
	paths  []string // live record paths
}

func newTestRepo(t testing.TB, key atcrypto.PrivateKey, seed int64) *testRepo {
	return &testRepo{t: t, did: "did:plc:ewvi7nxzyoun6zhxrhs64oiz", key: key, blocks: mst.MemBlocks{}, clock: NewRevClock(1), rng: rand.New(rand.NewSource(seed))}
}

func (r *testRepo) tree() *mst.Tree {
	if r.head == nil {
		return mst.NewEmpty(r.blocks)
	}
	tr, err := mst.Load(r.blocks, r.head.Data)
	if err != nil {
		r.t.Fatal(err)
	}
	return tr
}

func (r *testRepo) record(text string) []byte {
	b, err := dagcbor.Marshal(map[string]any{"$type": "app.bsky.feed.post", "text": text, "createdAt": "2026-11-25T00:00:00.000Z"})
	if err != nil {
		r.t.Fatal(err)
	}
	return b
}

// commit applies writes and returns the #commit message fields.
func (r *testRepo) commit(writes []Write) (*CommitMessage, *CommitResult) {
	r.t.Helper()
	res, err := BuildCommit(r.tree(), r.head, writes, CommitOptions{DID: r.did, Key: r.key, Clock: r.clock})
	if err != nil {
		r.t.Fatal(err)
	}
	for _, b := range res.NewBlocks {
		if dagcbor.SumCBOR(b.Data) != b.CID {
			r.t.Fatalf("new block %s does not hash to its CID", b.CID)
		}
		r.blocks[b.CID] = b.Data
	}
	r.head = res.Commit
	live := map[string]bool{}
	for _, p := range r.paths {
		live[p] = true
	}
	for _, op := range res.Ops {
		live[op.Path] = op.Action != ActionDelete
	}
	r.paths = r.paths[:0]
	for p, ok := range live {
		if ok {
			r.paths = append(r.paths, p)
		}
	}
	return &CommitMessage{Repo: string(r.did), Rev: string(res.Commit.Rev), Since: string(res.Since), Commit: res.CID, PrevData: res.PrevData, Blocks: res.Slice, Ops: res.Ops}, res
}

// randomWrites makes n writes: mostly creates, some updates and deletes of
// existing records, across a few collections.
func (r *testRepo) randomWrites(n int) []Write {
	var ws []Write
	used := map[string]bool{}
	colls := []string{"app.bsky.feed.post", "app.bsky.feed.like", "app.bsky.graph.follow", "xyz.statusphere.status"}
	for len(ws) < n {
		x := r.rng.Intn(10)
		switch {
		case x < 2 && len(r.paths) > 0:
			p := r.paths[r.rng.Intn(len(r.paths))]
			if !used[p] {
				used[p] = true
				ws = append(ws, Write{Action: ActionDelete, Path: p})
			}
		case x < 4 && len(r.paths) > 0:
			p := r.paths[r.rng.Intn(len(r.paths))]
			if !used[p] {
				used[p] = true
				ws = append(ws, Write{Action: ActionUpdate, Path: p, Record: r.record(fmt.Sprint(r.rng.Int63()))})
			}
		default:
			p := colls[r.rng.Intn(len(colls))] + "/" + string(syntax.NewTIDFromInteger(uint64(r.rng.Int63())))
			if !used[p] {
				used[p] = true
				ws = append(ws, Write{Action: ActionCreate, Path: p, Record: r.record(fmt.Sprint(r.rng.Int63()))})
			}
		}
	}
	return ws
}

// toIndigo converts a message to indigo's lexicon type.
func toIndigo(msg *CommitMessage) *comatproto.SyncSubscribeRepos_Commit {
	out := &comatproto.SyncSubscribeRepos_Commit{Repo: msg.Repo, Rev: msg.Rev, Commit: lexutil.LexLink(msg.Commit), Blocks: msg.Blocks, Time: "2026-11-25T00:00:00.000Z", Blobs: []lexutil.LexLink{}}
	if msg.Since != "" {
		s := msg.Since
		out.Since = &s
	}
	if msg.PrevData.Defined() {
		l := lexutil.LexLink(msg.PrevData)
		out.PrevData = &l
	}
	for _, op := range msg.Ops {
		o := &comatproto.SyncSubscribeRepos_RepoOp{Action: string(op.Action), Path: op.Path}
		if op.CID.Defined() {
			l := lexutil.LexLink(op.CID)
			o.Cid = &l
		}
		if op.Prev.Defined() {
			l := lexutil.LexLink(op.Prev)
			o.Prev = &l
		}
		out.Ops = append(out.Ops, o)
	}
	return out
}

// A long random history: every commit verifies against the previous state,
// with our verifier and with indigo's independent one.
func TestVerifyProducedCommits(t *testing.T) {
	for name, key := range testKeys(t) {
		t.Run(name, func(t *testing.T) {
			r := newTestRepo(t, key, 1)
			pub := publicKey(t, key)
			var state *RepoState
			for i := 0; i < 300; i++ {
				n := 1 + r.rng.Intn(4)
				if i%50 == 49 {
					n = 40 // a larger multi-op commit now and then
				}
				msg, res := r.commit(r.randomWrites(n))
				v, err := VerifyCommitMessage(msg, VerifyOptions{Key: pub, Prev: state})
				if err != nil {
					t.Fatalf("commit %d (%d ops): %v", i, len(msg.Ops), err)
				}
				if v.CommitCID != res.CID || v.Commit.Rev != res.Commit.Rev {
					t.Fatalf("commit %d: verified commit differs from the built one", i)
				}
				if !msg.PrevData.Defined() {
					// indigo only logs a first commit; nothing to compare.
				} else if _, err := indigorepo.VerifyCommitMessage(context.Background(), toIndigo(msg)); err != nil {
					t.Fatalf("commit %d: indigo rejects our #commit: %v", i, err)
				}
				s := v.State()
				state = &s
			}
			if len(r.paths) < 100 {
				t.Fatalf("history left only %d records; the test should build a real tree", len(r.paths))
			}
		})
	}
}

// rebuildSlice rewrites a CAR slice through keep (which may drop or alter
// blocks).
func rebuildSlice(t testing.TB, slice []byte, keep func(c cid.Cid, b []byte) ([]byte, bool)) []byte {
	t.Helper()
	rd, err := car.NewReader(bytes.NewReader(slice), nil)
	if err != nil {
		t.Fatal(err)
	}
	out := car.AppendHeader(nil, rd.Roots()...)
	for {
		c, b, err := rd.Next()
		if err != nil {
			break
		}
		if nb, ok := keep(c, b); ok {
			out = car.AppendBlock(out, c, nb)
		}
	}
	return out
}

func TestVerifyCommitFailures(t *testing.T) {
	key := testKeys(t)["K-256"]
	pub := publicKey(t, key)
	r := newTestRepo(t, key, 2)
	var state *RepoState
	for i := 0; i < 30; i++ { // a tree with some depth first
		msg, _ := r.commit(r.randomWrites(20))
		v, err := VerifyCommitMessage(msg, VerifyOptions{Key: pub, Prev: state})
		if err != nil {
			t.Fatal(err)
		}
		s := v.State()
		state = &s
	}
	msg, res := r.commit([]Write{
		{Action: ActionCreate, Path: "app.bsky.feed.post/3lbmqhtxvhs2c", Record: r.record("new")},
		{Action: ActionDelete, Path: r.paths[0]},
		{Action: ActionUpdate, Path: r.paths[1], Record: r.record("changed")},
	})
	if r.paths[0] == "app.bsky.feed.post/3lbmqhtxvhs2c" || r.paths[1] == "app.bsky.feed.post/3lbmqhtxvhs2c" {
		t.Fatal("test setup: the new path collides")
	}
	if _, err := VerifyCommitMessage(msg, VerifyOptions{Key: pub, Prev: state}); err != nil {
		t.Fatalf("unaltered message refused: %v", err)
	}
	other := testKeys(t)["P-256"]

	type mutation struct {
		name   string
		mutate func(m *CommitMessage, o *VerifyOptions)
		want   error
	}
	var createIdx, updateIdx int
	for i, op := range msg.Ops {
		switch op.Action {
		case ActionCreate:
			createIdx = i
		case ActionUpdate:
			updateIdx = i
		}
	}
	otherCID := dagcbor.SumCBOR(r.record("something else"))
	cases := []mutation{
		{"wrong key", func(m *CommitMessage, o *VerifyOptions) { o.Key = publicKey(t, other) }, ErrSignature},
		{"stale rev", func(m *CommitMessage, o *VerifyOptions) { o.Prev = &RepoState{Rev: res.Commit.Rev, Data: state.Data} }, ErrRevOrder},
		{"rev in the future", func(m *CommitMessage, o *VerifyOptions) { o.Now = time.Now().Add(-time.Hour) }, ErrFutureRev},
		{"since not the stored rev", func(m *CommitMessage, o *VerifyOptions) { m.Since = "2222222222222" }, ErrChainBreak},
		{"prevData not the stored data", func(m *CommitMessage, o *VerifyOptions) { m.PrevData = otherCID }, ErrPrevDataMismatch},
		{"prevData wrong, state unknown", func(m *CommitMessage, o *VerifyOptions) { m.PrevData = otherCID; o.Prev = nil }, ErrInversion},
		{"prevData missing", func(m *CommitMessage, o *VerifyOptions) { m.PrevData = cid.Undef }, ErrPrevDataMissing},
		{"op cid altered", func(m *CommitMessage, o *VerifyOptions) { m.Ops[createIdx].CID = otherCID }, ErrInversion},
		{"update prev altered", func(m *CommitMessage, o *VerifyOptions) { m.Ops[updateIdx].Prev = otherCID }, ErrInversion},
		{"op left out", func(m *CommitMessage, o *VerifyOptions) { m.Ops = m.Ops[1:] }, ErrInversion},
		{"extra op", func(m *CommitMessage, o *VerifyOptions) {
			m.Ops = append(m.Ops, Op{Action: ActionDelete, Path: "app.bsky.feed.post/3aaaaaaaaaaaa", Prev: otherCID})
		}, ErrInversion},
		{"repo differs", func(m *CommitMessage, o *VerifyOptions) { m.Repo = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa" }, ErrRepoMismatch},
		{"rev differs from the commit", func(m *CommitMessage, o *VerifyOptions) { m.Rev = "3lbmqhtxvhs2c" }, ErrMalformed},
		{"commit CID not the root", func(m *CommitMessage, o *VerifyOptions) { m.Commit = otherCID }, ErrCIDMismatch},
		{"tooBig", func(m *CommitMessage, o *VerifyOptions) { m.TooBig = true }, ErrMalformed},
		{"too many ops", func(m *CommitMessage, o *VerifyOptions) {
			for len(m.Ops) <= MaxCommitOps {
				m.Ops = append(m.Ops, m.Ops[0])
			}
		}, ErrTooManyOps},
		{"blocks too large", func(m *CommitMessage, o *VerifyOptions) { m.Blocks = make([]byte, MaxCommitBlocksBytes+1) }, ErrTooLarge},
		{"blocks empty", func(m *CommitMessage, o *VerifyOptions) { m.Blocks = nil }, ErrMissingBlock},
		{"blocks not a CAR", func(m *CommitMessage, o *VerifyOptions) { m.Blocks = []byte("hello") }, ErrMalformed},
		{"record block dropped", func(m *CommitMessage, o *VerifyOptions) {
			m.Blocks = rebuildSlice(t, m.Blocks, func(c cid.Cid, b []byte) ([]byte, bool) { return b, c != m.Ops[createIdx].CID })
		}, ErrMissingBlock},
		{"MST root dropped", func(m *CommitMessage, o *VerifyOptions) {
			m.Blocks = rebuildSlice(t, m.Blocks, func(c cid.Cid, b []byte) ([]byte, bool) { return b, c != res.Commit.Data })
		}, ErrMissingBlock},
		{"commit block dropped", func(m *CommitMessage, o *VerifyOptions) {
			m.Blocks = rebuildSlice(t, m.Blocks, func(c cid.Cid, b []byte) ([]byte, bool) { return b, c != res.CID })
		}, ErrMissingBlock},
		{"block bytes altered", func(m *CommitMessage, o *VerifyOptions) {
			m.Blocks = rebuildSlice(t, m.Blocks, func(c cid.Cid, b []byte) ([]byte, bool) {
				if c == m.Ops[createIdx].CID {
					b = append([]byte(nil), b...)
					b[len(b)-1] ^= 1
				}
				return b, true
			})
		}, ErrCIDMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := *msg
			m.Ops = append([]Op(nil), msg.Ops...)
			st := *state
			o := VerifyOptions{Key: pub, Prev: &st}
			tc.mutate(&m, &o)
			_, err := VerifyCommitMessage(&m, o)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if FailedCheck(err) != tc.want {
				t.Fatalf("FailedCheck = %v, want %v", FailedCheck(err), tc.want)
			}
		})
	}

	// Lenient mode accepts a commit without prevData (and cannot invert it).
	m := *msg
	m.PrevData = cid.Undef
	if _, err := VerifyCommitMessage(&m, VerifyOptions{Key: pub, Prev: state, Lenient: true}); err != nil {
		t.Fatalf("lenient mode refused a commit without prevData: %v", err)
	}
}

// Every proof node matters: dropping any single block of the slice that a
// consumer needs must be detected, never give a silently wrong answer.
func TestVerifyDetectsEveryMissingNode(t *testing.T) {
	key := testKeys(t)["K-256"]
	pub := publicKey(t, key)
	r := newTestRepo(t, key, 3)
	var state *RepoState
	for i := 0; i < 40; i++ {
		msg, _ := r.commit(r.randomWrites(25))
		v, err := VerifyCommitMessage(msg, VerifyOptions{Key: pub, Prev: state})
		if err != nil {
			t.Fatal(err)
		}
		s := v.State()
		state = &s
	}
	for round := 0; round < 20; round++ {
		msg, _ := r.commit(r.randomWrites(1 + round%3))
		_, blocks, err := car.ReadAll(bytes.NewReader(msg.Blocks), nil)
		if err != nil {
			t.Fatal(err)
		}
		for drop := range blocks {
			m := *msg
			m.Blocks = rebuildSlice(t, msg.Blocks, func(c cid.Cid, b []byte) ([]byte, bool) { return b, c != drop })
			_, err := VerifyCommitMessage(&m, VerifyOptions{Key: pub, Prev: state})
			if err == nil {
				continue // that block was not needed (an extra proof node)
			}
			if !errors.Is(err, ErrMissingBlock) {
				t.Fatalf("round %d, dropping %s: got %v, want ErrMissingBlock or success", round, drop, err)
			}
		}
		v, err := VerifyCommitMessage(msg, VerifyOptions{Key: pub, Prev: state})
		if err != nil {
			t.Fatal(err)
		}
		s := v.State()
		state = &s
	}
}

func TestBuildCommitRefusesBadWrites(t *testing.T) {
	key := testKeys(t)["K-256"]
	r := newTestRepo(t, key, 4)
	r.commit([]Write{{Action: ActionCreate, Path: "app.bsky.feed.post/3lbmqhtxvhs2c", Record: r.record("a")}})
	rootBefore := r.head.Data
	cases := map[string]struct {
		writes []Write
		want   error
	}{
		"create existing": {[]Write{{Action: ActionCreate, Path: "app.bsky.feed.post/3lbmqhtxvhs2c", Record: r.record("b")}}, ErrRecordExists},
		"delete missing":  {[]Write{{Action: ActionDelete, Path: "app.bsky.feed.post/3lbmqhtxvhs2d"}}, ErrRecordNotFound},
		"bad path":        {[]Write{{Action: ActionCreate, Path: "nope", Record: r.record("b")}}, ErrInvalidOp},
		"duplicate path":  {[]Write{{Action: ActionCreate, Path: "app.bsky.feed.post/x", Record: r.record("b")}, {Action: ActionUpdate, Path: "app.bsky.feed.post/x", Record: r.record("c")}}, ErrInvalidOp},
		"not CBOR":        {[]Write{{Action: ActionCreate, Path: "app.bsky.feed.post/y", Record: []byte{0xa1, 0x61}}}, ErrInvalidRecord},
		"not a map":       {[]Write{{Action: ActionCreate, Path: "app.bsky.feed.post/y", Record: []byte{0x01}}}, ErrInvalidRecord},
		"non-canonical":   {[]Write{{Action: ActionCreate, Path: "app.bsky.feed.post/y", Record: []byte{0xa2, 0x61, 0x62, 0x01, 0x61, 0x61, 0x02}}}, ErrInvalidRecord},
		"too large":       {[]Write{{Action: ActionCreate, Path: "app.bsky.feed.post/y", Record: bigRecord(t, MaxRecordSize)}}, ErrInvalidRecord},
	}
	for name, tc := range cases {
		tree := r.tree()
		_, err := BuildCommit(tree, r.head, tc.writes, CommitOptions{DID: r.did, Key: key})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", name, err, tc.want)
		}
		if root, _ := tree.Root(); root != rootBefore {
			t.Errorf("%s: a refused write changed the tree", name)
		}
	}
	tooMany := make([]Write, MaxCommitOps+1)
	if _, err := BuildCommit(r.tree(), r.head, tooMany, CommitOptions{DID: r.did, Key: key}); !errors.Is(err, ErrTooManyOps) {
		t.Errorf("201 writes: got %v", err)
	}
	// Three records of ~900 kB fit the record limit but not the slice limit.
	var big []Write
	for i := 0; i < 3; i++ {
		big = append(big, Write{Action: ActionCreate, Path: fmt.Sprintf("app.bsky.feed.post/big%d", i), Record: bigRecord(t, 900_000+i)})
	}
	if _, err := BuildCommit(r.tree(), r.head, big, CommitOptions{DID: r.did, Key: key}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("2.7 MB commit: got %v, want ErrTooLarge", err)
	}
	// An update to the identical record is no op at all.
	res, err := BuildCommit(r.tree(), r.head, []Write{{Action: ActionUpdate, Path: "app.bsky.feed.post/3lbmqhtxvhs2c", Record: r.record("a")}}, CommitOptions{DID: r.did, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Ops) != 0 || res.Commit.Data != rootBefore {
		t.Fatalf("identical update produced ops %v", res.Ops)
	}
}

func bigRecord(t testing.TB, size int) []byte {
	b, err := dagcbor.Marshal(map[string]any{"$type": "x.y.z", "blob": make([]byte, size)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRecordProofs(t *testing.T) {
	key := testKeys(t)["P-256"]
	pub := publicKey(t, key)
	r := newTestRepo(t, key, 5)
	for i := 0; i < 20; i++ {
		r.commit(r.randomWrites(30))
	}
	headCID := r.head.CID()
	prove := func(path string) []byte {
		var buf []byte
		buf = car.AppendHeader(buf, headCID)
		if _, err := RecordProof(r.blocks, headCID, path, func(c cid.Cid, b []byte) error {
			buf = car.AppendBlock(buf, c, b)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return buf
	}
	for _, path := range r.paths[:50] {
		res, err := VerifyRecordProof(prove(path), r.did, pub, path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		want, _ := r.tree().Get([]byte(path))
		if res.RecordCID != want || dagcbor.SumCBOR(res.Record) != want {
			t.Fatalf("%s: proof shows %s, tree has %s", path, res.RecordCID, want)
		}
	}
	for i := 0; i < 50; i++ {
		path := "app.bsky.feed.post/" + string(syntax.NewTIDFromInteger(uint64(r.rng.Int63())))
		res, err := VerifyRecordProof(prove(path), r.did, pub, path)
		if err != nil {
			t.Fatalf("absent %s: %v", path, err)
		}
		if res.RecordCID.Defined() {
			t.Fatalf("absent %s: proof shows a record", path)
		}
	}
	// A proof for one path does not prove another path in a different part of the tree.
	proof := prove(r.paths[0])
	for _, other := range r.paths[1:] {
		if _, err := VerifyRecordProof(proof, r.did, pub, other); err != nil {
			return // found a path that needs blocks the proof lacks
		}
	}
	t.Fatal("one proof verified every path: proofs carry the whole tree")
}

// acceptAll is a PublicKey whose signature check always passes, to measure
// everything else.
type acceptAll struct{ atcrypto.PublicKey }

func (acceptAll) HashAndVerify(content, sig []byte) error { return nil }

// The delta the inversion reports is the difference of the two trees' node
// sets, computed here independently by walking both trees whole, and each
// dead node's bytes hash to its CID: on a growing repository, and on small
// ones that shrink to nothing and grow again (where edits rebuild nodes
// they pass through: height changes, splits undone by merges).
func TestVerifyDeltaIsTheTreeDifference(t *testing.T) {
	key := testKeys(t)["K-256"]
	pub := publicKey(t, key)
	checked := 0
	for seed := int64(1); seed <= 6; seed++ {
		r := newTestRepo(t, key, seed)
		small := seed > 1
		nodes := func(root cid.Cid) map[cid.Cid]bool {
			tr, err := mst.Load(r.blocks, root)
			if err != nil {
				t.Fatal(err)
			}
			set := map[cid.Cid]bool{}
			if err := tr.WalkBlocks(func(c cid.Cid, _ []byte) error { set[c] = true; return nil }, func(cid.Cid) error { return nil }); err != nil {
				t.Fatal(err)
			}
			return set
		}
		var state *RepoState
		for i := 0; i < 250; i++ {
			var writes []Write
			switch {
			case small && len(r.paths) > 8 || small && len(r.paths) > 0 && r.rng.Intn(3) == 0:
				for _, p := range r.paths[:1+r.rng.Intn(len(r.paths))] {
					writes = append(writes, Write{Action: ActionDelete, Path: p})
				}
			case small:
				writes = r.randomWrites(1 + r.rng.Intn(3))
			case i%40 == 39:
				writes = r.randomWrites(30)
			default:
				writes = r.randomWrites(1 + r.rng.Intn(4))
			}
			var before map[cid.Cid]bool
			if r.head != nil {
				before = nodes(r.head.Data)
			}
			msg, _ := r.commit(writes)
			v, err := VerifyCommitMessage(msg, VerifyOptions{Key: pub, Prev: state})
			if err != nil {
				t.Fatalf("seed %d commit %d: %v", seed, i, err)
			}
			s := v.State()
			state = &s
			if before == nil {
				if v.Delta != nil {
					t.Fatalf("seed %d commit %d: a first commit has a delta", seed, i)
				}
				continue
			}
			if v.Delta == nil {
				t.Fatalf("seed %d commit %d: no delta after an inversion", seed, i)
			}
			after := nodes(r.head.Data)
			wantNew, wantDead := map[cid.Cid]bool{}, map[cid.Cid]bool{}
			for c := range after {
				if !before[c] {
					wantNew[c] = true
				}
			}
			for c := range before {
				if !after[c] {
					wantDead[c] = true
				}
			}
			gotNew, gotDead := map[cid.Cid]bool{}, map[cid.Cid]bool{}
			for _, c := range v.Delta.NewNodes {
				if _, ok := v.Blocks[c]; !ok {
					t.Fatalf("seed %d commit %d: new node %s is not in the slice", seed, i, c)
				}
				gotNew[c] = true
			}
			for _, b := range v.Delta.DeadNodes {
				if dagcbor.SumCBOR(b.Data) != b.CID {
					t.Fatalf("seed %d commit %d: dead node %s: bytes hash elsewhere", seed, i, b.CID)
				}
				if !bytes.Equal(r.blocks[b.CID], b.Data) {
					t.Fatalf("seed %d commit %d: dead node %s: bytes differ from the stored node", seed, i, b.CID)
				}
				gotDead[b.CID] = true
			}
			if !maps.Equal(gotNew, wantNew) || len(gotNew) != len(v.Delta.NewNodes) {
				t.Fatalf("seed %d commit %d (%d ops): new nodes %d, want %d", seed, i, len(msg.Ops), len(gotNew), len(wantNew))
			}
			if !maps.Equal(gotDead, wantDead) || len(gotDead) != len(v.Delta.DeadNodes) {
				t.Fatalf("seed %d commit %d (%d ops): dead nodes %d, want %d", seed, i, len(msg.Ops), len(gotDead), len(wantDead))
			}
			checked += len(wantNew) + len(wantDead)
		}
	}
	if checked < 2000 {
		t.Fatalf("only %d node changes checked; the histories are too small", checked)
	}
}
