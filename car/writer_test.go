package car

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/reservoir-atproto/reservoir/dagcbor"
	"github.com/reservoir-atproto/reservoir/internal/testutil"
)

// countingWriter records how many bytes reached the underlying writer.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// TestWriterStreams checks that the Writer never holds more than its buffer:
// what it has accepted minus what reached the destination stays under 64 KiB.
func TestWriterStreams(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	blocks := append(randomBlocks(rng, 2000, 100, 500), randomBlocks(rng, 3, 200_000, 300_000)...)
	var dst countingWriter
	w, err := NewWriter(&dst, []cid.Cid{blocks[0].c})
	if err != nil {
		t.Fatal(err)
	}
	want := int64(HeaderSize(blocks[0].c))
	for i, b := range blocks {
		if err := w.WriteBlock(b.c, b.data); err != nil {
			t.Fatal(err)
		}
		want += int64(SectionSize(b.c, len(b.data)))
		if w.Written() != want {
			t.Fatalf("after block %d: Written = %d, want %d", i, w.Written(), want)
		}
		if held := w.Written() - dst.n; held > 64<<10 {
			t.Fatalf("after block %d: %d bytes held in memory", i, held)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if dst.n != want {
		t.Errorf("destination got %d bytes, want %d", dst.n, want)
	}
}

type failingWriter struct{ after int }

var errDisk = errors.New("disk full")

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) <= w.after {
		w.after -= len(p)
		return len(p), nil
	}
	n := w.after
	w.after = 0
	return n, errDisk
}

func TestWriterErrors(t *testing.T) {
	if _, err := NewWriter(io.Discard, []cid.Cid{dagcbor.SumRaw(nil), cid.Undef}); !errors.Is(err, ErrUndefinedCID) {
		t.Errorf("NewWriter with an undefined root: %v, want ErrUndefinedCID", err)
	}
	w, err := NewWriter(io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteBlock(cid.Undef, []byte("x")); !errors.Is(err, ErrUndefinedCID) {
		t.Errorf("WriteBlock(cid.Undef): %v, want ErrUndefinedCID", err)
	}

	// A failing destination: the error surfaces (at WriteBlock or Flush) and sticks.
	w, err = NewWriter(&failingWriter{after: 100_000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 1000)
	c := dagcbor.SumRaw(data)
	var first error
	for i := 0; i < 200 && first == nil; i++ {
		first = w.WriteBlock(c, data)
	}
	if first == nil {
		first = w.Flush()
	}
	if !errors.Is(first, errDisk) {
		t.Fatalf("error = %v, want errDisk", first)
	}
	if err := w.WriteBlock(c, data); err != first {
		t.Errorf("WriteBlock after an error = %v, want %v", err, first)
	}
	if err := w.Flush(); err != first {
		t.Errorf("Flush after an error = %v, want %v", err, first)
	}
}

func TestWriterReusesBufio(t *testing.T) {
	var buf bytes.Buffer
	bw := bufio.NewWriterSize(&buf, 8192)
	w, err := NewWriter(bw, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w.bw != bw {
		t.Error("a large enough *bufio.Writer was wrapped again")
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), testutil.Unhex(t, zeroRootHeaderHex)) {
		t.Errorf("wrote % x", buf.Bytes())
	}
}

func TestWriteRawBlockMatchesWriteBlock(t *testing.T) {
	data := []byte("raw block")
	c := dagcbor.SumRaw(data)
	var a, b bytes.Buffer
	wa, _ := NewWriter(&a, []cid.Cid{c})
	wb, _ := NewWriter(&b, []cid.Cid{c})
	if err := wa.WriteBlock(c, data); err != nil {
		t.Fatal(err)
	}
	if err := wb.WriteRawBlock(c.Bytes(), data); err != nil {
		t.Fatal(err)
	}
	wa.Flush()
	wb.Flush()
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("WriteRawBlock and WriteBlock write different bytes")
	}
}
