package car

import (
	"bytes"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

// benchRepo is a repository-sized CAR: 100k blocks of 100–500 bytes,
// skewed towards small ones as records and MST nodes are (size = 100 +
// 400·u³, mean 200), about 24 MB in all.
var benchRepo = sync.OnceValues(func() ([]block, []byte) {
	rng := rand.New(rand.NewPCG(15, 16))
	blocks := make([]block, 100_000)
	for i := range blocks {
		u := rng.Float64()
		data := make([]byte, 100+int(400*u*u*u))
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		blocks[i] = block{dagcbor.SumCBOR(data), data}
	}
	b := AppendHeader(nil, blocks[0].c)
	for _, blk := range blocks {
		b = AppendBlock(b, blk.c, blk.data)
	}
	return blocks, b
})

func BenchmarkWrite(b *testing.B) {
	blocks, car := benchRepo()
	roots := []cid.Cid{blocks[0].c}
	b.SetBytes(int64(len(car)))
	b.ReportAllocs()
	for b.Loop() {
		w, err := NewWriter(io.Discard, roots)
		if err != nil {
			b.Fatal(err)
		}
		for _, blk := range blocks {
			if err := w.WriteBlock(blk.c, blk.data); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRead(b *testing.B) {
	_, car := benchRepo()
	b.SetBytes(int64(len(car)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(car), nil)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			_, _, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != 100_000 {
			b.Fatalf("%d blocks", n)
		}
	}
}

// BenchmarkAppendCommitCAR builds a typical #commit blocks CAR in memory: a
// commit, four MST nodes and one record.
func BenchmarkAppendCommitCAR(b *testing.B) {
	blocks, _ := benchRepo()
	blocks = blocks[:6]
	size := HeaderSize(blocks[0].c)
	for _, blk := range blocks {
		size += SectionSize(blk.c, len(blk.data))
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	buf := make([]byte, 0, size)
	for b.Loop() {
		buf = AppendHeader(buf[:0], blocks[0].c)
		for _, blk := range blocks {
			buf = AppendBlock(buf, blk.c, blk.data)
		}
	}
}
