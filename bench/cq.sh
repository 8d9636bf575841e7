#!/bin/sh
# bench/cq.sh - one completion queue per worker thread (the default) against
# one queue shared by all workers, in the same run, interleaved A B A B.
# tracesvc with 2 workers and tc-load with 2 threads share the machine's
# cores over loopback. About 70 s.
. "$(dirname "$0")/lib.sh"
secs=${SECS:-4}
bench_redis
bench_svc
bench_codes 100000 "$work/codes.txt"
bench_stop_svc
for round in 1 2; do
    for cq in per-thread shared; do
        if [ $cq = shared ]; then bench_svc TRACESVC_SHARED_CQ=1; else bench_svc; fi
        for mode in unary "batch --batch 128"; do
            "$bin/tc-load" --addr "$addr" --codes "$work/codes.txt" --mode $mode \
                --connections 4 --inflight 16 --threads 2 --warmup 1 --duration "$secs" \
                --label "cq=$cq round=$round"
        done
        bench_stop_svc
    done
done
