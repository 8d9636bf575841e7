#!/bin/sh
# bench/scan.sh [SECONDS] - the HTTP scan page under wrk on loopback, next
# to /beacon.js (a fixed reply: evhttp alone) and the JSON, in the same run:
# a scan is a replica lookup plus one Redis step (the scan record) plus the
# page.
# Needs wrk (apt-get install wrk) and a build in build/.
. "$(dirname "$0")/lib.sh"
secs=${1:-5}
command -v wrk > /dev/null || { echo "bench: needs wrk (apt-get install wrk)" >&2; exit 1; }
echo "machine: $(nproc) cores, $(uname -r); $(date -u +%Y-%m-%dT%H:%MZ)"
bench_redis
TC_THREADS=${TC_THREADS:-2}
bench_svc TRACESVC_HTTP=127.0.0.1:0
for _ in $(seq 100); do grep -q "http-port [0-9]" "$work/svc.log" && break; sleep 0.05; done
web=http://127.0.0.1:$(grep -o "http-port [0-9]*" "$work/svc.log" | cut -d' ' -f2)
bench_codes 10 "$work/codes.txt"
code=$(head -n 1 "$work/codes.txt")
for path in /beacon.js "/C/$code" "/api/v1/scan/$code"; do
    printf '%-50s ' "$path"
    wrk -t 1 -c 16 -d "${secs}s" "$web$path" | awk '/Requests\/sec/ {r=$2} /Latency/ {l=$2}
        END {printf "%10s req/s   mean latency %s\n", r, l}'
done
