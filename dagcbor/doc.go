// Package dagcbor is the strict DAG-CBOR codec of the atproto data model
// (the "DRISL" profile), the bytes that every record, MST node, commit and
// firehose frame is hashed and signed over, and the model's JSON form.
//
// # Encoding
//
// Encoders always write the canonical form:
//   - integers and lengths in their shortest encoding;
//   - definite lengths only;
//   - map keys sorted by length and then bytewise (RFC 7049 canonical order,
//     not RFC 8949's), so "b" < "c" < "aa";
//   - CIDs as tag 42 around a byte string of 0x00 followed by the binary CID;
//   - no floats.
//
// A value therefore has exactly one encoding. FuzzUnmarshal checks that
// property: whatever Unmarshal accepts, Marshal writes back byte for byte.
//
// # Strict decoding
//
// Records, commits and MST nodes arrive from untrusted hosts, so the decoder
// rejects everything that is not the canonical form, with a *DecodeError whose
// Rule (ErrNonMinimal, ErrKeyOrder, ErrDuplicateKey, ErrIndefinite, ErrFloat,
// ErrUndefined, ErrTag, ErrTrailing, ...) says which rule broke and Offset
// where. Some cases are easy to get wrong:
//   - tag 42 must be written d8 2a (a longer form is ErrNonMinimal), and its
//     content must be a byte string starting 0x00 (ErrCID, ErrCIDPrefix);
//   - a float is ErrFloat even when its value is integral (f9 3c00 is 1.0);
//   - a map key that is not text is ErrMapKeyType, whatever the value;
//   - CIDv0 links (0x00 + a bare sha2-256 multihash) are read and written
//     back unchanged; whether a link must be "blessed" (CIDv1, sha2-256,
//     dag-cbor or raw) is for the caller to decide with IsBlessed.
//
// Containers are bounded (MaxContainerLen elements, MaxDepth levels,
// MaxKeyLen-byte keys, MaxCIDLen-byte CIDs) and no length is trusted beyond
// the input's size, so a short hostile input cannot make the decoder
// allocate much.
//
// # Why hand-written
//
// The decoder is written here rather than on a general CBOR library because
// none of the Go libraries can refuse non-shortest integers or out-of-order
// map keys when decoding (fxamacker/cbor checks duplicates but not order or
// minimality, even in its strictest mode; cbor-gen, which indigo uses, checks
// neither), and both rules are what make a block's CID unique. The primitives
// here also decode in place without reflection, which the ingest path needs.
// TestGeneralLibraryAcceptsNonCanonical and BenchmarkDecodeRecord show both.
//
// # The JSON form
//
// FromJSON and ToJSON convert between the generic model and atproto JSON:
// {"$link": "<CID>"} is a cid-link and {"$bytes": "<base64>"} is bytes, each
// an object of exactly that one key. The rules FromJSON applies:
//   - numbers must have an integer value in the int64 range; fractions and
//     exponents are allowed when the value is integral (123.0, 1e2), decided
//     by exact decimal arithmetic, not float64 (1.0000000000000000001 is a
//     float). Values beyond ±(2^53−1) are accepted, as in CBOR;
//   - $bytes is standard base64 (not URL-safe), with or without padding, with
//     zero unused bits and no line breaks; ToJSON writes it without padding,
//     as the interop fixtures and indigo do;
//   - $link must be the canonical string of a CID, as ToJSON writes it (base32
//     lowercase, or "Qm..." for CIDv0), so each CID has one JSON form;
//   - duplicate keys in an object are refused (ErrDuplicateKey): encoding/json
//     and JavaScript silently keep the last one, so two readers of the same
//     text could see different records;
//   - strings must be valid UTF-8, and \u escapes of lone surrogates, which
//     UTF-8 cannot carry, are refused rather than replaced;
//   - the limits are those of the CBOR decoder, counted the same way, so any
//     value FromJSON accepts can be encoded and decoded again. The string of
//     a $link or $bytes object is not an extra level.
//
// Other keys starting with "$" are ordinary keys. Errors are ErrInvalidJSON
// (the text is not well-formed JSON) or ErrDataModel (well-formed, but not
// the data model), never both; where a CBOR rule applies unchanged, the error
// wraps it as well (ErrFloat, ErrIntRange, ErrDepth, ErrCID, ...).
//
// ToJSON sorts object keys bytewise, so its output is deterministic, but JSON
// has no canonical form: hashes and signatures are always over CBOR. Maps
// with a "$link" or "$bytes" key cannot be written as JSON, since they would
// read back as a link or bytes.
//
// # Records
//
// ParseRecordJSON and UnmarshalRecord read a record (top level an object,
// within MaxRecordJSONLen or MaxRecordCBORLen) and apply ValidateRecord: in
// every object, "$type" if present is a non-empty string; "$type": "blob"
// objects are well-formed blobs; objects of exactly the keys "cid" and
// "mimeType" are legacy blobs, which are read (ParseBlob) but never written;
// "$link" and "$bytes" are not allowed as keys. A top-level "$type" is not
// required at this layer: that is the lexicon's business.
//
// # API shape
//
// Two levels: Decoder and the Append* functions read and write single items
// for hand-written codecs of fixed shapes; Unmarshal and Marshal convert whole
// items to and from the generic model (nil, bool, int64, string, []byte,
// cid.Cid, []any, map[string]any). SumCBOR and SumRaw compute the CIDs atproto
// uses. Nothing in the package holds state, so every function may be called
// concurrently; a Decoder is used by one goroutine. Values returned by
// Unmarshal and FromJSON share nothing with their input.
package dagcbor
