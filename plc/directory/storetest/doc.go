// Package storetest is the conformance suite of directory.Store: Run
// checks sequence numbers, the LogLen conflict check, atomic nullification,
// the createdAt rule, both export cursors, that stored operations cannot be
// changed through the values passed in or returned, and concurrent use.
// The in-memory store and the Pebble store both run it.
package storetest
