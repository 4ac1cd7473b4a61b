// Package host runs the repositories this service hosts: it creates
// accounts (a new did:plc, or an adopted DID and key), signs and applies
// record writes, changes account status, imports repository CARs and
// deletes accounts. Every change becomes one store.Change, applied while the
// repository's write lock is held, so writes to one repository are
// serialized and writes to different repositories run in parallel (they
// meet only at the store's committer).
//
// Events follow the reference PDS: account creation emits #identity,
// #account (active), the empty first #commit, then #sync; a status change
// emits #account (and on reactivation #identity and #sync); a write emits
// #commit; an import emits #sync.
package host
