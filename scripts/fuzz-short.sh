#!/usr/bin/env bash
# Runs every fuzz target for a few seconds each (FUZZTIME, default 2s: 25
# targets, and CI must stay under ~15 minutes on a 2-core machine).
# The seed corpora also run as ordinary tests in `go test ./...`.
#
# The go command sometimes ends a time-bounded fuzz run with a bare
# "context deadline exceeded" failure when the time runs out while a worker
# is mid-input; no input failed then and nothing is written to testdata. Such
# a run is retried once; a real finding (a new testdata/fuzz file, or any
# other failure) fails at once.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-2s}"
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
		for attempt in 1 2; do
			echo "fuzz $pkg $target ($fuzztime)"
			before=$({ find "$dir/testdata/fuzz/$target" -type f 2>/dev/null || true; } | wc -l)
			if out=$(go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" 2>&1); then
				echo "$out" | tail -n 2
				break
			fi
			echo "$out"
			after=$({ find "$dir/testdata/fuzz/$target" -type f 2>/dev/null || true; } | wc -l)
			if [ "$attempt" = 1 ] && [ "$before" = "$after" ] &&
				echo "$out" | grep -q '^    context deadline exceeded$' &&
				! echo "$out" | grep -q 'Failing input written'; then
				echo "fuzz: $target ended on the fuzzing deadline, not on an input; running it again"
				continue
			fi
			exit 1
		done
	done
done
