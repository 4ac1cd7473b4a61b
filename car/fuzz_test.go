package car

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/ipfs/go-cid"
)

// FuzzReader feeds arbitrary bytes to the Reader. It must never panic, and
// every block it returns must hash to its CID, checked independently with
// go-cid's Prefix().Sum (go-multihash). Whatever it reads completely must
// survive a write/read round trip.
func FuzzReader(f *testing.F) {
	for _, tc := range readCases {
		f.Add(tc.bytes(f))
	}
	rng := rand.New(rand.NewPCG(13, 14))
	blocks := randomBlocks(rng, 6, 0, 200)
	valid := writeCAR(f, []cid.Cid{blocks[0].c}, blocks)
	f.Add(valid)
	for i := 0; i < 20; i++ { // mutations: flipped bytes and cuts
		m := bytes.Clone(valid)
		m[rng.IntN(len(m))] ^= byte(1 + rng.IntN(255))
		f.Add(m)
		f.Add(valid[:rng.IntN(len(valid))])
	}

	opts := &Options{MaxBlockSize: 1 << 16, MaxTotal: 1 << 20, MaxBlocks: 1000}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := NewReader(bytes.NewReader(in), opts)
		if err != nil {
			return
		}
		roots := r.Roots()
		var got []block
		for {
			c, data, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return
			}
			want, err := c.Prefix().Sum(data)
			if err != nil || want != c {
				t.Fatalf("block %d: CID %s but data hashes to %s (%v)", len(got), c, want, err)
			}
			got = append(got, block{c, data})
		}
		_, again, err := readBlocks(writeCAR(t, roots, got), opts)
		if err != nil || len(again) != len(got) {
			t.Fatalf("rewrite: %d blocks, %v; want %d", len(again), err, len(got))
		}
	})
}
