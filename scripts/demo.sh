#!/bin/sh
# demo.sh - the quick start. Installs what is missing, builds, starts a
# private redis-server (Unix socket in a temp dir) and tracesvc (insecure,
# loopback, a port the kernel picks), then walks the roles:
#   regulator     registers a manufacturer and its CCC certificate
#   manufacturer  registers a product, gets 1,000 codes and a label sheet
#   platform      verifies codes, a tampered one, a listing that lies
#   regulator     suspends the certificate: the same code now says so
# and stops everything it started (by PID).
set -eu
cd "$(dirname "$0")/.."

./scripts/deps.sh
echo "== building"
./scripts/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
bin=$PWD/build/bin

work=$(mktemp -d "${TMPDIR:-/tmp}/tracecode-demo.XXXXXX")
redis_pid=
svc_pid=
stop() {
    [ -n "$svc_pid" ] && kill -TERM "$svc_pid" 2>/dev/null && wait "$svc_pid" 2>/dev/null || true
    [ -n "$redis_pid" ] && kill -TERM "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null || true
    rm -rf "$work/keys" "$work/redis"
}
trap stop EXIT

step() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*" | sed "s|$bin/||g"; "$@"; }

step "a private redis-server (AOF, fsync always) and a keyring"
mkdir -p "$work/redis"
redis-server --port 0 --unixsocket "$work/redis/redis.sock" --unixsocketperm 700 \
    --dir "$work/redis" --appendonly yes --appendfsync always --save "" --daemonize no \
    > "$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 100); do
    [ "$(redis-cli -s "$work/redis/redis.sock" ping 2>/dev/null)" = PONG ] && break
    sleep 0.05
done
"$bin/tracekeys" init --dir "$work/keys"

step "tracesvc on loopback"
"$bin/tracesvc" --redis "unix:$work/redis/redis.sock" --grpc 127.0.0.1:0 --keys "$work/keys" \
    --insecure --base-url https://tc.samr.example > "$work/tracesvc.log" 2>&1 &
svc_pid=$!
for _ in $(seq 100); do
    grep -q "port [0-9]" "$work/tracesvc.log" && break
    sleep 0.05
done
cat "$work/tracesvc.log"
TRACECTL_ADDR=127.0.0.1:$(grep -o "port [0-9]*" "$work/tracesvc.log" | cut -d' ' -f2)
TRACECTL_INSECURE=1
export TRACECTL_ADDR TRACECTL_INSECURE
ctl=$bin/tracectl
maker=91310000MA1FL0001X
regulator="--role regulator --subject SAMR"
manufacturer="--role manufacturer --subject $maker"
platform="--role platform --subject shop-a"

step "regulator: a licensed manufacturer and its CCC certificate for power banks (0704)"
run "$ctl" $regulator manufacturer put $maker "Acme 电源有限公司"
run "$ctl" $regulator cert put 2024010701000001 --holder $maker --categories 0704

step "manufacturer: a product under that certificate"
run "$ctl" $manufacturer product register --certificate 2024010701000001 --category 0704 \
    --brand Acme --model PB-10000

step "manufacturer: 1,000 codes and a print-ready label sheet"
run "$ctl" $manufacturer issue P1 --quantity 1000 --request-id order-1 --out "$work/codes.txt" \
    --sheet "$work/labels" --base-url https://tc.samr.example
head -n 3 "$work/codes.txt"
echo "... label sheets: $work/labels-001.svg (and $(ls "$work"/labels-*.svg | wc -l) pages in all)"

code=$(sed -n 42p "$work/codes.txt")
step "platform: verify all 1,000 as a batch, and one with the full product view"
"$ctl" $platform verify --file "$work/codes.txt" | cut -f2 | sort | uniq -c
run "$ctl" $platform verify --full "$code"

step "platform: a counterfeiter changes one symbol of a genuine code"
sym=$(printf '%s' "$code" | cut -c 16)
new=2
[ "$sym" = "2" ] && new=3
forged=$(printf '%s' "$code" | sed "s/^\(.\{15\}\)./\1$new/")
run "$ctl" $platform verify "$forged" || true

step "platform: a listing that claims another brand for a genuine code"
run "$ctl" $platform verify --listing-brand Bcme "$code" || true

step "regulator: the certificate is suspended"
run "$ctl" $regulator cert status 2024010701000001 suspended --reason "failed factory inspection"

step "platform: the same genuine code now says so"
run "$ctl" $platform verify "$code" || true

step "regulator: restored"
run "$ctl" $regulator cert status 2024010701000001 valid --reason "re-inspected"
run "$ctl" $platform verify "$code"

printf '\ndemo finished: codes and label sheets in %s\n' "$work"
