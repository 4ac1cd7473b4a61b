package client

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/reservoir-atproto/reservoir/repo"
)

// commitFrames builds n #commit frames of one repository, each creating
// opsPer records over a repository that grows.
func commitFrames(b *testing.B, n, opsPer int) (*localRepo, [][]byte) {
	r := newLocalRepo(b, "did:plc:ewvi7nxzyoun6zhxrhs64oiz")
	frames := make([][]byte, n)
	k := 0
	for i := range n {
		var ws []repo.Write
		for range opsPer {
			ws = append(ws, create(fmt.Sprintf("app.bsky.feed.post/3l%011d", k), record(b, fmt.Sprintf("post %d with some text to make it a realistic size", k))))
			k++
		}
		frames[i] = r.commitFrame(r.commit(ws...), int64(i+1))
	}
	return r, frames
}

func BenchmarkDecodeFrame(b *testing.B) {
	_, frames := commitFrames(b, 1, 5)
	b.SetBytes(int64(len(frames[0])))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeFrame(frames[0]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeliverCommit is the Subscriber's work per #commit after the
// websocket read: decoding, (verification,) attaching the records, over a
// repository of 1,000 records growing by one record per commit.
func BenchmarkDeliverCommit(b *testing.B) {
	r, frames := commitFrames(b, 1000, 1)
	var size int
	for _, f := range frames {
		size += len(f)
	}
	for _, verify := range []bool{false, true} {
		b.Run(fmt.Sprintf("verify=%v", verify), func(b *testing.B) {
			s := &Subscriber{}
			if verify {
				s.Keys = StaticKey(r.publicKey())
			}
			ctx := context.Background()
			handler := func(_ context.Context, ev Event) error {
				c := ev.(*Commit)
				if c.VerifyErr != nil || c.Ops[0].Record == nil {
					b.Fatalf("seq %d: %v", c.Seq, c.VerifyErr)
				}
				return nil
			}
			b.SetBytes(int64(size / len(frames)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i%len(frames) == 0 { // start the chain again
					s.states, s.haveSeq = newRepoStates(DefaultMaxTrackedRepos), false
				}
				ev, err := DecodeFrame(frames[i%len(frames)])
				if err != nil {
					b.Fatal(err)
				}
				if err := s.deliver(ctx, ev, handler); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkVerifyRepoCAR opens and fully verifies a repository of 10,000
// records (every block hashed, the MST checked and rebuilt, every record
// decoded, the signature).
func BenchmarkVerifyRepoCAR(b *testing.B) {
	r := newLocalRepo(b, "did:plc:ewvi7nxzyoun6zhxrhs64oiz")
	for c := range 50 {
		var ws []repo.Write
		for i := range 200 {
			k := c*200 + i
			ws = append(ws, create(fmt.Sprintf("app.bsky.feed.post/3l%011d", k), record(b, fmt.Sprintf("post %d with some text to make it a realistic size", k))))
		}
		r.commit(ws...)
	}
	data := r.carBytes(nil)
	keys := StaticKey(r.publicKey())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		rc, err := OpenRepoCAR(bytes.NewReader(data), int64(len(data)), nil)
		if err != nil {
			b.Fatal(err)
		}
		rep, err := rc.Verify(context.Background(), VerifyRepoOptions{Keys: keys})
		if err != nil || rep.Records != 10000 {
			b.Fatal(rep, err)
		}
	}
}
