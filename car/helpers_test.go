package car

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
)

// moduleRoot walks up from the package directory to the one holding go.mod.
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// fixturePath locates a shared interop fixture, by the module-relative path
// ../shared/fixtures/interop/<rel>.
func fixturePath(t testing.TB, rel string) string {
	return filepath.Join(moduleRoot(t), "..", "shared", "fixtures", "interop", rel)
}

// unhex decodes hex with optional spaces, for byte layouts copied from the spec.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustCID(t testing.TB, s string) cid.Cid {
	t.Helper()
	c, err := cid.Decode(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

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
