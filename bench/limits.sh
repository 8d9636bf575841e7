#!/bin/sh
# bench/limits.sh - what the per-subject limits cost on the verify path:
# two tracesvc nodes on one Redis, side by side in one run, rows
# interleaved so that both see the same noise:
#   tracesvc  limits off: verify_share 0, no rates (a table lookup remains)
#   limits    verify_share on and a verify_rate bucket on every call, set so
#             high it never refuses (the GCRA compare-and-swap runs anyway)
# tc-load: 2 client threads, 4 connections x 16 in flight, 1 s warm-up,
# SECS (default 3) measured, ROUNDS (default 3); servers get 2 workers.
# The "vs tracesvc" column of the limits rows is the cost (1.00x = none).
. "$(dirname "$0")/lib.sh"
secs=${SECS:-3}
out="$work/rows.json"

printf 'platform verify_share 0\n' > "$work/off.conf"
printf 'platform verify_share 1\nplatform verify_rate 1000000000\nplatform verify_burst 1000000000\n' \
    > "$work/on.conf"
bench_redis
bench_svc TRACESVC_LIMITS="$work/off.conf"
off=$addr off_pid=$svc_pid
bench_codes 100000 "$work/codes.txt"
mv "$work/svc.log" "$work/off.log"
bench_svc TRACESVC_LIMITS="$work/on.conf"
on=$addr
trap 'kill -TERM $off_pid 2>/dev/null; wait $off_pid 2>/dev/null; bench_cleanup' EXIT

row() { # row LABEL ADDR MODE...
    label=$1 a=$2
    shift 2
    "$bin/tc-load" --addr "$a" --codes "$work/codes.txt" "$@" --connections 4 --inflight 16 \
        --threads 2 --warmup 1 --duration "$secs" --label "$label" | tee -a "$out"
}
for round in $(seq "${ROUNDS:-3}"); do
    row "tracesvc#$round" "$off" --mode unary
    row "limits#$round" "$on" --mode unary
    for b in 128 1024; do
        row "tracesvc#$round" "$off" --mode batch --batch $b
        row "limits#$round" "$on" --mode batch --batch $b
    done
done

/usr/bin/python3 "$root/bench/table.py" < "$out"
