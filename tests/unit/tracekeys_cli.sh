#!/bin/sh
# tracekeys_cli.sh TRACEKEYS - the command as a user runs it: exit codes,
# messages, and mint/check agreeing with each other.
set -u
tk=$1
dir=$(mktemp -d /tmp/tc-cli-XXXXXX)
trap 'rm -rf "$dir"' EXIT
. "$(dirname "$0")/../cli_lib.sh"

ring="$dir/ring"
check "init" 0 "$tk" init --dir "$ring"
check "init twice" 2 "$tk" init --dir "$ring"
has "init twice says why" "$dir/err" "already holds keys"
check "list" 0 "$tk" list --dir "$ring"
has "list shows mac key" "$dir/out" "^1 *mac *active"
has "list shows signing key" "$dir/out" "^2 *ed25519 *active"

check "mint" 0 "$tk" mint --dir "$ring" --batch 9 --first 100 --count 50
cp "$dir/out" "$dir/codes"
[ "$(wc -l < "$dir/codes")" -eq 50 ] || { echo "FAIL: mint printed $(wc -l < "$dir/codes") codes"; fails=$((fails + 1)); }
check "check from stdin" 0 sh -c "'$tk' check --dir '$ring' < '$dir/codes'"
has "check reports serial" "$dir/out" "GENUINE.*batch=9 serial=149 kid=1"

first=$(head -n 1 "$dir/codes")
# Tamper with one symbol in the middle: the tag no longer matches.
bad=$(printf '%s' "$first" | sed 's/^\(.\{20\}\)\(.\)/\1Z/;t' )
[ "$bad" = "$first" ] && bad=$(printf '%s' "$first" | sed 's/^\(.\{20\}\)./\1Y/')
check "check forged" 1 "$tk" check --dir "$ring" "$bad"
has "forged verdict" "$dir/out" "FORGED"
check "check malformed" 1 "$tk" check --dir "$ring" "ABC"
has "malformed verdict" "$dir/out" "MALFORMED.*wrong length 3, want 34 or 120"
check "check human form" 0 "$tk" check --dir "$ring" "$(printf '%s' "$first" | tr 'A-Z' 'a-z' | sed 's/\(....\)/\1-/g')"

check "mint urls" 0 "$tk" mint --dir "$ring" --batch 9 --count 2 --urls --base-url http://127.0.0.1:8080
has "url form" "$dir/out" "^HTTP://127.0.0.1:8080/C/"
check "check url" 0 "$tk" check --dir "$ring" "$(head -n 1 "$dir/out" | tr 'A-Z' 'a-z')"
check "bad base url" 2 "$tk" mint --dir "$ring" --batch 9 --count 1 --urls --base-url "https://x/?q"
has "bad base url says why" "$dir/err" "cannot go in a QR"

check "sig mint" 0 "$tk" mint --dir "$ring" --batch 1 --count 3 --profile sig
cp "$dir/out" "$dir/sigcodes"
check "sig check" 0 sh -c "'$tk' check --dir '$ring' < '$dir/sigcodes'"
has "sig verdict" "$dir/out" "profile=sig"

check "sheet" 0 "$tk" mint --dir "$ring" --batch 3 --count 30 --sheet "$dir/labels" --png "$dir/png"
[ -f "$dir/labels-001.svg" ] && [ -f "$dir/labels-002.svg" ] && [ ! -f "$dir/labels-003.svg" ] \
    || { echo "FAIL: want two sheet pages"; fails=$((fails + 1)); }
[ "$(ls "$dir/png" | wc -l)" -eq 30 ] || { echo "FAIL: want 30 png labels"; fails=$((fails + 1)); }

check "count bound" 2 "$tk" mint --dir "$ring" --batch 1 --count 10000001
has "count bound says limit" "$dir/err" "must be 1..10000000"
check "serial range" 2 "$tk" mint --dir "$ring" --batch 1 --first 4294967295 --count 2
check "batch bound" 2 "$tk" mint --dir "$ring" --batch 1099511627776 --count 1

check "rotate" 0 "$tk" rotate --dir "$ring"
has "rotate names key" "$dir/out" "key 3 (mac) is now active"
check "old code after rotate" 0 "$tk" check --dir "$ring" "$first"
check "retire active refused" 2 "$tk" retire --dir "$ring" --kid 3
check "retire old" 0 "$tk" retire --dir "$ring" --kid 1
check "old code after retire" 1 "$tk" check --dir "$ring" "$first"
has "retired key named" "$dir/out" "unknown or retired key id 1"

check "stage" 0 "$tk" stage --dir "$ring"
has "stage prints the new id" "$dir/out" "^4$"
has "stage says what comes next" "$dir/err" "tracectl keys activate 4"
check "list after stage" 0 "$tk" list --dir "$ring"
has "staged key verifies only" "$dir/out" "^4 *mac *verify-only"
has "active key stays" "$dir/out" "^3 *mac *active"
check "stage bad kind" 2 "$tk" stage --dir "$ring" --kind rsa

check "export" 0 "$tk" export-public --dir "$ring"
has "export lists signing key" "$dir/out" '"kind":"ed25519","state":"active"'
if grep -q secret "$dir/out"; then echo "FAIL: export leaks"; fails=$((fails + 1)); fi
if command -v /usr/bin/python3 > /dev/null; then
    cp "$dir/out" "$dir/public.json"
    check "export is JSON" 0 /usr/bin/python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$dir/public.json"
fi

chmod 644 "$ring/key-002"
check "world-readable refused" 2 "$tk" list --dir "$ring"
has "permission message" "$dir/err" "readable by group or others (mode 0644); chmod 600"

check "no dir" 2 "$tk" list
check "unknown command" 2 "$tk" frobnicate --dir "$ring"
check "an option of another command" 2 "$tk" list --dir "$ring" --kid 3
has "names the command" "$dir/err" "--kid is not an option of 'list'"
check "help" 0 "$tk" --help
has "help on stdout" "$dir/out" "usage: tracekeys COMMAND --dir DIR"
check "help mint" 0 "$tk" help mint
has "mint's usage" "$dir/out" "mint --dir DIR --batch B --count N"
check "version" 0 "$tk" --version
has "version says it" "$dir/out" "tracekeys [0-9]*\.[0-9]*\.[0-9]* (OpenSSL"

verdict tracekeys_cli
