#!/bin/sh
# bench/limits.sh - what the per-subject limits cost end to end: two
# tracesvc nodes on one Redis, rows interleaved so both see the same noise,
# and the nodes swap configurations every round (two nodes side by side
# differ by up to 10 % with the same configuration on this machine: the
# swap takes that out of the average):
#   tracesvc  limits off: verify_share 0, no rates (a table lookup remains)
#   limits    verify_share on and a verify_rate bucket on every call, set so
#             high it never refuses (the GCRA compare-and-swap runs anyway)
# tc-load: 2 client threads, 4 connections x 16 in flight, 1 s warm-up,
# SECS (default 3) measured, ROUNDS (default 4, even); servers get 2
# workers. The "vs tracesvc" column of the limits rows is the cost.
# tc-bench-limits gives the same cost per call in nanoseconds, in-process.
# AA=1: both sides with the limits off - how far two nodes differ by noise
# alone, the yardstick for the "limits" rows.
. "$(dirname "$0")/lib.sh"
secs=${SECS:-3}
out="$work/rows.json"

printf 'platform verify_share 0\n' > "$work/off.conf"
printf 'platform verify_share 1\nplatform verify_rate 1000000000\nplatform verify_burst 1000000000\n' \
    > "$work/on.conf"
[ "${AA:-0}" = 1 ] && cp "$work/off.conf" "$work/on.conf"
bench_redis
bench_svc TRACESVC_LIMITS="$work/off.conf"
bench_codes 100000 "$work/codes.txt"
bench_stop_svc

start_pair() { # start_pair CONF1 CONF2: sets $a1 $a2 (and pids)
    bench_svc TRACESVC_LIMITS="$work/$1.conf"
    a1=$addr p1=$svc_pid
    mv "$work/svc.log" "$work/svc1.log"
    bench_svc TRACESVC_LIMITS="$work/$2.conf"
    a2=$addr
}
trap 'kill -TERM $p1 2>/dev/null; wait $p1 2>/dev/null; bench_cleanup' EXIT

row() { # row LABEL ADDR MODE...
    label=$1 a=$2
    shift 2
    "$bin/tc-load" --addr "$a" --codes "$work/codes.txt" "$@" --connections 4 --inflight 16 \
        --threads 2 --warmup 1 --duration "$secs" --label "$label" | tee -a "$out"
}
for round in $(seq "${ROUNDS:-4}"); do
    if [ $((round % 2)) -eq 1 ]; then
        start_pair off on
        off=$a1 on=$a2
    else
        start_pair on off
        on=$a1 off=$a2
    fi
    row "tracesvc#$round" "$off" --mode unary
    row "limits#$round" "$on" --mode unary
    for b in 128 1024; do
        row "tracesvc#$round" "$off" --mode batch --batch $b
        row "limits#$round" "$on" --mode batch --batch $b
    done
    kill -TERM "$p1" 2>/dev/null
    wait "$p1" 2>/dev/null || true
    bench_stop_svc
done

/usr/bin/python3 "$root/bench/table.py" < "$out"
"$bin/tc-bench-limits" --seconds 2
