//go:build linux && cgo

package store

/*
#include <malloc.h>

// Runs when the binary is loaded, before the Go runtime starts a thread:
// glibc fixes its arena limit when the first thread arena is made, so a
// mallopt from a Go init function comes too late.
__attribute__((constructor)) static void reservoir_limit_malloc_arenas(void) {
#ifdef M_ARENA_MAX
	mallopt(M_ARENA_MAX, 2);
#endif
}
*/
import "C"

// A process that links the store bounds glibc's malloc arenas to 2 (the C
// constructor above). Pebble allocates its block cache with C's calloc and
// frees blocks as they are evicted; glibc gives threads their own arenas
// (up to 8 per core) and keeps what is freed in each, so the cache's churn
// spread over many arenas grew the RSS far beyond the cache: a getRepo of
// a 1M-record repository (api BenchmarkGetRepo) grew it by 75–98 MiB with
// glibc's default and 70 with 4 arenas, but 29–36 MiB with 1 or 2, which
// were also faster (600–650 MB/s instead of 410–510). Relay ingest CPU was
// the same. It overrides MALLOC_ARENA_MAX from the environment; C libraries
// without M_ARENA_MAX (musl) are left alone.
