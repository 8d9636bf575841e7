#!/bin/sh
# bench/cpu_per_call.sh [BATCH] - the server's CPU time per call under a
# fixed load (tc-load, 4 connections x 16 in flight, 2 client threads,
# VerifyBatch of BATCH codes, default 16), read with `perf stat -e
# task-clock` on the tracesvc process for 5 s. Noise on a shared machine
# moves throughput ratios by 0.1 between runs; CPU per call moves far
# less. TC_BIN picks the build (another tree's build/bin for a before and
# after). Hardware counters (instructions, cycles) are printed when the
# machine has them.
. "$(dirname "$0")/lib.sh"
batch=${1:-16}
bench_redis
bench_svc
bench_codes 20000 "$work/codes.txt"
"$bin/tc-load" --addr "$addr" --codes "$work/codes.txt" --mode batch --batch "$batch" --connections 4 \
    --inflight 16 --threads 2 --warmup 1 --duration 7 --label x > "$work/load.json" &
lp=$!
sleep 1.5
perf stat -x, -e task-clock,instructions,cycles -p "$svc_pid" -- sleep 5 2> "$work/perf.txt"
wait $lp
calls=$(sed -n 's/.*"calls_per_s":\([0-9]*\).*/\1/p' "$work/load.json")
ins=$(grep instructions "$work/perf.txt" | cut -d, -f1)
cyc=$(grep cycles "$work/perf.txt" | cut -d, -f1)
tc=$(grep task-clock "$work/perf.txt" | cut -d, -f1)
echo "batch=$batch calls/s=$calls server-cpu-ms=$tc cpu-us/call=$(echo "scale=2; $tc * 1000 / ($calls * 5)" | bc) instructions=$ins cycles=$cyc"
