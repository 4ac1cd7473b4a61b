package car

import "errors"

// Error classes. Every error the package returns for bad input wraps exactly
// one of these (test with errors.Is) and says where it was detected: the
// header, or the block index and byte offset of the section.
var (
	// ErrTruncated: the input ends inside the header or inside a section.
	// It also wraps io.ErrUnexpectedEOF. Input that ends exactly between
	// two sections is a shorter CAR, not a truncated one.
	ErrTruncated = errors.New("truncated CAR")
	// ErrBadVarint: a length prefix that is not a minimal unsigned LEB128
	// varint of at most 9 bytes.
	ErrBadVarint = errors.New("invalid varint")
	// ErrBadHeader: the header is not a DAG-CBOR map {roots: [CID...],
	// version: 1}, or is empty.
	ErrBadHeader = errors.New("invalid CAR header")
	// ErrBadVersion: the header's version is not 1 (CARv2 files say 2).
	ErrBadVersion = errors.New("unsupported CAR version")
	// ErrHeaderTooLarge: the header is longer than Options.MaxHeaderSize.
	ErrHeaderTooLarge = errors.New("CAR header too large")
	// ErrBadSection: a section of length zero, or shorter than its CID.
	ErrBadSection = errors.New("invalid CAR section")
	// ErrBadCID: the section does not start with a valid binary CID.
	ErrBadCID = errors.New("invalid CID in CAR section")
	// ErrUnsupportedHash: the CID's multihash is neither a full 32-byte
	// sha2-256 digest nor identity, so the block cannot be verified.
	ErrUnsupportedHash = errors.New("unsupported multihash")
	// ErrHashMismatch: the block's bytes do not hash to its CID.
	ErrHashMismatch = errors.New("block hash does not match its CID")
	// ErrBlockTooLarge: a block payload is longer than Options.MaxBlockSize.
	ErrBlockTooLarge = errors.New("CAR block too large")
	// ErrTooLarge: the CAR is longer than Options.MaxTotal.
	ErrTooLarge = errors.New("CAR too large")
	// ErrTooManyBlocks: the CAR has more than Options.MaxBlocks sections.
	ErrTooManyBlocks = errors.New("too many blocks in CAR")
	// ErrUndefinedCID: a writer was given cid.Undef as a root or block CID.
	ErrUndefinedCID = errors.New("undefined CID")
)
