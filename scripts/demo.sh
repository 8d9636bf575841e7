#!/bin/sh
# demo.sh - the quick start. Installs what is missing, builds, then walks
# the codec and keyring: a keyring in a temp dir, 10 codes minted for a
# batch, a print-ready label sheet, every code verified, one code tampered
# with and rejected as forged, one label read back by an independent QR
# decoder. (The gRPC service, Redis and the four roles join this demo with
# issue 3.)
set -eu
cd "$(dirname "$0")/.."

./scripts/deps.sh
echo "== building"
./scripts/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
tk=build/bin/tracekeys

out=$(mktemp -d "${TMPDIR:-/tmp}/tracecode-demo.XXXXXX")
ring="$out/keyring"
trap 'rm -rf "$ring"' EXIT # the demo's secret keys go; the labels stay

step() { printf '\n== %s\n' "$*"; }

step "a keyring: one MAC key (id 1) and one Ed25519 signing key (id 2), files mode 0600"
$tk init --dir "$ring"
$tk list --dir "$ring"

step "10 codes for batch 1001, serials 0-9 (34 characters each: version, key id, batch, serial, 80-bit tag)"
$tk mint --dir "$ring" --batch 1001 --count 10 \
    --base-url https://tc.samr.example --sheet "$out/labels" --png "$out/png" > "$out/codes.txt"
cat "$out/codes.txt"

step "a print-ready A4 label sheet (QR + the code in groups of four)"
echo "label sheet: $out/labels-001.svg"
echo "PNG labels:  $out/png/ ($(ls "$out/png" | wc -l) files)"

step "an independent decoder (zbarimg) reads one PNG label back"
first=$(head -n 1 "$out/codes.txt")
zbarimg --quiet --raw "$out/png/$first.png" 2>/dev/null

step "verify all 10 codes"
$tk check --dir "$ring" < "$out/codes.txt"

step "a person types one in lower case with dashes: still the same code"
typed=$(printf '%s' "$first" | tr 'A-Z' 'a-z' | sed 's/\(....\)/\1-/g; s/-$//')
echo "typed: $typed"
$tk check --dir "$ring" "$typed"

step "a counterfeiter changes the serial of a genuine code (one symbol)"
# Symbol 15 carries serial bits; the tag no longer matches.
sym=$(printf '%s' "$first" | cut -c 16)
new=2
[ "$sym" = "2" ] && new=3
forged=$(printf '%s' "$first" | sed "s/^\(.\{15\}\)./\1$new/")
echo "genuine: $first"
echo "forged:  $forged"
if $tk check --dir "$ring" "$forged"; then
    echo "demo: the forged code was accepted - this is a bug" >&2
    exit 1
fi

step "and garbage is told apart from a forgery"
$tk check --dir "$ring" "NOT-A-CODE" || true

step "the public keys an offline verifier needs (no secrets)"
$tk export-public --dir "$ring"

printf '\ndemo finished: labels in %s\n' "$out"
