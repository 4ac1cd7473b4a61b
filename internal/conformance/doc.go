// Package conformance checks that the field libraries reservoir builds on —
// indigo's atproto/syntax and atproto/atcrypto — pass the shared interop
// fixtures; a failing test here means a dependency upgrade broke interop.
package conformance
