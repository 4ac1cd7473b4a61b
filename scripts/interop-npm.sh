#!/usr/bin/env bash
# Installs the pinned npm packages of an interop folder (default interop/plc;
# interop/atproto holds the @atproto/* libraries of package interop,
# interop/pds the reference PDS, whose better-sqlite3 compiles from source) with
# `npm ci` when its node_modules is missing or older than its
# package-lock.json. Needs node and npm on PATH and the npm registry; nothing
# else is fetched. Prints nothing on success when already installed.
#
#   scripts/interop-npm.sh [interop/DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-interop/plc}"
for tool in node npm; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "interop-npm: $tool is not installed; the interop tests need Node 20+ and npm" >&2
		exit 127
	fi
done
if [ ! -f "$dir/package-lock.json" ]; then
	echo "interop-npm: $dir/package-lock.json is missing" >&2
	exit 2
fi
stamp="$dir/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$dir/package-lock.json" -nt "$stamp" ]; then
	echo "interop-npm: npm ci in $dir" >&2
	(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
