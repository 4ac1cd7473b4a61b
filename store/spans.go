package store

import "github.com/cockroachdb/pebble/v2"

// Table spans.
//
// Pebble ends an output table of a flush or compaction at every boundary
// its SpanPolicyFunc returns. The store puts boundaries around the tables
// whose keys only ever grow: the event log (0c, by seq) and the copies of
// superseded blocks (07, by time of death). A flush then writes their new keys in
// tables of their own, which overlap nothing below them, so they move down
// the levels without being rewritten (Pebble's move compactions) where a
// table mixing them with repository keys (uids at random) would be merged
// with everything in its range at every level. Frames are about 40 % of the
// bytes a relay commit adds, superseded blocks about 20 %. Measured on the relay ingest benchmark (four
// alternating pairs, BENCHMARKS.md): 8,086–9,145 commits/s at 192–217
// CPU-µs instead of 7,422–8,401 at 214–239.

// spanBounds are the keys where output tables end, in order.
var spanBounds = [][]byte{{tHistory}, {tHistory + 1}, {tEvent}, {tEvent + 1}}

// tableSpans is the store's SpanPolicyFunc: the default policy everywhere,
// in spans that end at spanBounds.
func tableSpans(start []byte) (pebble.SpanPolicy, []byte, error) {
	for _, b := range spanBounds {
		if pebble.DefaultComparer.Compare(start, b) < 0 {
			return pebble.SpanPolicy{}, b, nil
		}
	}
	return pebble.SpanPolicy{}, nil, nil
}
