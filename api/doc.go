// Package api is reservoir's com.atproto endpoints on the xrpc framework:
// the sync reads (every com.atproto.sync query, for every repository the
// store holds, hosted or mirrored), the repository writes and reads of
// com.atproto.repo, com.atproto.server.createAccount, the standard admin
// takedown procedures, and the /admin/ routes of the contract.
//
// Every read of a repository's content passes the availability gate: an
// unknown or deleted account is RepoNotFound; a taken-down, suspended or
// deactivated one answers RepoTakendown, RepoSuspended or RepoDeactivated
// (403) unless the caller is the account itself or an admin, as the
// reference PDS allows.
package api
