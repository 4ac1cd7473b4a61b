#!/usr/bin/env bash
# Installs Bluesky's relay (indigo's cmd/relay), at the pinned version, into
# bin/ of the module (or the directory given) with `go install`, unless the
# binary there already is that version. Needs go on PATH and the Go module
# proxy (about 2 minutes the first time); prints the binary's path on stdout.
# `reservoir-bench ingest|fanout --compare-indigo` runs it side by side with
# a reservoir relay (see BENCHMARKS.md, "Load generator").
#
#   scripts/install-indigo-relay.sh [BINDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
module=github.com/bluesky-social/indigo
version=v0.0.0-20260605210604-af2fec94f34c
bindir="${1:-${GOBIN:-$PWD/bin}}"
mkdir -p "$bindir"
bindir="$(cd "$bindir" && pwd)"
relay="$bindir/relay"
if ! command -v go >/dev/null 2>&1; then
	echo "install-indigo-relay: go is not on PATH" >&2
	exit 127
fi
pinned() {
	go version -m "$relay" 2>/dev/null | grep -qE "^[[:space:]]+mod[[:space:]]+$module[[:space:]]+$version([[:space:]]|$)"
}
if [ -x "$relay" ] && pinned; then
	echo "$relay"
	exit 0
fi
echo "install-indigo-relay: go install $module/cmd/relay@$version into $bindir" >&2
# Outside the module: its go.mod pins another indigo, and the install must
# not touch it. GOFLAGS may carry -mod=... which go install @version refuses.
(cd "$bindir" && GOBIN="$bindir" GOFLAGS=-buildvcs=false go install "$module/cmd/relay@$version" >&2)
if ! pinned; then
	echo "install-indigo-relay: $relay is not $module@$version after go install:" >&2
	go version -m "$relay" >&2 || true
	exit 1
fi
echo "$relay"
