// Package lexcheck validates JSON bodies against the atproto lexicons in
// ../shared/fixtures/lexicons/lexicons, for tests: an endpoint test passes
// every JSON success body through Check, which fails the test for each way
// the body departs from the output schema of its method.
//
// It is stricter than a lexicon validator for inbound data, because it
// checks what this service sends:
//
//   - An object may hold only the keys its schema declares ("$type" only
//     where it names the object's own definition, as union members must).
//     Lexicons let producers add fields; our responses must match exactly.
//   - Required keys must be present, and null is accepted only where the
//     schema lists the key as nullable.
//   - Bodies are parsed as the atproto data model (dagcbor.FromJSON): a
//     float, a duplicate key, a malformed {"$link"} or {"$bytes"} object
//     anywhere is an error, including inside "unknown" values.
//
// What is checked, by lexicon type: object (required, nullable, unknown
// keys), ref (local "#def", "nsid#def" and "nsid" for main), union (by
// $type; a closed union refuses other types, an open one accepts them
// unchecked), array (items, minLength, maxLength), string (format, enum,
// const, minLength and maxLength in UTF-8 bytes, min and max graphemes
// approximated by counting user-perceived characters with a simple rule),
// integer (minimum, maximum, enum, const), boolean (const), unknown (any
// object), cid-link, bytes (minLength, maxLength), blob (the current form
// only: $type, ref, mimeType, size; accept and maxSize), null, and refs to
// tokens (the token's full name as a string). knownValues are open sets and
// are not enforced. String formats are checked with indigo's atproto/syntax
// parsers (did, handle, at-identifier, nsid, cid, tid, record-key, at-uri,
// datetime, uri, language); cid strings must also decode with go-cid.
//
// A Catalog loads lexicon files lazily, one per NSID, and is safe for
// concurrent use; Check shares one catalog per fixture directory, so
// parallel tests parse each file once.
//
// This package is for tests only: production code must not import it.
package lexcheck
