package car

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/ipfs/go-cid"
)

// readBufferSize is the bufio buffer NewReader puts in front of an input
// that is not already a large enough *bufio.Reader.
const readBufferSize = 64 << 10

// Reader reads a CAR v1 stream one block at a time, verifying each block's
// hash. It is not safe for concurrent use.
type Reader struct {
	br     *bufio.Reader
	opts   Options
	roots  []cid.Cid
	off    int64 // bytes consumed so far
	blocks int   // sections returned so far
	err    error // sticky: the first error (or io.EOF) Next returned
}

// NewReader reads and validates the header of the CAR in r. Reading goes
// through a bufio.Reader, r itself if it is one with a buffer of at least
// 256 bytes. opts may be nil for the defaults.
func NewReader(r io.Reader, opts *Options) (*Reader, error) {
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < maxCIDLen {
		br = bufio.NewReaderSize(r, readBufferSize)
	}
	cr := &Reader{br: br, opts: opts.withDefaults()}
	if err := cr.readHeader(); err != nil {
		return nil, err
	}
	return cr, nil
}

func (r *Reader) readHeader() error {
	n, vlen, err := r.readUvarint()
	if err == io.EOF {
		return fmt.Errorf("car: header: %w: empty input (%w)", ErrTruncated, io.ErrUnexpectedEOF)
	}
	if err != nil {
		return fmt.Errorf("car: header length: %w", err)
	}
	r.off += int64(vlen)
	switch {
	case n == 0:
		return fmt.Errorf("car: header: %w: zero length", ErrBadHeader)
	case n > uint64(r.opts.MaxHeaderSize):
		return fmt.Errorf("car: header: %w: %d bytes, limit %d", ErrHeaderTooLarge, n, r.opts.MaxHeaderSize)
	case r.overTotal(n):
		return fmt.Errorf("car: header: %w: %d-byte header beyond the %d-byte limit", ErrTooLarge, n, r.opts.MaxTotal)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r.br, body); err != nil {
		return fmt.Errorf("car: header of %d bytes: %w", n, readErr(err))
	}
	r.off += int64(n)
	roots, err := parseHeader(body)
	if err != nil {
		return err
	}
	r.roots = roots
	return nil
}

// Roots returns a copy of the header's roots. It may be empty: getBlocks
// answers are CARs without roots. For a repo export or a #commit's blocks,
// Roots()[0] is the commit CID.
func (r *Reader) Roots() []cid.Cid { return slices.Clone(r.roots) }

// Offset is the number of bytes read from the input so far.
func (r *Reader) Offset() int64 { return r.off }

// Next returns the next block, after checking that data hashes to c. It
// returns io.EOF when the input ends cleanly after the last section, and
// after that, or after any error, it keeps returning the same error. The
// data slice is freshly allocated with exactly the block's length and is
// owned by the caller.
func (r *Reader) Next() (c cid.Cid, data []byte, err error) {
	if r.err != nil {
		return cid.Undef, nil, r.err
	}
	c, data, err = r.next()
	if err != nil {
		r.err = err
		return cid.Undef, nil, err
	}
	return c, data, nil
}

func (r *Reader) next() (cid.Cid, []byte, error) {
	start := r.off
	n, vlen, err := r.readUvarint()
	if err == io.EOF {
		return cid.Undef, nil, io.EOF
	}
	if err != nil {
		return cid.Undef, nil, r.errorf(start, "section length: %w", err)
	}
	r.off += int64(vlen)
	switch {
	case r.opts.MaxBlocks > 0 && r.blocks >= r.opts.MaxBlocks:
		return cid.Undef, nil, r.errorf(start, "%w: more than %d", ErrTooManyBlocks, r.opts.MaxBlocks)
	case n == 0:
		return cid.Undef, nil, r.errorf(start, "%w: zero length", ErrBadSection)
	case n > uint64(r.opts.MaxBlockSize)+maxCIDLen:
		return cid.Undef, nil, r.errorf(start, "%w: section of %d bytes, limit %d for the block", ErrBlockTooLarge, n, r.opts.MaxBlockSize)
	case r.overTotal(n):
		return cid.Undef, nil, r.errorf(start, "%w: %d-byte section beyond the %d-byte limit", ErrTooLarge, n, r.opts.MaxTotal)
	}
	size := int(n) // n < 2^63: the varint holds 63 bits
	info, c, err := r.readCID(size)
	if err != nil {
		return cid.Undef, nil, r.errorf(start, "%w", err)
	}
	dataLen := size - info.n
	if dataLen > r.opts.MaxBlockSize {
		return cid.Undef, nil, r.errorf(start, "%w: %d bytes, limit %d", ErrBlockTooLarge, dataLen, r.opts.MaxBlockSize)
	}
	data := make([]byte, dataLen)
	if _, err := io.ReadFull(r.br, data); err != nil {
		return cid.Undef, nil, r.errorf(start, "block data of %d bytes: %w", dataLen, readErr(err))
	}
	r.off += int64(size)
	if err := verifyBlock(c, info, data); err != nil {
		return cid.Undef, nil, r.errorf(start, "%w", err)
	}
	r.blocks++
	return c, data, nil
}

// readCID parses and consumes the binary CID at the start of a section of
// size bytes. It peeks no further than the section, so the reader never
// waits for bytes of the next section.
func (r *Reader) readCID(size int) (cidInfo, cid.Cid, error) {
	p, perr := r.br.Peek(min(size, maxCIDLen))
	info, err := parseCIDPrefix(p)
	switch {
	case err == errCIDShort && perr != nil:
		return info, cid.Undef, fmt.Errorf("CID: %w", readErr(perr))
	case err == errCIDShort:
		return info, cid.Undef, fmt.Errorf("%w: section of %d bytes is shorter than its CID", ErrBadSection, size)
	case err != nil:
		return info, cid.Undef, fmt.Errorf("%w: %w", ErrBadCID, err)
	case info.n > size:
		return info, cid.Undef, fmt.Errorf("%w: section of %d bytes is shorter than its %d-byte CID", ErrBadSection, size, info.n)
	case info.n > len(p):
		return info, cid.Undef, fmt.Errorf("CID: %w", readErr(perr))
	}
	c, err := cid.Cast(p[:info.n])
	if err != nil {
		return info, cid.Undef, fmt.Errorf("%w: %w", ErrBadCID, err)
	}
	if _, err := r.br.Discard(info.n); err != nil {
		return info, cid.Undef, fmt.Errorf("CID: %w", readErr(err)) // cannot happen after Peek
	}
	return info, c, nil
}

// readUvarint reads a length prefix. It returns io.EOF only when the input
// ends before its first byte.
func (r *Reader) readUvarint() (uint64, int, error) {
	var x uint64
	for i := 0; i < maxVarintLen; i++ {
		b, err := r.br.ReadByte()
		if err != nil {
			if err == io.EOF && i == 0 {
				return 0, 0, io.EOF
			}
			return 0, 0, readErr(err)
		}
		if b < 0x80 {
			if b == 0 && i > 0 {
				return 0, 0, fmt.Errorf("%w: %w", ErrBadVarint, errVarintNonMinimal)
			}
			return x | uint64(b)<<(7*i), i + 1, nil
		}
		x |= uint64(b&0x7f) << (7 * i)
	}
	return 0, 0, fmt.Errorf("%w: %w", ErrBadVarint, errVarintOverlong)
}

// overTotal reports whether reading n more bytes would pass MaxTotal.
func (r *Reader) overTotal(n uint64) bool {
	if r.opts.MaxTotal <= 0 {
		return false
	}
	left := r.opts.MaxTotal - r.off
	return left < 0 || n > uint64(left)
}

// errorf adds the position of the section that starts at offset start.
func (r *Reader) errorf(start int64, format string, args ...any) error {
	return fmt.Errorf("car: block %d at offset %d: %w", r.blocks, start, fmt.Errorf(format, args...))
}

// readErr turns an early end of input into ErrTruncated (which still
// matches io.ErrUnexpectedEOF) and passes other read errors through.
func readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w (%w)", ErrTruncated, io.ErrUnexpectedEOF)
	}
	return err
}

// ReadAll reads a whole CAR into memory: its roots, and its blocks by CID
// (duplicates collapse; they are verified to be identical bytes anyway).
// Use a Reader to stream large CARs instead.
func ReadAll(r io.Reader, opts *Options) (roots []cid.Cid, blocks map[cid.Cid][]byte, err error) {
	cr, err := NewReader(r, opts)
	if err != nil {
		return nil, nil, err
	}
	blocks = make(map[cid.Cid][]byte)
	for {
		c, data, err := cr.Next()
		if err == io.EOF {
			return cr.roots, blocks, nil
		}
		if err != nil {
			return nil, nil, err
		}
		blocks[c] = data
	}
}
