#!/bin/sh
# bench/vsbare.sh - tracesvc against the bare one-HMAC-per-code server only,
# VerifyBatch of 128 and 1,024 codes, ROUNDS (default 3) interleaved rounds
# (the narrower, repeated form of compare.sh's key rows). About 1 minute.
. "$(dirname "$0")/lib.sh"
secs=${SECS:-3}
bench_redis
bench_svc
bench_codes 100000 "$work/codes.txt"
"$bin/tc-bare-server" --grpc 127.0.0.1:0 --threads 2 > "$work/bare.log" 2>&1 &
bare_pid=$!
trap 'kill -TERM $bare_pid; wait $bare_pid 2>/dev/null; bench_cleanup' EXIT
for _ in $(seq 100); do grep -q "port [0-9]" "$work/bare.log" && break; sleep 0.05; done
bare=127.0.0.1:$(grep -o 'port [0-9]*' "$work/bare.log" | cut -d' ' -f2)
for round in $(seq "${ROUNDS:-3}"); do
    for b in 128 1024; do
        for who in tracesvc bare; do
            a=$addr
            [ $who = bare ] && a=$bare
            "$bin/tc-load" --addr "$a" --codes "$work/codes.txt" --mode batch --batch $b \
                --connections 4 --inflight 16 --threads 2 --warmup 1 --duration "$secs" \
                --label "$who#$round"
        done
    done
done | tee "$work/rows.json"
/usr/bin/python3 "$root/bench/table.py" < "$work/rows.json"
