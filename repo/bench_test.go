package repo

import (
	"testing"
)

// benchRepo returns a repository of n records and a 1-op #commit on top of
// it, with the state a verifier holds before that commit.
func benchRepo(b *testing.B, curve string, n int) (*testRepo, *CommitMessage, *RepoState) {
	b.Helper()
	r := newTestRepo(b, testKeys(b)[curve], 42)
	for len(r.paths) < n {
		r.commit(r.randomWrites(min(200, n-len(r.paths))))
	}
	state := &RepoState{Rev: r.head.Rev, Data: r.head.Data}
	msg, _ := r.commit([]Write{{Action: ActionCreate, Path: "app.bsky.feed.like/3lbmqhtxvhs2c", Record: r.record("like")}})
	return r, msg, state
}

// BenchmarkVerifyCommitMessage is the firehose #commit verification end to
// end for a typical 1-op commit on a 10k-record repository: CAR parse with
// hash checks, commit decode, signature, partial-tree inversion.
func BenchmarkVerifyCommitMessage(b *testing.B) {
	for _, curve := range []string{"K-256", "P-256"} {
		b.Run(curve, func(b *testing.B) {
			r, msg, state := benchRepo(b, curve, 10_000)
			pub := publicKey(b, r.key)
			b.SetBytes(int64(len(msg.Blocks)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := VerifyCommitMessage(msg, VerifyOptions{Key: pub, Prev: state}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCommitSignature is the signature check alone, for comparison.
func BenchmarkCommitSignature(b *testing.B) {
	for _, curve := range []string{"K-256", "P-256"} {
		b.Run(curve, func(b *testing.B) {
			key := testKeys(b)[curve]
			c := &Commit{DID: "did:plc:ewvi7nxzyoun6zhxrhs64oiz", Version: 3, Data: testData, Rev: "3lbmqhtxvhs2c"}
			if err := c.Sign(key); err != nil {
				b.Fatal(err)
			}
			pub := publicKey(b, key)
			b.ReportAllocs()
			for b.Loop() {
				if err := c.VerifySignature(pub); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyCommitNoSignature isolates what verification costs besides
// the signature: a key that accepts everything stands in.
func BenchmarkVerifyCommitNoSignature(b *testing.B) {
	_, msg, state := benchRepo(b, "K-256", 10_000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := VerifyCommitMessage(msg, VerifyOptions{Key: acceptAll{}, Prev: state}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildCommit is the producer side: apply one create to a
// 10k-record tree, sign, and build the #commit slice.
func BenchmarkBuildCommit(b *testing.B) {
	r, _, _ := benchRepo(b, "K-256", 10_000)
	rec := r.record("post")
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		tree := r.tree()
		path := "app.bsky.feed.post/" + string(r.clock.Next(""))
		if _, err := BuildCommit(tree, r.head, []Write{{Action: ActionCreate, Path: path, Record: rec}}, CommitOptions{DID: r.did, Key: r.key, Clock: r.clock}); err != nil {
			b.Fatal(err)
		}
	}
}
