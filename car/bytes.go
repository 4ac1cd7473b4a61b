package car

import (
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
)

// ParseBytes reads a whole CAR that is already in memory, such as the blocks
// of a firehose #commit. It checks what a Reader checks (header, limits,
// every block's hash) but copies nothing: the returned block slices alias
// data, which the caller must then leave unchanged. It is the fast path for
// small CARs; stream large ones through a Reader.
func ParseBytes(data []byte, opts *Options) (roots []cid.Cid, blocks map[cid.Cid][]byte, err error) {
	o := opts.withDefaults()
	if o.MaxTotal > 0 && int64(len(data)) > o.MaxTotal {
		return nil, nil, fmt.Errorf("car: %w: %d bytes, limit %d", ErrTooLarge, len(data), o.MaxTotal)
	}
	n, vlen, err := uvarint(data)
	switch {
	case len(data) == 0:
		return nil, nil, fmt.Errorf("car: header: %w: empty input (%w)", ErrTruncated, io.ErrUnexpectedEOF)
	case err == errVarintShort:
		return nil, nil, fmt.Errorf("car: header length: %w", readErr(io.ErrUnexpectedEOF))
	case err != nil:
		return nil, nil, fmt.Errorf("car: header length: %w: %w", ErrBadVarint, err)
	case n == 0:
		return nil, nil, fmt.Errorf("car: header: %w: zero length", ErrBadHeader)
	case n > uint64(o.MaxHeaderSize):
		return nil, nil, fmt.Errorf("car: header: %w: %d bytes, limit %d", ErrHeaderTooLarge, n, o.MaxHeaderSize)
	case n > uint64(len(data)-vlen):
		return nil, nil, fmt.Errorf("car: header of %d bytes: %w", n, readErr(io.ErrUnexpectedEOF))
	}
	off := vlen + int(n)
	if roots, err = parseHeader(data[vlen:off]); err != nil {
		return nil, nil, err
	}
	blocks = make(map[cid.Cid][]byte)
	for count := 0; off < len(data); count++ {
		start := off
		fail := func(format string, args ...any) error {
			return fmt.Errorf("car: block %d at offset %d: %w", count, start, fmt.Errorf(format, args...))
		}
		n, vlen, err := uvarint(data[off:])
		switch {
		case err == errVarintShort:
			return nil, nil, fail("section length: %w", readErr(io.ErrUnexpectedEOF))
		case err != nil:
			return nil, nil, fail("section length: %w: %w", ErrBadVarint, err)
		case o.MaxBlocks > 0 && count >= o.MaxBlocks:
			return nil, nil, fail("%w: more than %d", ErrTooManyBlocks, o.MaxBlocks)
		case n == 0:
			return nil, nil, fail("%w: zero length", ErrBadSection)
		case n > uint64(o.MaxBlockSize)+maxCIDLen:
			return nil, nil, fail("%w: section of %d bytes, limit %d for the block", ErrBlockTooLarge, n, o.MaxBlockSize)
		}
		off += vlen
		// Check in the order the streaming Reader does, so both report the
		// same error for the same input.
		avail := uint64(len(data) - off)
		p := data[off : off+int(min(n, maxCIDLen, avail))]
		info, err := parseCIDPrefix(p)
		switch {
		case err == errCIDShort && avail < min(n, maxCIDLen):
			return nil, nil, fail("CID: %w", readErr(io.ErrUnexpectedEOF))
		case err == errCIDShort:
			return nil, nil, fail("%w: section of %d bytes is shorter than its CID", ErrBadSection, n)
		case err != nil:
			return nil, nil, fail("%w: %w", ErrBadCID, err)
		case uint64(info.n) > n:
			return nil, nil, fail("%w: section of %d bytes is shorter than its %d-byte CID", ErrBadSection, n, info.n)
		case n > avail:
			return nil, nil, fail("section of %d bytes: %w", n, readErr(io.ErrUnexpectedEOF))
		}
		section := data[off : off+int(n)]
		c, err := cid.Cast(section[:info.n])
		if err != nil {
			return nil, nil, fail("%w: %w", ErrBadCID, err)
		}
		block := section[info.n:len(section):len(section)]
		if len(block) > o.MaxBlockSize {
			return nil, nil, fail("%w: %d bytes, limit %d", ErrBlockTooLarge, len(block), o.MaxBlockSize)
		}
		if err := verifyBlock(c, info, block); err != nil {
			return nil, nil, fail("%w", err)
		}
		blocks[c] = block
		off += int(n)
	}
	return roots, blocks, nil
}
