package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/car"
	"github.com/reservoir-atproto/reservoir/repo"
)

// exportCAR returns the full getRepo CAR of an account.
func (e *env) exportCAR(did string) []byte {
	e.t.Helper()
	a, err := e.db.Account(did)
	if err != nil {
		e.t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := e.repos.WriteRepo(&buf, a, ""); err != nil {
		e.t.Fatal(err)
	}
	return buf.Bytes()
}

func carBlocks(t *testing.T, b []byte) (cid.Cid, map[cid.Cid][]byte) {
	t.Helper()
	roots, blocks, err := car.ReadAll(bytes.NewReader(b), nil)
	if err != nil {
		t.Fatal(err)
	}
	return roots[0], blocks
}

// A repository moves between two hosts: exported by one, imported by the
// other under the same DID and key, and served back with the same root and
// exactly the same blocks.
func TestImportServesTheSameRepository(t *testing.T) {
	ctx := context.Background()
	key, _ := atcrypto.GeneratePrivateKeyK256()
	src, dst := newEnv(t), newEnv(t)
	did := "did:web:alice.test"
	if _, err := src.host.CreateAccount(ctx, CreateAccountInput{Handle: "alice.test", DID: did, SigningKey: key.Multibase()}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		var ws []Write
		for j := 0; j < 10; j++ {
			ws = append(ws, Write{Write: repo.Write{Action: repo.ActionCreate, Path: fmt.Sprintf("app.bsky.feed.post/r%03d%d", i, j), Record: record(fmt.Sprint(i, j))}})
		}
		if i%3 == 2 {
			ws = append(ws, Write{Write: repo.Write{Action: repo.ActionDelete, Path: fmt.Sprintf("app.bsky.feed.post/r%03d0", i-1)}})
		}
		if _, err := src.host.ApplyWrites(ctx, did, ws, cid.Undef); err != nil {
			t.Fatal(err)
		}
	}
	exported := src.exportCAR(did)
	if _, err := dst.host.CreateAccount(ctx, CreateAccountInput{Handle: "alice.test", DID: did, SigningKey: key.Multibase()}); err != nil {
		t.Fatal(err)
	}
	seq := dst.db.LastSeq()
	if err := dst.host.ImportRepo(ctx, did, bytes.NewReader(exported)); err != nil {
		t.Fatal(err)
	}
	root1, blocks1 := carBlocks(t, exported)
	root2, blocks2 := carBlocks(t, dst.exportCAR(did))
	if root1 != root2 || !maps.EqualFunc(blocks1, blocks2, bytes.Equal) {
		t.Fatalf("served repository differs: root %s vs %s, %d vs %d blocks", root1, root2, len(blocks1), len(blocks2))
	}
	evs := dst.events(seq)
	if len(evs) != 1 || evs[0].t != "#sync" {
		t.Fatalf("import emitted %v", evs)
	}
	dst.checkLiveSet(did)
	a, _ := dst.db.Account(did)
	if n, _ := dst.db.CollectionCount(a.UID, "app.bsky.feed.post"); n != 290 {
		t.Fatalf("imported collection count %d, want 290", n)
	}
	// Writes continue from the imported commit.
	res, err := dst.host.ApplyWrites(ctx, did, []Write{{Write: repo.Write{Action: repo.ActionCreate, Path: "app.bsky.feed.post/after", Record: record("after")}}}, root1)
	if err != nil {
		t.Fatalf("write after import: %v", err)
	}
	pub, _ := key.PublicKey()
	imported, _ := repo.DecodeCommit(blocks1[root1])
	v := dst.events(seq + 1)
	after, _ := dst.db.Account(did)
	state := &repo.RepoState{Rev: imported.Rev, Data: imported.Data}
	if _, err := repo.VerifyCommitMessage(commitMessage(t, v[0].body), repo.VerifyOptions{Key: pub, Prev: state}); err != nil || res.Commit != after.Head.Commit {
		t.Fatalf("commit after import does not chain from the imported one: %v", err)
	}

	// Importing again, now older than the head, is refused; so is a CAR
	// signed by another key, and a CAR missing a record.
	if err := dst.host.ImportRepo(ctx, did, bytes.NewReader(exported)); !errors.Is(err, ErrInvalidRepo) {
		t.Fatalf("re-import of an older repo: %v", err)
	}
	other := newEnv(t)
	otherKey, _ := atcrypto.GeneratePrivateKeyK256()
	if _, err := other.host.CreateAccount(ctx, CreateAccountInput{Handle: "alice.test", DID: did, SigningKey: otherKey.Multibase()}); err != nil {
		t.Fatal(err)
	}
	if err := other.host.ImportRepo(ctx, did, bytes.NewReader(exported)); !errors.Is(err, ErrInvalidRepo) {
		t.Fatalf("import signed by another key: %v", err)
	}
	fresh := newEnv(t)
	if _, err := fresh.host.CreateAccount(ctx, CreateAccountInput{Handle: "alice.test", DID: did, SigningKey: key.Multibase()}); err != nil {
		t.Fatal(err)
	}
	var someRecord cid.Cid
	for c, b := range blocks1 {
		if bytes.Contains(b, []byte("createdAt")) {
			someRecord = c
			break
		}
	}
	trimmed := car.AppendHeader(nil, root1)
	for c, b := range blocks1 {
		if c != someRecord {
			trimmed = car.AppendBlock(trimmed, c, b)
		}
	}
	if err := fresh.host.ImportRepo(ctx, did, bytes.NewReader(trimmed)); !errors.Is(err, ErrInvalidRepo) {
		t.Fatalf("import missing a record: %v", err)
	}
	if err := fresh.host.ImportRepo(ctx, did, bytes.NewReader([]byte("not a car"))); !errors.Is(err, ErrInvalidRepo) {
		t.Fatalf("garbage import: %v", err)
	}
	fa, _ := fresh.db.Account(did)
	if fa.Head.Defined() {
		t.Fatal("a refused import changed the repository")
	}
}

// Importing over an existing repository replaces it: old records leave the
// indexes, and the live set is exactly the new repository.
func TestImportReplaces(t *testing.T) {
	ctx := context.Background()
	key, _ := atcrypto.GeneratePrivateKeyK256()
	did := "did:web:alice.test"
	src, dst := newEnv(t), newEnv(t)
	for _, e := range []*env{src, dst} {
		if _, err := e.host.CreateAccount(ctx, CreateAccountInput{Handle: "alice.test", DID: did, SigningKey: key.Multibase()}); err != nil {
			t.Fatal(err)
		}
	}
	// dst writes first (older revs), src later (newer revs).
	if _, err := dst.host.ApplyWrites(ctx, did, []Write{{Write: repo.Write{Action: repo.ActionCreate, Path: "app.bsky.graph.follow/old", Record: record("old")}}}, cid.Undef); err != nil {
		t.Fatal(err)
	}
	if _, err := src.host.ApplyWrites(ctx, did, []Write{{Write: repo.Write{Action: repo.ActionCreate, Path: "app.bsky.feed.post/new", Record: record("new")}}}, cid.Undef); err != nil {
		t.Fatal(err)
	}
	if err := dst.host.ImportRepo(ctx, did, bytes.NewReader(src.exportCAR(did))); err != nil {
		t.Fatal(err)
	}
	a, _ := dst.db.Account(did)
	if ok, _ := dst.db.HasRecord(a.UID, "app.bsky.graph.follow/old"); ok {
		t.Fatal("old record survived the import")
	}
	if ok, _ := dst.db.HasRecord(a.UID, "app.bsky.feed.post/new"); !ok {
		t.Fatal("imported record missing from the index")
	}
	if uids, _ := dst.db.ReposByCollection("app.bsky.graph.follow", 0, 10); len(uids) != 0 {
		t.Fatal("old collection still indexed")
	}
	dst.checkLiveSet(did)
}
