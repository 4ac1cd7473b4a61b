// Command reservoir-bench runs the performance scenarios of issue 10
// against a synthetic network (package internal/loadgen) and prints one
// result line per measured relay, with the machine it ran on:
//
//	reservoir-bench ingest  [--compare-indigo]   verified commits/s through a relay (P1)
//	reservoir-bench fanout  [--compare-indigo]   N consumers at R events/s (P2)
//	reservoir-bench replay                       catch-up replay to one consumer (P3)
//	reservoir-bench getrepo                      getRepo of 100k- and 1M-record repos (P4)
//	reservoir-bench import                       verified CAR import (P5)
//	reservoir-bench rss                          RSS with 1M archived accounts at 2,000 events/s (P6)
//
// Relays under test run as child processes (`reservoir serve`, built from
// this module unless --reservoir-bin names one, and indigo's `relay`,
// installed by scripts/install-indigo-relay.sh), so that their CPU and RSS
// are read from /proc alone. Generated streams are cached under
// --cache-dir. It is a separate binary: `reservoir`'s contract is
// untouched. Loopback only.
package main
