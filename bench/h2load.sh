#!/bin/sh
# bench/h2load.sh - unary VerifyCode driven by h2load (Debian nghttp2-client),
# a load generator nobody here wrote: one pre-encoded gRPC frame (0x00, a
# 4-byte big-endian length, a VerifyRequest), content-type application/grpc,
# te: trailers. tracesvc and the bare one-HMAC server in the same run, then
# tc-load at lower concurrency for p99 near half the saturating rate
# (h2load reports no percentiles). About 1 minute.
. "$(dirname "$0")/lib.sh"
command -v h2load > /dev/null || { echo "bench: h2load missing (apt-get install nghttp2-client)" >&2; exit 1; }
secs=${SECS:-5}
bench_redis
bench_svc
bench_codes 1000 "$work/codes.txt"
/usr/bin/python3 - "$(head -n 1 "$work/codes.txt")" "$work/frame.bin" <<'PY'
import sys
code = sys.argv[1].encode()
msg = bytes([0x0a, len(code)]) + code  # VerifyRequest{code}
open(sys.argv[2], "wb").write(b"\x00" + len(msg).to_bytes(4, "big") + msg)
PY
"$bin/tc-bare-server" --grpc 127.0.0.1:0 --threads 2 > "$work/bare.log" 2>&1 &
bare_pid=$!
for _ in $(seq 100); do grep -q "port [0-9]" "$work/bare.log" && break; sleep 0.05; done
bare=127.0.0.1:$(grep -o 'port [0-9]*' "$work/bare.log" | cut -d' ' -f2)
trap 'kill -TERM $bare_pid; wait $bare_pid 2>/dev/null; bench_cleanup' EXIT

h2() { # h2 LABEL ADDR CLIENTS STREAMS
    printf '%s c=%s m=%s: ' "$1" "$3" "$4"
    h2load -c "$3" -m "$4" -t 1 -D "$secs" --warm-up-time=1 -d "$work/frame.bin" \
        -H 'content-type: application/grpc' -H 'te: trailers' \
        -H 'tc-role: platform' -H 'tc-subject: h2load' \
        "http://$2/tracecode.v1.VerifierService/VerifyCode" 2>&1 |
        grep -E "^finished in|^requests:" | tr '\n' ' '
    echo
}
for round in 1 2; do
    h2 "tracesvc#$round" "$addr" 2 64
    h2 "bare#$round" "$bare" 2 64
done
# Latency near half the saturating rate: fewer calls in flight.
for inflight in 1 4 8 16; do
    "$bin/tc-load" --addr "$addr" --codes "$work/codes.txt" --mode unary --connections 2 \
        --inflight $inflight --threads 2 --warmup 1 --duration "$secs" --label "tracesvc low load"
done
