#!/bin/sh
# bench/scaling.sh - the scaling curve (about 3 minutes):
#  1. registry size: tc-bench-registry, in-process on one core (taskset),
#     1 k / 1 M certificates x 10 k / 10 M batches: codes/s one by one and
#     in staged batches of 1,024, resident memory of the replica;
#  2. worker threads: tracesvc with 1 and 2 workers under tc-load, batch
#     128 and 1,024, interleaved A B A B.
. "$(dirname "$0")/lib.sh"
secs=${SECS:-3}
cpu=$(($(nproc) - 1))
for cfg in "1000 10000" "1000000 10000" "1000 10000000" "1000000 10000000"; do
    set -- $cfg
    taskset -c "$cpu" "$bin/tc-bench-registry" --certs "$1" --batches "$2" --seconds 2
done
bench_redis
bench_svc
bench_codes 100000 "$work/codes.txt"
bench_stop_svc
for round in 1 2; do
    for threads in 1 2; do
        TC_THREADS=$threads bench_svc
        for b in 128 1024; do
            "$bin/tc-load" --addr "$addr" --codes "$work/codes.txt" --mode batch --batch $b \
                --connections 4 --inflight 16 --threads 2 --warmup 1 --duration "$secs" \
                --label "workers=$threads round=$round"
        done
        bench_stop_svc
    done
done
