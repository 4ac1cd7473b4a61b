// Package identity resolves atproto DIDs and handles for the sync server,
// through one bounded, shared cache: the #atproto signing key that commit
// and sync signatures are checked against, the #atproto_pds endpoint an
// account's events must come from, and the handle.
//
//	r, err := identity.New(identity.Options{PLCURL: plcURL, AllowInsecure: insecure})
//	key, err := r.SigningKey(ctx, did)            // verify a commit with key
//	key, err = r.RefreshSigningKey(ctx, did)      // once, after a failed verification
//	r.Purge(did)                                  // on every #identity event
//
// # What is resolved
//
// Only did:plc (GET <PLCURL>/<did>; 404 is ErrDIDNotFound) and did:web on a
// host name (GET https://<host>/.well-known/did.json). Other methods, and
// did:web with a path, fail with ErrUnsupportedDIDMethod before any request.
// A document's "id" must be the DID asked for. From the document:
//
//   - Identity.SigningKey: the verificationMethod whose id has the fragment
//     #atproto and whose controller is the DID, as a K-256 or P-256 Multikey
//     ("zQ3s..." / "zDna...") or in the legacy form (type
//     Ecdsa{Secp256k1,Secp256r1}VerificationKey2019, "z" + base58btc of the
//     bare point, uncompressed or compressed). nil if absent or unusable;
//     Resolver.SigningKey then returns ErrNoSigningKey with the reason.
//   - Identity.PDSEndpoint: the first service whose id ends with
//     #atproto_pds and whose type is AtprotoPersonalDataServer, if its
//     endpoint is an origin: https, a host, an optional port, nothing else
//     (a trailing "/" is dropped, the host lower-cased). "" otherwise, and
//     Resolver.PDSEndpoint returns ErrNoPDS with the reason.
//   - Identity.DeclaredHandle: the first alsoKnownAs entry "at://<valid
//     handle>", lower-cased. It is only a claim.
//   - Identity.Handle: DeclaredHandle if that handle resolves back to the
//     DID, else "handle.invalid". A handle resolves by DNS TXT
//     (_atproto.<handle>, "did=<DID>"; other records and did= values that
//     are not DIDs are ignored, two different DIDs are a failure) and by
//     HTTPS (GET https://<handle>/.well-known/atproto-did, redirects
//     followed), both at once; DNS wins when both answer. Handles with a
//     disallowed TLD (.local, .onion, ...) never resolve; .test does, for
//     development.
//
// LookupHandle goes the other way (handle → DID → document) and fails with
// ErrHandleMismatch unless the document claims the handle. With
// SkipHandleVerification, LookupDID makes no handle requests and Handle
// stays "handle.invalid" (a relay that compares #identity.handle with
// DeclaredHandle, as the reference relay does, needs no more).
//
// # The cache
//
// Two LRU caches of CacheSize entries each: DID → *Identity and handle →
// DID. About 700 bytes per identity (measured with K-256 keys), so 250,000
// identities hold roughly 175 MB. Both cache failures as well as answers:
//
//   - answers live TTL (1h), identities whose claimed handle did not
//     verify InvalidHandleTTL (5m), failures ErrorTTL (2m). A failure is
//     anything the network gave: not found, bad status, malformed
//     document, timeout. A caller's own cancellation is never cached.
//   - Concurrent lookups of one DID (or handle) that miss share one
//     request (a flight). The flight runs detached from its callers, under
//     its own Timeout: a caller that gives up returns at once with its
//     context's error, and the others still get the answer, which is
//     cached. Every lookup is bounded by Timeout even under
//     context.Background().
//   - Purge(did) drops the identity, the handle mappings it named, and any
//     flight for the DID in progress (its callers get its answer, but it
//     is not cached): any lookup that starts after Purge returns fetches
//     afresh.
//   - RefreshSigningKey accepts only a document fetched within
//     RefreshInterval (5s), fetching it again otherwise: one request for
//     any burst of failed signatures, concurrent refreshes coalesced.
//   - A DID lookup verifies the claimed handle through the handle cache,
//     but trusts a cached mapping only if it names this DID; otherwise it
//     resolves the handle again, so a handle that just moved here is seen.
//
// Stats returns the counters (hits, misses, coalesced, errors, evictions,
// entries, purges); there are no package-level metrics.
//
// # Network hygiene
//
// The default HTTP client has connect, TLS-handshake and response-header
// timeouts, follows at most 5 redirects (https only unless AllowInsecure),
// resolves names with Options.DNSResolver, and refuses to connect to
// loopback, private, link-local, shared (100.64/10) and unspecified
// addresses (ErrForbiddenAddress) unless AllowInsecure — except to the
// PLCURL host, which the operator chose. A caller-supplied HTTPClient is
// used as it is, without that guard. Every response body, with either
// client, is cut at MaxResponseBytes (ErrResponseTooLarge). With
// AllowInsecure, did:web:localhost%3A<port> is fetched over http:// (indigo
// refuses ports), and http:// or loopback #atproto_pds endpoints are
// accepted: for tests and private networks, as --allow-insecure-hosts.
// Handles are always resolved over https.
//
// # What comes from indigo, what is ours
//
// From indigo's atproto/identity: BaseDirectory as the network engine
// (did:plc and did:web requests, HTTPS handle resolution with its 2048-byte
// cap), the DIDDocument type, ParseIdentity, DeclaredHandle, the Multikey
// and uncompressed legacy key parsing (via atproto/atcrypto), and the error
// classes, re-exported under the same values (ErrDIDNotFound is
// indigo.ErrDIDNotFound).
//
// Ours: the cache, because indigo's CacheDirectory runs a coalesced lookup
// under the first caller's context (one caller's cancellation becomes
// everyone's cached error for ErrTTL), cannot take a clock, counts in
// Prometheus globals, leaves the handle mapping and in-flight lookups
// behind on Purge, and has no refresh. Also ours: DNS TXT parsing (indigo
// takes the first did= record; the spec fails on two DIDs) and running DNS
// and HTTPS in parallel; did:web on localhost ports; the #atproto_pds type
// and origin checks; the compressed legacy keys found in the interop
// fixtures; the HTTP client and its limits; the per-lookup timeout.
//
// Known differences from the letter of the spec, inherited from indigo's
// ParseIdentity: a verificationMethod id "did:other#atproto" counts as
// #atproto, and a first #atproto entry of an unusable type is not skipped
// for a later one.
//
// # Concurrency
//
// A Resolver is safe for concurrent use by the whole server; make one and
// share it. No I/O happens under its lock. Returned *Identity values are
// shared by all callers and must not be modified. Each miss runs one
// goroutine that ends within Timeout; there is nothing to close.
package identity
