#!/bin/sh
# bench/issue.sh - IssueCodes streaming rate: tracectl receives COUNT codes
# (default 10,000,000) in chunks of 65,536 and writes them to /dev/null;
# prints the seconds and codes/s, and tracesvc's peak resident memory.
. "$(dirname "$0")/lib.sh"
count=${COUNT:-10000000}
bench_redis
bench_svc
bench_codes 1 /dev/null
start=$(date +%s.%N)
"$bin/tracectl" --addr "$addr" --insecure --role manufacturer --subject 91310000MA1FL0001R --timeout 600 \
    issue P1 --quantity "$count" --chunk 65536 --out /dev/null > /dev/null 2>&1
end=$(date +%s.%N)
awk -v n="$count" -v s="$start" -v e="$end" \
    'BEGIN { printf "{\"codes\":%d,\"seconds\":%.2f,\"codes_per_s\":%.0f}\n", n, e - s, n / (e - s) }'
grep VmHWM "/proc/$svc_pid/status"
