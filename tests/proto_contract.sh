#!/bin/sh
# proto_contract.sh SRC - the public contract: buf lint (STANDARD, no
# exceptions) and buf breaking against the released contract
# (proto/released/tracecode-v1.json). Then proves the breaking check bites:
# a copy of the contract with a field renumbered must fail it.
set -u
src=$1
buf=$src/node_modules/.bin/buf
[ -x "$buf" ] || { echo "FAIL: $buf missing: run ./scripts/deps.sh (npm ci)"; exit 1; }
cd "$src/proto" || exit 1
fails=0
"$buf" lint || { echo "FAIL: buf lint"; fails=$((fails + 1)); }
"$buf" breaking --against released/tracecode-v1.json ||
    { echo "FAIL: buf breaking against the released contract"; fails=$((fails + 1)); }
tmp=$(mktemp -d /tmp/tc-proto-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cp -r buf.yaml tracecode "$tmp/"
sed -i 's/string detail = 2;/string detail = 12;/' "$tmp/tracecode/v1/types.proto"
if (cd "$tmp" && "$buf" breaking --against "$src/proto/released/tracecode-v1.json" >/dev/null 2>&1); then
    echo "FAIL: buf breaking did not notice a renumbered field"
    fails=$((fails + 1))
fi
[ $fails -eq 0 ] && echo "proto contract: lint clean, compatible with the released contract"
exit $fails
