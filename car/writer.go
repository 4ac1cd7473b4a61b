package car

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
)

// writeBufferSize is the Writer's buffer: the most it ever holds in memory.
const writeBufferSize = 64 << 10

// Writer streams a CAR v1 file: the header, then one section per WriteBlock.
// It buffers at most 64 KiB (larger blocks go straight through), so a
// repository of any size is written in constant memory. Call Flush at the
// end. The Writer does not hash blocks: it trusts its caller, which computed
// the CIDs (the Reader is where bytes from elsewhere are checked). It is not
// safe for concurrent use.
type Writer struct {
	bw      *bufio.Writer
	scratch [maxVarintLen]byte
	written int64
	err     error // sticky: the first error
}

// NewWriter writes the header with the given roots (possibly none) to a
// buffer in front of w. If w is already a *bufio.Writer of at least 4 KiB it
// is used directly. It fails only if a root is cid.Undef.
func NewWriter(w io.Writer, roots []cid.Cid) (*Writer, error) {
	for i, r := range roots {
		if !r.Defined() {
			return nil, fmt.Errorf("car: header: root %d: %w", i, ErrUndefinedCID)
		}
	}
	bw, ok := w.(*bufio.Writer)
	if !ok || bw.Size() < 4096 {
		bw = bufio.NewWriterSize(w, writeBufferSize)
	}
	cw := &Writer{bw: bw}
	// The header is small (59 bytes for one root): build it on the stack
	// when it fits.
	var buf [128]byte
	cw.write(AppendHeader(buf[:0], roots...))
	return cw, nil
}

// WriteBlock writes one section: varint(len(CID)+len(data)), the binary CID
// and data. Errors from the underlying writer may surface here or only at
// Flush; after the first, every call returns it.
func (w *Writer) WriteBlock(c cid.Cid, data []byte) error {
	if w.err != nil {
		return w.err
	}
	if !c.Defined() {
		w.err = fmt.Errorf("car: block at offset %d: %w", w.written, ErrUndefinedCID)
		return w.err
	}
	key := c.KeyString()
	n := binary.PutUvarint(w.scratch[:], uint64(len(key)+len(data)))
	w.write(w.scratch[:n])
	w.writeString(key)
	w.write(data)
	return w.err
}

// WriteRawBlock writes one section from a binary CID the caller has already
// validated (a store key, say), sparing the allocation of a cid.Cid.
func (w *Writer) WriteRawBlock(cidBytes, data []byte) error {
	if w.err != nil {
		return w.err
	}
	n := binary.PutUvarint(w.scratch[:], uint64(len(cidBytes)+len(data)))
	w.write(w.scratch[:n])
	w.write(cidBytes)
	w.write(data)
	return w.err
}

// Flush writes any buffered data to the underlying writer.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if err := w.bw.Flush(); err != nil {
		w.err = fmt.Errorf("car: flush at offset %d: %w", w.written, err)
	}
	return w.err
}

// Written is the number of bytes written so far, including those still
// buffered.
func (w *Writer) Written() int64 { return w.written }

func (w *Writer) write(p []byte) {
	if w.err != nil {
		return
	}
	n, err := w.bw.Write(p)
	w.written += int64(n)
	if err != nil {
		w.err = fmt.Errorf("car: write at offset %d: %w", w.written, err)
	}
}

func (w *Writer) writeString(s string) {
	if w.err != nil {
		return
	}
	n, err := w.bw.WriteString(s)
	w.written += int64(n)
	if err != nil {
		w.err = fmt.Errorf("car: write at offset %d: %w", w.written, err)
	}
}

// AppendBlock appends one section (varint length, binary CID, data) to b and
// returns the extended slice. With AppendHeader it builds small CARs in
// memory, such as a firehose #commit's blocks. c must be defined.
func AppendBlock(b []byte, c cid.Cid, data []byte) []byte {
	key := c.KeyString()
	b = binary.AppendUvarint(b, uint64(len(key)+len(data)))
	b = append(b, key...)
	return append(b, data...)
}

// SectionSize is the number of bytes AppendBlock or WriteBlock writes for a
// block of dataLen bytes under c: 1 + 36 + dataLen for a sha2-256 CID and a
// block under 92 bytes.
func SectionSize(c cid.Cid, dataLen int) int {
	n := len(c.KeyString()) + dataLen
	return uvarintLen(uint64(n)) + n
}
