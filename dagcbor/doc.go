// Package dagcbor is the strict DAG-CBOR codec of the atproto data model
// (the "DRISL" profile): the bytes that every record, MST node, commit and
// firehose frame is hashed and signed over.
//
// # Encoding
//
// Encoders always write the canonical form: integers and lengths in their
// shortest encoding, definite lengths only, map keys sorted by length and then
// bytewise (RFC 7049 canonical order, not RFC 8949's), CIDs as tag 42 around
// a byte string of 0x00 followed by the binary CID, no floats.
//
// # Strict decoding
//
// Records, commits and MST nodes arrive from untrusted hosts, so the decoder
// rejects everything that is not the canonical form, with a *DecodeError whose
// Rule (ErrNonMinimal, ErrKeyOrder, ErrDuplicateKey, ErrIndefinite, ErrFloat,
// ErrUndefined, ErrTag, ErrTrailing, ...) says which rule broke and where.
// Containers are bounded (MaxContainerLen elements, MaxDepth levels,
// MaxKeyLen-byte keys) and no length is trusted beyond the input's size.
//
// # Why hand-written
//
// The decoder is written here rather than on a general CBOR library because
// none of the Go libraries can refuse non-shortest integers or out-of-order
// map keys when decoding (fxamacker/cbor checks duplicates but not order or
// minimality; cbor-gen, which indigo uses, checks neither), and both rules
// are what make a block's CID unique. The primitives here also decode in
// place without reflection, which the ingest path needs (see the benchmarks).
//
// # API shape
//
// Two levels: Decoder and the Append* functions read and write single items
// for hand-written codecs of fixed shapes; Unmarshal and Marshal convert whole
// items to and from the generic model (nil, bool, int64, string, []byte,
// cid.Cid, []any, map[string]any). SumCBOR and SumRaw compute the CIDs atproto
// uses. Nothing in the package holds state; a Decoder is used by one
// goroutine.
package dagcbor
