#!/bin/sh
# bench/compare.sh - tracesvc against the designs a user might pick instead,
# side by side in one run (about 4 minutes on 2 cores with the defaults):
#   bare    a bare gRPC core server doing one HMAC per code (tc-bare-server)
#   lookup  every issued code a Redis key, one pipelined GET per code
#           (tc-bare-server --lookup), same VerifyBatch contract
#   sig     tracesvc verifying SIG-profile codes (Ed25519 per code)
#   tracesvc MAC profile: unary, batch B = 1, 16, 128, 1024, stream
# Every row: tc-load, 2 client threads, 4 connections x 16 in flight, 1 s
# warm-up, SECS (default 4) measured; servers get 2 worker threads; all on
# loopback, sharing the machine's cores. Prints JSON lines, then a table
# with each row's ratio to tracesvc in the same mode.
. "$(dirname "$0")/lib.sh"
secs=${SECS:-4}
out="$work/rows.json"

bench_redis
bench_svc
bench_codes 100000 "$work/codes.txt"
"$bin/tracectl" --addr "$addr" --insecure --role manufacturer --subject 91310000MA1FL0001R issue P1 \
    --quantity 20000 --profile sig --out "$work/sig.txt" > /dev/null 2>&1
# The lookup design stores every code.
awk '{ printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\n1\r\n", length($1), $1 }' "$work/codes.txt" |
    redis-cli -s "$work/redis.sock" --pipe > /dev/null

start_bare() { # start_bare VAR [args]: a tc-bare-server, its address in VAR
    var=$1
    shift
    "$bin/tc-bare-server" --grpc 127.0.0.1:0 --threads 2 "$@" > "$work/$var.log" 2>&1 &
    echo $! >> "$work/bare.pids"
    for _ in $(seq 100); do grep -q "port [0-9]" "$work/$var.log" && break; sleep 0.05; done
    eval "$var=127.0.0.1:$(grep -o 'port [0-9]*' "$work/$var.log" | cut -d' ' -f2)"
}
start_bare bare
start_bare lookup --lookup "$work/redis.sock"
trap 'for p in $(cat "$work/bare.pids"); do kill -TERM $p; wait $p 2>/dev/null; done; bench_cleanup' EXIT

row() { # row LABEL ADDR CODES MODE...
    label=$1 a=$2 codes=$3
    shift 3
    "$bin/tc-load" --addr "$a" --codes "$codes" "$@" --connections 4 --inflight 16 \
        --threads 2 --warmup 1 --duration "$secs" --label "$label" | tee -a "$out"
}
# Rounds interleave the designs, so each ratio compares rows run back to
# back on this shared, noisy machine.
for round in $(seq "${ROUNDS:-2}"); do
    row "tracesvc#$round" "$addr" "$work/codes.txt" --mode unary
    row "bare#$round" "$bare" "$work/codes.txt" --mode unary
    row "lookup#$round" "$lookup" "$work/codes.txt" --mode unary
    row "tracesvc#$round" "$addr" "$work/codes.txt" --mode stream
    for b in 1 16 128 1024; do
        row "tracesvc#$round" "$addr" "$work/codes.txt" --mode batch --batch $b
        row "bare#$round" "$bare" "$work/codes.txt" --mode batch --batch $b
        row "lookup#$round" "$lookup" "$work/codes.txt" --mode batch --batch $b
    done
    row "sig#$round" "$addr" "$work/sig.txt" --mode batch --batch 128
    row "sig#$round" "$addr" "$work/sig.txt" --mode unary
done

/usr/bin/python3 "$root/bench/table.py" < "$out"
