//go:build race

package interop

// raceEnabled: the tests run with -race, and so does the reservoir they build.
const raceEnabled = true
