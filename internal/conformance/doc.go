// Package conformance checks that the field libraries reservoir builds on —
// indigo's atproto/syntax and atproto/atcrypto — pass the shared interop
// fixtures; a failing test here means a dependency upgrade broke interop.
//
// The package has no code, only tests. They read the fixtures of
// bluesky-social/atproto-interop-tests from ../shared/fixtures/interop,
// found relative to the module root (the directory holding go.mod); the
// fixtures are never copied into this repository.
//
// # Syntax
//
// Each syntax/<kind>_syntax_valid.txt line must parse and each
// <kind>_syntax_invalid.txt line must fail, through the matching syntax.Parse*
// function (ParseAtIdentifier, ParseATURI, ParseCID, ParseDatetime, ParseDID,
// ParseHandle, ParseLanguage, ParseNSID, ParseRecordKey, ParseTID, ParseURI).
// Lines are used exactly as written: blank lines and '#' comments are
// skipped, but spaces are never trimmed, because leading and trailing spaces
// are what some invalid cases test. datetime_parse_invalid.txt lists
// datetimes that pass the regex but are not real instants; ParseDatetime
// rejects them because it also runs time.Parse and a year-zero bound.
//
// Where the pinned indigo disagrees with a fixture, the line is listed in
// divergences with the reason, and the test asserts the disagreement instead
// of skipping it, so an upgrade that fixes it (or breaks another line) shows
// up. Today that is language tags: ParseLanguage is a regex only, so it
// rejects the valid private-use tag "X-fr-CH" and accepts the repeated
// variants and extensions of language_parse_invalid.txt.
//
// # Crypto
//
// signature-fixtures.json: the did:key and the bare multibase key (base58btc
// of the 33-byte compressed point, no multicodec prefix) must give equal
// keys, the did:key must round-trip, and HashAndVerify must succeed exactly
// for the valid signatures. High-S signatures verify under
// HashAndVerifyLenient (only the low-S rule rejects them); DER signatures are
// not 64 bytes. w3c_didkey_*.json: each private key must derive the listed
// did:key.
package conformance
