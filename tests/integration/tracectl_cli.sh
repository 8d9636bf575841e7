#!/bin/sh
# tracectl_cli.sh BINDIR - tracectl against a real tracesvc and redis-server
# (private, in a temp dir, stopped by PID): every command, its output and
# its exit status, as a user or a script sees them.
set -u
bin=$1
dir=$(mktemp -d /tmp/tc-ctl-XXXXXX)
redis_pid=
svc_pid=
cleanup() {
    [ -n "$svc_pid" ] && kill -TERM "$svc_pid" 2>/dev/null && wait "$svc_pid" 2>/dev/null
    [ -n "$redis_pid" ] && kill -TERM "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
. "$(dirname "$0")/../cli_lib.sh"

redis-server --port 0 --unixsocket "$dir/redis.sock" --dir "$dir" --save "" --appendonly yes \
    --daemonize no > /dev/null 2>&1 &
redis_pid=$!
for _ in $(seq 200); do [ "$(redis-cli -s "$dir/redis.sock" ping 2>/dev/null)" = PONG ] && break; sleep 0.05; done
"$bin/tracekeys" init --dir "$dir/keys" > /dev/null
"$bin/tracesvc" --redis "unix:$dir/redis.sock" --grpc 127.0.0.1:0 --keys "$dir/keys" --insecure \
    --threads 2 > "$dir/svc.log" 2>&1 &
svc_pid=$!
for _ in $(seq 200); do grep -q "admin-port [0-9]" "$dir/svc.log" && break; sleep 0.05; done
TRACECTL_ADDR=127.0.0.1:$(grep -o " port [0-9]*" "$dir/svc.log" | head -n 1 | cut -d' ' -f3)
TRACECTL_INSECURE=1
export TRACECTL_ADDR TRACECTL_INSECURE
ctl="$bin/tracectl"
maker=91310000MA1FL0001R
reg="--role regulator --subject SAMR"
mfr="--role manufacturer --subject $maker"
plat="--role platform --subject shop-a"

check "manufacturer put" 0 $ctl $reg manufacturer put $maker "Acme 电源"
has "manufacturer echo" "$dir/out" "manufacturer $maker (Acme 电源) active"
check "cert put" 0 $ctl --role certifier --subject CQC cert put CERT-1 --holder $maker --categories 0704,1201
has "cert echo" "$dir/out" "certificate CERT-1 held by $maker: VALID, categories 0704,1201"
check "cert put needs holder" 2 $ctl $reg cert put CERT-2 --categories 0704
check "cert get json" 0 $ctl $reg --json cert get CERT-1
has "cert json" "$dir/out" '"status":"VALID"'
check "cert get unknown" 1 $ctl $reg cert get NOPE
has "not found said" "$dir/err" "NOT_FOUND: certificate NOPE is not registered"

cat > "$dir/certs.csv" <<CSV
number,kind,holder_credit_code,category_codes,status,valid_until_unix
C-100,ccc,$maker,0704;1201,valid,
C-101,bogus,$maker,0704,valid,
"C-102",licence,$maker,0704,revoked,
C-103,ccc,NOBODY,0704,valid,
C-104,ccc,$maker,0704,valid,notanumber
CSV
check "import with bad rows" 1 $ctl $reg cert import "$dir/certs.csv"
has "import count" "$dir/out" "imported 2 certificates; 1 rejected by the service, 2 rows skipped"
has "bad kind line" "$dir/err" "certs.csv line 3: kind must be ccc or licence"
has "bad time line" "$dir/err" "certs.csv line 6: valid_until_unix must be unix seconds"
has "rejected line" "$dir/err" "certs.csv line 5: certificate C-103 rejected"
check "imported row readable" 0 $ctl $reg cert get C-102
has "imported status" "$dir/out" "REVOKED"
printf 'number,colour\n' > "$dir/bad.csv"
check "unknown column" 2 $ctl $reg cert import "$dir/bad.csv"

check "product" 0 $ctl $mfr product register --certificate CERT-1 --category 0704 --brand Acme --model PB-1
has "product id" "$dir/out" "product P1: Acme PB-1"
check "product outside scope" 1 $ctl $mfr product register --certificate CERT-1 --category 9999 --brand A --model B
has "scope said" "$dir/err" "FAILED_PRECONDITION: certificate CERT-1 does not cover category 9999"

check "issue" 0 $ctl $mfr issue P1 --quantity 500 --out "$dir/codes.txt" --sheet "$dir/labels" --request-id o-1
[ "$(wc -l < "$dir/codes.txt")" -eq 500 ] || { echo "FAIL: want 500 codes"; fails=$((fails + 1)); }
[ "$(ls "$dir"/labels-*.svg | wc -l)" -eq 21 ] || { echo "FAIL: want 21 sheets"; fails=$((fails + 1)); }
check "issue again, same request id" 0 $ctl $mfr issue P1 --quantity 500 --request-id o-1 --out "$dir/again.txt"
cmp -s "$dir/codes.txt" "$dir/again.txt" || { echo "FAIL: a retried request gave other codes"; fails=$((fails + 1)); }
check "issue too many" 2 $ctl $mfr issue P1 --quantity 10000001

check "verify file" 0 $ctl $plat verify --file "$dir/codes.txt"
[ "$(grep -c GENUINE "$dir/out")" -eq 500 ] || { echo "FAIL: want 500 GENUINE"; fails=$((fails + 1)); }
first=$(head -n 1 "$dir/codes.txt")
check "verify full" 0 $ctl $plat verify --full "$first"
has "full view" "$dir/out" "Acme PB-1 by Acme 电源, certificate CERT-1"
check "verify mismatch" 1 $ctl $plat verify --listing-brand Other "$first"
has "mismatch" "$dir/out" "LISTING_MISMATCH"
check "verify stdin, malformed" 1 sh -c "echo NOTACODE | $ctl $plat verify"
has "malformed" "$dir/out" "MALFORMED"
check "verify json" 0 $ctl $plat --json verify "$first"
has "json verdict" "$dir/out" '"verdict":"GENUINE"'
# Each command takes its own options: another command's is refused by name
# (usage: exit 2), before anything is sent.
check "verify --holder refused" 2 $ctl $plat verify --holder X "$first"
has "verify --holder names the options" "$dir/err" "is not an option of 'verify'; its options: --file, --full, --listing-category"
check "issue --holder refused" 2 $ctl $mfr issue P1 --quantity 1 --holder X
has "issue --holder names the command" "$dir/err" "is not an option of 'issue'"
check "help verify" 0 $ctl help verify
has "help verify: usage" "$dir/out" "usage: tracectl \[connection options\] verify"
has "help verify: options" "$dir/out" "options of verify: --file"
check "help" 0 $ctl help
has "help lists the commands" "$dir/out" "keys list"
check "help of no command" 2 $ctl help nope

check "recall" 0 $ctl $mfr recall 1 0 9 --reason "battery swelling" --request-id r-1
has "recall count" "$dir/out" "recalled 10 serials of batch 1"
check "recall retried" 0 $ctl $mfr recall 1 0 9 --reason "battery swelling" --request-id r-1
has "retry answers the first count" "$dir/out" "recalled 10 serials of batch 1"
check "request id reused" 1 $ctl $mfr recall 1 0 19 --reason "battery swelling" --request-id r-1
has "reuse refused" "$dir/err" "ALREADY_EXISTS: request_id r-1 was used for another request"
check "recalled code" 1 $ctl $plat verify "$first"
has "recalled" "$dir/out" "RECALLED.*battery swelling"
check "batch get" 0 $ctl $mfr batch get 1
has "manifest" "$dir/out" "tracecode-manifest v1"
check "cert status" 0 $ctl $reg cert status CERT-1 revoked --reason "fire risk"
check "revoked code" 1 $ctl $plat verify "$(sed -n 20p "$dir/codes.txt")"
has "revoked" "$dir/out" "CERT_REVOKED.*fire risk"

# A platform binds its listings from CSV; problems carry line numbers.
{
    echo "listing_id,code"
    echo "L-1,$(sed -n 30p "$dir/codes.txt")"
    echo "L-2,NOT-A-CODE"
    echo "L-3"
    echo "L-4,$(sed -n 31p "$dir/codes.txt")"
} > "$dir/listings.csv"
check "listings register" 1 $ctl $plat listings register "$dir/listings.csv"
has "listings summary" "$dir/out" "bound 2 listings; 2 not bound"
has "bad code line" "$dir/out" "listings.csv line 3: listing L-2: MALFORMED"
has "short row line" "$dir/err" "listings.csv line 4: want listing_id,code"
printf 'listing_id,code\nB-1,%s\n' "$(sed -n 30p "$dir/codes.txt")" > "$dir/copy.csv"
check "a copy on another platform" 0 $ctl --role platform --subject shop-b listings register "$dir/copy.csv"
has "copy counted" "$dir/out" "code also on 1 other listing(s), 1 other platform(s)"

# Delisting: the platform watches (cursor file, --exec hook), the regulator
# acts, the platform acknowledges, the regulator reads the compliance report.
check "restore" 0 $ctl $reg cert status CERT-1 valid --reason "re-inspected"
check "watch" 0 $ctl $plat watch --count 1 --cursor-file "$dir/cursor" \
    --exec "cat > '$dir/hook.txt'; echo \$TC_STATUS \$TC_CERTIFICATE \$TC_LISTINGS > '$dir/hook.env'"
has "notice printed" "$dir/out" "^notice [0-9]*-[0-9]*  VALID  certificate CERT-1  2 listings  reason: re-inspected"
has "hook read the listings" "$dir/hook.txt" "^L-4$"
has "hook environment" "$dir/hook.env" "^VALID CERT-1 2$"
first=$(cat "$dir/cursor")
check "suspend" 0 $ctl $reg cert status CERT-1 suspended --reason audit
check "watch resumes from the cursor file" 0 $ctl $plat --json watch --count 1 --cursor-file "$dir/cursor"
has "only the new notice" "$dir/out" '"new_status":"SUSPENDED","reason":"audit".*"listing_ids":\["L-[14]","L-[14]"\]}'
[ "$(wc -l < "$dir/out")" -eq 1 ] || { echo "FAIL: watch printed more than one notice"; fails=$((fails + 1)); }
second=$(cat "$dir/cursor")
[ "$second" != "$first" ] || { echo "FAIL: the cursor file did not move"; fails=$((fails + 1)); }
check "a failing hook" 4 $ctl $plat watch --count 1 --cursor-file "$dir/cursor2" --exec "exit 3"
has "hook failure said" "$dir/err" "exec failed for notice $first"
[ ! -e "$dir/cursor2" ] || { echo "FAIL: a failed hook advanced the cursor"; fails=$((fails + 1)); }
check "ack whole" 0 $ctl $plat ack "$first"
has "ack said" "$dir/out" "acknowledged notice $first"
check "ack part" 0 $ctl $plat ack "$second" L-1
check "ack a listing not in it" 1 $ctl $plat ack "$second" L-9
has "ack refusal" "$dir/err" "INVALID_ARGUMENT: listing L-9 is not in notice $second"
check "compliance" 0 $ctl $reg compliance shop-a
has "compliance line" "$dir/out" "platform shop-a: 2 notices (4 listings), 1 acknowledged"
has "unacknowledged listed" "$dir/out" "unacknowledged: $second"
check "compliance json" 0 $ctl $reg --json compliance shop-b
has "other platform" "$dir/out" '"notices":2,"acked":0,"listings":2'
check "compliance needs the regulator" 1 $ctl $plat compliance shop-a

# Sold codes: the first sale, a second one on another platform, the seller's return.
sold=$(sed -n 60p "$dir/codes.txt")
# (CERT-1 is suspended here: the sale is recorded, and the platform told.)
check "sales report" 1 $ctl $plat sales report "$sold" ORDER-1
has "first sale" "$dir/out" "^$sold  CERT_SUSPENDED - certificate CERT-1 is suspended"
check "sold again elsewhere" 1 $ctl --role platform --subject shop-b sales report "$sold" B-1
has "second sale" "$dir/out" "ALREADY_SOLD - already sold by platform shop-a on "
check "undo by another" 1 $ctl --role platform --subject shop-b sales undo "$sold"
has "undo refused" "$dir/err" "PERMISSION_DENIED: the code was sold by another platform"
check "undo by the seller" 0 $ctl $plat sales undo "$sold"
has "undone" "$dir/out" "sale of $sold undone"
check "sales usage" 2 $ctl $plat sales report "$sold"

# Cancellation (注销): notices like a revocation, its own verdict, no more codes.
check "cancel" 0 $ctl $reg cert status CERT-1 cancelled --reason "holder gave it up"
check "watch the cancellation" 0 $ctl $plat watch --count 1 --cursor-file "$dir/cursor"
has "cancellation notice" "$dir/out" "^notice [0-9]*-[0-9]*  CANCELLED  certificate CERT-1  2 listings  reason: holder gave it up"
check "cancelled code" 1 $ctl $plat verify "$(sed -n 30p "$dir/codes.txt")"
has "cancelled verdict" "$dir/out" "CERT_CANCELLED.*holder gave it up"
check "no codes under a cancelled certificate" 1 $ctl $mfr issue P1 --quantity 1
has "issuance refused" "$dir/err" "certificate CERT-1 is cancelled"
check "cert get" 0 $ctl $reg cert get CERT-1
has "cancelled status" "$dir/out" "CANCELLED - holder gave it up"

check "wrong role" 1 $ctl $plat cert get CERT-1
has "role said" "$dir/err" "PERMISSION_DENIED: role platform may not call tracecode.v1.RegistryService"
check "no identity" 2 $ctl manufacturer put X Y
check "no server" 3 $ctl --addr 127.0.0.1:1 --timeout 2 $reg cert get CERT-1
has "unavailable" "$dir/err" "UNAVAILABLE\|DEADLINE_EXCEEDED"
check "unreadable file" 4 $ctl $plat verify --file "$dir/nonexistent"
has "unreadable said" "$dir/err" "cannot open '$dir/nonexistent'"
check "--help" 0 $ctl --help
has "--help on stdout" "$dir/out" "Exit status: 0 done"
check "-h" 0 $ctl -h
has "-h on stdout" "$dir/out" "usage: tracectl"
# A second tracesvc on the first one's gRPC port does not start (no
# SO_REUSEPORT: it would otherwise take half of the port's connections).
check "port taken" 1 timeout 30 "$bin/tracesvc" --redis "unix:$dir/redis.sock" \
    --grpc "$TRACECTL_ADDR" --keys "$dir/keys" --insecure --threads 2
has "port taken said" "$dir/err" "cannot listen on '$TRACECTL_ADDR'"
check "--version" 0 $ctl --version
has "--version names the build" "$dir/out" "tracectl 0.1.0 (commit "

verdict tracectl_cli
