#!/bin/sh
# bench/audit.sh - audit appends per second, sustained, with one tracesvc
# node sequencing them into the Merkle tree and signing heads; Redis with
# the durability the service relies on (AOF, appendfsync always). Compares
# against plain INCRs in the same run. THREADS (8) appenders, SECONDS (10).
. "$(dirname "$0")/lib.sh"
REDIS_EXTRA="--appendfsync always" bench_redis
bench_svc
"$bin/tc-bench-audit" "unix:$work/redis.sock" "${THREADS:-8}" "${SECONDS_RUN:-10}"
grep -c "now sequencing the log" "$work/svc.log" > /dev/null || {
    echo "bench: tracesvc did not sequence the log" >&2
    exit 1
}
