#!/bin/sh
# bench/delist.sh [--revocations N] [--listings M] - delisting latency over
# three tracesvc nodes and one redis-server on loopback (bench/delist.py
# says what it measures). Needs a build in build/ (./scripts/build.sh).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
echo "machine: $(nproc) cores, $(uname -r); $(date -u +%Y-%m-%dT%H:%MZ)"
TC_BUILD=${TC_BUILD:-build} exec /usr/bin/python3 "$root/bench/delist.py" "$@"
