# bench/lib.sh - sourced by the bench scripts: a private redis-server and
# tracesvc on loopback (stopped by PID on exit), and a registry with one
# product whose codes are issued to a file.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${TC_BIN:-$root/build/bin}
work=$(mktemp -d /tmp/tc-bench-XXXXXX)
redis_pid=
svc_pid=

bench_stop_svc() {
    if [ -n "$svc_pid" ]; then
        kill -TERM "$svc_pid" 2>/dev/null || true
        wait "$svc_pid" 2>/dev/null || true
        svc_pid=
    fi
}

bench_cleanup() {
    bench_stop_svc
    [ -n "$redis_pid" ] && { kill -TERM "$redis_pid" 2>/dev/null; wait "$redis_pid" 2>/dev/null; } || true
    rm -rf "$work"
}
trap bench_cleanup EXIT

bench_redis() {
    # shellcheck disable=SC2086
    redis-server --port 0 --unixsocket "$work/redis.sock" --dir "$work" --save "" \
        --appendonly yes ${REDIS_EXTRA:-} --daemonize no > /dev/null 2>&1 &
    redis_pid=$!
    for _ in $(seq 200); do
        [ "$(redis-cli -s "$work/redis.sock" ping 2>/dev/null)" = PONG ] && return 0
        sleep 0.05
    done
    echo "bench: redis-server did not start" >&2
    return 1
}

# bench_svc [env assignments...]: start tracesvc; sets $addr.
bench_svc() {
    [ -d "$work/keys" ] || "$bin/tracekeys" init --dir "$work/keys" > /dev/null
    env "$@" "$bin/tracesvc" --redis "unix:$work/redis.sock" --grpc 127.0.0.1:0 \
        --keys "$work/keys" --insecure --threads "${TC_THREADS:-2}" > "$work/svc.log" 2>&1 &
    svc_pid=$!
    for _ in $(seq 200); do
        grep -q "port [0-9]" "$work/svc.log" && break
        sleep 0.05
    done
    addr=127.0.0.1:$(grep -o " port [0-9]*" "$work/svc.log" | head -n 1 | cut -d' ' -f3)
}

# bench_codes N FILE: a maker, a certificate, a product, N codes in FILE.
bench_codes() {
    ctl="$bin/tracectl --addr $addr --insecure"
    $ctl --role regulator --subject SAMR manufacturer put 91310000MA1FL0001R "Bench Co" > /dev/null
    $ctl --role regulator --subject SAMR cert put C1 --holder 91310000MA1FL0001R --categories 0704 > /dev/null
    $ctl --role manufacturer --subject 91310000MA1FL0001R product register --certificate C1 --category 0704 \
        --brand Bench --model B1 > /dev/null
    $ctl --role manufacturer --subject 91310000MA1FL0001R issue P1 --quantity "$1" --out "$2" > /dev/null 2>&1
}
