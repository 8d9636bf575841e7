#!/bin/sh
# demo.sh - the quick start. Installs what is missing, builds, starts a
# private redis-server (Unix socket in a temp dir) and tracesvc (insecure,
# loopback, a port the kernel picks), then walks the roles:
#   regulator     registers a manufacturer and its CCC certificate
#   manufacturer  registers a product, gets 1,000 codes and a label sheet
#   platform      verifies codes, a tampered one, a listing that lies
#   platform      binds its listings and watches for delisting notices
#   regulator     suspends the certificate: the notice reaches the platform,
#                 whose delisting hook runs; the same code now says so; the
#                 platform acknowledges; the regulator reads the compliance
#                 report; restored, a second notice lets the listings return
# From a terminal it then keeps everything running, printing where to look,
# until Ctrl-C; without one (CI, a script; or DEMO_STAY=0) it stops
# everything it started (by PID) at once. DEMO_STAY=1 stays without a
# terminal too.
set -eu
cd "$(dirname "$0")/.."

./scripts/deps.sh
echo "== building"
./scripts/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
bin=$PWD/build/bin

work=$(mktemp -d "${TMPDIR:-/tmp}/tracecode-demo.XXXXXX")
redis_pid=
svc_pid=
watch_pid=
stop() {
    [ -n "$watch_pid" ] && kill -TERM "$watch_pid" 2>/dev/null && wait "$watch_pid" 2>/dev/null || true
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
    --insecure --base-url https://tc.samr.example --http 127.0.0.1:0 \
    --image-origins https://img.example.cn > "$work/tracesvc.log" 2>&1 &
svc_pid=$!
for _ in $(seq 100); do
    grep -q "http-port [0-9]" "$work/tracesvc.log" && break
    sleep 0.05
done
cat "$work/tracesvc.log"
TRACECTL_ADDR=127.0.0.1:$(grep -o " port [0-9]*" "$work/tracesvc.log" | head -n 1 | cut -d' ' -f3)
web=http://127.0.0.1:$(grep -o "http-port [0-9]*" "$work/tracesvc.log" | cut -d' ' -f2)
admin=http://127.0.0.1:$(grep -o "admin-port [0-9]*" "$work/tracesvc.log" | cut -d' ' -f2)
TRACECTL_INSECURE=1
export TRACECTL_ADDR TRACECTL_INSECURE
ctl=$bin/tracectl
maker=91310000MA1FL0001R
regulator="--role regulator --subject SAMR"
manufacturer="--role manufacturer --subject $maker"
platform="--role platform --subject shop-a"

step "regulator: a licensed manufacturer and its CCC certificate for power banks (0704)"
run "$ctl" $regulator manufacturer put $maker "Acme 电源有限公司"
run "$ctl" $regulator cert put 2024010701000001 --holder $maker --categories 0704
step "regulator: the signing keys and the nodes holding them (rotation: docs/OPERATIONS.md)"
run "$ctl" $regulator keys list

step "manufacturer: a product under that certificate, with its GS1 GTIN"
run "$ctl" $manufacturer product register --certificate 2024010701000001 --category 0704 \
    --brand Acme --model PB-10000 --gtin 6901234567892

step "manufacturer: the product's passport - what a consumer sees it really is"
cat > "$work/passport.txt" <<'EOF'
# what PB-10000 is made to, tested by, looks like and where it is made
standard: GB 4943.1-2022
standard: GB 31241-2022
report: CQC-2026-0001 | 中国质量认证中心 | 2026-01-15 | https://lab.example.cn/reports/CQC-2026-0001.pdf | 6f1ed002ab5595859014ebf0951522d9b6e9b5bd7cfae8a1d1ff2a0cf4b6c5de
image: https://img.example.cn/pb-10000/front.jpg | 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae | 移动电源正面
description: 10000 mAh 移动电源，双 USB-C 接口
origin: 广东省深圳市
EOF
run "$ctl" $manufacturer product update P1 --file "$work/passport.txt"

step "manufacturer: 1,000 codes and a print-ready label sheet (GS1 Digital Link QRs: the product has a GTIN)"
run "$ctl" $manufacturer issue P1 --quantity 1000 --request-id order-1 --out "$work/codes.txt" \
    --sheet "$work/labels" --base-url https://tc.samr.example --production-date 2026-11-28 \
    --lot L-2026-11A
head -n 3 "$work/codes.txt"
echo "... label sheets: $work/labels-001.svg (and $(ls "$work"/labels-*.svg | wc -l) pages in all)"

code=$(sed -n 42p "$work/codes.txt")
dl="https://TC.SAMR.EXAMPLE/01/06901234567892/10/$(printf '%s' "$code" | cut -c1-14)/21/$(printf '%s' "$code" | cut -c15-34)"
echo "one label's QR (GS1 Digital Link: GTIN, then the code in the lot and the serial): $dl"
if command -v zbarimg >/dev/null && command -v rsvg-convert >/dev/null; then
    rsvg-convert -d 150 -p 150 -b white "$work/labels-001.svg" -o "$work/labels-001.png" &&
        echo "zbarimg reads the first sheet: $(zbarimg --quiet --raw "$work/labels-001.png" 2>/dev/null | head -n 1)"
fi
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

step "platform: its listings, bound to the codes it sells"
printf 'listing_id,code\nSKU-1001,%s\nSKU-1002,%s\nSKU-1003,%s\n' "$code" \
    "$(sed -n 43p "$work/codes.txt")" "$(sed -n 44p "$work/codes.txt")" > "$work/listings.csv"
run "$ctl" $platform listings register "$work/listings.csv"

step "platform: watching for delisting notices in the background (cursor file, delisting hook)"
# The hook is the platform's delisting job: listing ids on stdin, TC_* in the environment.
hook='act="taking down"; [ "$TC_STATUS" = VALID ] && act="may relist"
      printf "  [delisting job] %s %s, %s: " "$TC_STATUS" "$TC_CERTIFICATE" "$act"; tr "\n" " "; echo'
printf '$ tracectl %s watch --cursor-file cursor --exec HOOK --count 2 &\n' "$platform"
"$ctl" $platform watch --cursor-file "$work/cursor" --exec "$hook" --count 2 \
    > "$work/watch.log" 2>&1 &
watch_pid=$!

step "regulator: the certificate is suspended"
run "$ctl" $regulator cert status 2024010701000001 suspended --reason "failed factory inspection"
for _ in $(seq 100); do [ -s "$work/cursor" ] && break; sleep 0.05; done
echo "-- the platform's watcher received:"
cat "$work/watch.log"

step "platform: the same genuine code now says so"
run "$ctl" $platform verify "$code" || true

step "platform: acknowledges the notice (the listings are down)"
run "$ctl" $platform ack "$(cat "$work/cursor")"

step "regulator: the platform's compliance"
run "$ctl" $regulator compliance shop-a

step "regulator: restored - a notice lets the listings return"
run "$ctl" $regulator cert status 2024010701000001 valid --reason "re-inspected"
for _ in $(seq 200); do kill -0 "$watch_pid" 2>/dev/null || break; sleep 0.05; done
wait "$watch_pid" || true
watch_pid=
echo "-- the platform's watcher received:"
cat "$work/watch.log"
run "$ctl" $platform verify "$code"
run "$ctl" $regulator compliance shop-a

step "platform: verifies the label as a GS1 scanner reads it (the Digital Link), and a link naming another product"
run "$ctl" $platform verify "$dl"
run "$ctl" $platform verify "$(printf '%s' "$dl" | sed 's#/01/06901234567892/#/01/06901234567908/#')" || true

step "platform: reports the unit it shipped - the code's first sale"
run "$ctl" $platform sales report "$code" ORDER-2026-0001
step "another platform sells the same code: a copied label is caught (ALREADY_SOLD)"
run "$ctl" --role platform --subject shop-b sales report "$code" B-77 || true

step "consumer: scans the label - the scan page (and its JSON)"
# A platform's app names the phone (a stable, pseudonymous id): the scan
# counts. Opening the page alone counts only once the page's beacon runs.
curl -s -H 'Accept-Language: en' "$web/api/v1/scan/$code?device=demo-phone-1"
echo

step "regulator: the audit log - what happened, and proof nothing was rewritten"
"$bin/tracekeys" export-public --dir "$work/keys" > "$work/public-keys.json"
for _ in $(seq 50); do
    [ "$("$ctl" $regulator --json audit head 2>/dev/null | sed -n 's/.*"size":\([0-9]*\).*/\1/p')" \
        -gt 10 ] 2>/dev/null && break
    sleep 0.1
done
run "$ctl" $regulator audit query 2024010701000001
run "$ctl" $regulator audit verify --public-keys "$work/public-keys.json" --out "$work/tree-head.txt"

echo "scan page (Chinese; ?lang=en for English): $web/C/$code"
echo "its QR: $web/qr/$code.png   metrics (admin listener, loopback): $admin/metrics"
echo "audit tree head (signed; checked above with the exported public keys):"
cat "$work/tree-head.txt"

printf '\ndemo finished: codes and label sheets in %s\n' "$work"

# A person at a terminal gets a node to look at; a script gets its exit.
if [ "${DEMO_STAY:-}" = 1 ] || { [ "${DEMO_STAY:-}" != 0 ] && [ -t 0 ] && [ -t 1 ]; }; then
    cat <<EOF

Everything keeps running until Ctrl-C:
  scan page     $web/C/$code   (?lang=en for English)
  its QR        $web/qr/$code.png
  metrics       $admin/metrics   (health: $admin/healthz, $admin/readyz)
  gRPC          $TRACECTL_ADDR   (insecure, loopback):
                TRACECTL_ADDR=$TRACECTL_ADDR TRACECTL_INSECURE=1 $bin/tracectl --role platform --subject shop-a verify $code
EOF
    trap 'echo; echo "stopping"; exit 0' INT TERM
    while kill -0 "$svc_pid" 2>/dev/null; do sleep 1; done
    echo "tracesvc exited; see $work/tracesvc.log"
fi
