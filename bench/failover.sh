#!/bin/sh
# bench/failover.sh - writes back and verifications kept across a Sentinel
# failover (kill -9 of the primary) on scripts/cluster.sh's topology;
# bench/failover.py says what it measures. ROUNDS (default 3), DOWN_MS
# (Sentinel down-after-milliseconds, default 5000). Needs a build in build/
# (./scripts/build.sh) and redis-sentinel (scripts/deps.sh). About 1 minute
# a round on 2 cores.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
echo "machine: $(nproc) cores, $(uname -r); $(date -u +%Y-%m-%dT%H:%MZ)"
TC_BUILD=${TC_BUILD:-build} exec /usr/bin/python3 "$root/bench/failover.py" "$@"
