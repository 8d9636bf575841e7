#!/bin/sh
# make_seeds.sh TRACEKEYS DIR - seed corpora made at test time: codes, URLs
# and key files from a fresh keyring (no key material lives in the repo).
set -eu
tk=$1
dir=$2
rm -rf "$dir"
mkdir -p "$dir/text" "$dir/url" "$dir/keyfile" "$dir/ring"
"$tk" init --dir "$dir/ring/k" >/dev/null
"$tk" rotate --dir "$dir/ring/k" >/dev/null
"$tk" retire --dir "$dir/ring/k" --kid 1 >/dev/null
i=0
for f in "$dir"/ring/k/key-*; do
    i=$((i + 1))
    cp "$f" "$dir/keyfile/seed$i"
done
"$tk" mint --dir "$dir/ring/k" --batch 1099511627775 --first 4294967290 --count 4 > "$dir/codes"
"$tk" mint --dir "$dir/ring/k" --batch 7 --count 2 --profile sig >> "$dir/codes"
i=0
while read -r code; do
    i=$((i + 1))
    printf '%s' "$code" > "$dir/text/seed$i"
    printf 'HTTPS://TC.EXAMPLE.COM/C/%s' "$code" > "$dir/url/seed$i"
    printf '%s' "$code" | tr 'A-Z' 'a-z' | sed 's/\(....\)/\1-/g' > "$dir/text/human$i"
done < "$dir/codes"
rm -rf "$dir/ring" "$dir/codes"
