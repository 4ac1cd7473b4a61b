#!/usr/bin/env bash
# Installs Bluesky's Go CLI goat, at the pinned version, into bin/ of the
# module (or the directory given) with `go install`, unless the binary there
# already is that version. Needs go on PATH and the Go module proxy; prints
# the binary's path on stdout.
#
# goat's own module (github.com/bluesky-social/goat) is refused by the proxy;
# the same program installs from its former home in indigo. Only the offline
# commands are used by the interop tests (`goat repo inspect|ls|mst` on a CAR,
# `goat firehose --relay-host ws://... --verify-basic --verify-mst`):
# `repo export` and `--verify-sig` resolve identities through the public
# directory.
#
#   scripts/interop-goat.sh [BINDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
module=github.com/bluesky-social/indigo
version=v0.0.0-20251003000214-3259b215110e
bindir="${1:-$PWD/bin}"
mkdir -p "$bindir"
bindir="$(cd "$bindir" && pwd)"
goat="$bindir/goat"
if ! command -v go >/dev/null 2>&1; then
	echo "interop-goat: go is not on PATH" >&2
	exit 127
fi
if [ -x "$goat" ] && go version -m "$goat" 2>/dev/null | grep -qE "^[[:space:]]+mod[[:space:]]+$module[[:space:]]+$version([[:space:]]|$)"; then
	echo "$goat"
	exit 0
fi
echo "interop-goat: go install $module/cmd/goat@$version into $bindir" >&2
# Outside the module: its go.mod pins another indigo, and the install must
# not touch it. GOFLAGS may carry -mod=... which go install @version refuses.
(cd "$bindir" && GOBIN="$bindir" GOFLAGS=-buildvcs=false go install "$module/cmd/goat@$version" >&2)
if ! go version -m "$goat" | grep -qE "^[[:space:]]+mod[[:space:]]+$module[[:space:]]+$version([[:space:]]|$)"; then
	echo "interop-goat: $goat is not $module@$version after go install:" >&2
	go version -m "$goat" >&2 || true
	exit 1
fi
echo "$goat"
