// Package testutil holds the helpers the tests of reservoir's packages
// share: locating the module root and the shared interop fixtures, reading
// fixtures, decoding hand-written hex and CIDs, and keeping a package's
// imports to an allowed set.
//
// It is for tests only. Production code must not import it; its functions
// report problems through testing.TB and stop the test.
//
// The fixtures are shared between projects and never copied into this
// repository: they live in ../shared/fixtures, relative to the module root
// (the directory holding go.mod), for example
// ../shared/fixtures/interop/mst/key_heights.json.
package testutil
