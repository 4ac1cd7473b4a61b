// Package car reads and writes CAR v1 files (content-addressable archives,
// application/vnd.ipld.car), the container atproto uses for repository
// exports (getRepo), block sets (getBlocks) and the blocks of a firehose
// #commit or #sync. See sync-spec.md §4.5.
//
// # Format
//
// A CAR is a header then sections, each prefixed by its length:
//
//	varint(len(header))  header = DAG-CBOR {roots: [CID...], version: 1}
//	varint(len(cid)+len(data))  binary CID  data
//	...
//
// Varints are multiformats unsigned varints (LEB128, minimal, at most 9
// bytes). The header with one sha2-256 root is 59 bytes (3a a2 65 "roots" 81
// d8 2a 58 25 00 <36-byte CID> 67 "version" 01: a 1-byte varint holding 58,
// then the 58-byte map); with no roots it is 18 bytes (17 of CBOR). For a
// repo export or a #commit, roots[0] is the commit CID; getBlocks answers have
// no roots, and Reader accepts that. A blessed atproto CID is 36 bytes:
// 01 <codec 71 or 55> 12 20 <sha2-256 digest>.
//
// # Reading: what is and isn't checked
//
// NewReader reads the header strictly (canonical DAG-CBOR, version == 1,
// roots an array of CIDs; unknown extra keys are skipped). Reader.Next then
// returns one block per section and checks:
//   - each length prefix is a minimal varint, and each section is long
//     enough for its CID;
//   - the CID parses (CIDv1, or CIDv0 which is a bare sha2-256 multihash);
//   - the data hashes to the CID. sha2-256 is computed directly; an identity
//     CID (multihash 0x00) must carry the data itself as its digest; any
//     other hash function (and truncated sha2-256 digests) is refused with
//     ErrUnsupportedHash — atproto uses none, and PDS-ref refuses them too;
//   - the limits in Options, each before the memory it guards is allocated.
//
// It does not interpret blocks or links: order, duplicates, extra blocks,
// dangling links, codecs other than dag-cbor and raw, and whether the roots
// are present are all left to the caller (the repo layer checks that
// roots[0] is a commit and that CIDs are blessed). Input that ends exactly
// between two sections cannot be told apart from a shorter CAR and reads as
// one; input that ends anywhere else gives ErrTruncated.
//
// Every error wraps a sentinel (ErrTruncated, ErrBadVarint, ErrBadHeader,
// ErrBadVersion, ErrBadSection, ErrBadCID, ErrUnsupportedHash,
// ErrHashMismatch, and the limit errors ErrHeaderTooLarge, ErrBlockTooLarge,
// ErrTooLarge, ErrTooManyBlocks) and says where: "header", or the block's
// index and the byte offset where its section starts.
//
// # Memory
//
// Next allocates one slice per block, of exactly the block's length, which
// the caller owns and may keep or modify (plus the CID's own small string).
// ParseBytes is the zero-copy path for a CAR already in memory (the blocks
// of a #commit): the same checks, and block slices that alias the input.
// Reading goes through one bufio.Reader (64 KiB, or the caller's own
// *bufio.Reader if it has at least 256 bytes of buffer). The Writer holds at
// most a 64 KiB buffer, so both stream CARs of any size in constant memory.
//
// # Writing
//
// NewWriter writes the canonical header, WriteBlock a section, Flush the
// buffer. The writer does not hash: callers compute CIDs themselves (with
// dagcbor.SumCBOR or SumRaw) and are trusted. AppendHeader and AppendBlock
// build small CARs directly in a []byte (a #commit's blocks), with
// HeaderSize and SectionSize to size the buffer first.
//
// # Concurrency
//
// A Reader or a Writer belongs to one goroutine. The package has no global
// state; the Append and Size functions are safe anywhere.
package car
