package car

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

type block struct {
	c    cid.Cid
	data []byte
}

// randomBlocks makes n blocks with real CIDs: DAG-CBOR records (SumCBOR)
// and raw blobs (SumRaw) of sizes in [minSize, maxSize].
func randomBlocks(rng *rand.Rand, n, minSize, maxSize int) []block {
	blocks := make([]block, n)
	for i := range blocks {
		size := minSize + rng.IntN(maxSize-minSize+1)
		if i%4 == 3 {
			data := make([]byte, size)
			for j := range data {
				data[j] = byte(rng.Uint32())
			}
			blocks[i] = block{dagcbor.SumRaw(data), data}
			continue
		}
		// A record-like map {"$type": ..., "text": ...} of about size bytes.
		text := make([]byte, max(size-40, 0))
		for j := range text {
			text[j] = 'a' + byte(rng.IntN(26))
		}
		data, err := dagcbor.Marshal(map[string]any{"$type": "app.bsky.feed.post", "text": string(text)})
		if err != nil {
			panic(err)
		}
		blocks[i] = block{dagcbor.SumCBOR(data), data}
	}
	return blocks
}

// writeCAR writes a CAR with the streaming Writer.
func writeCAR(t testing.TB, roots []cid.Cid, blocks []block) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, roots)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		if err := w.WriteBlock(b.c, b.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readBlocks reads every block of car in order, stopping at the first error.
func readBlocks(car []byte, opts *Options) (roots []cid.Cid, blocks []block, err error) {
	r, err := NewReader(bytes.NewReader(car), opts)
	if err != nil {
		return nil, nil, err
	}
	for {
		c, data, err := r.Next()
		if err != nil {
			if err == io.EOF {
				return r.Roots(), blocks, nil
			}
			return r.Roots(), blocks, err
		}
		blocks = append(blocks, block{c, data})
	}
}

func bufioReader(b []byte, size int) *bufio.Reader {
	return bufio.NewReaderSize(bytes.NewReader(b), size)
}
