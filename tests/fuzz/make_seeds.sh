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
    if [ "${#code}" -eq 34 ]; then # its GS1 Digital Link (lot: 14 symbols, serial: 20)
        lot=$(printf '%s' "$code" | cut -c1-14)
        serial=$(printf '%s' "$code" | cut -c15-34)
        printf 'https://TC.EXAMPLE.COM/01/06901234567892/10/%s/21/%s?linkType=gs1:pip' \
            "$lot" "$serial" > "$dir/url/dl$i"
    fi
    printf '%s' "$code" | tr 'A-Z' 'a-z' | sed 's/\(....\)/\1-/g' > "$dir/text/human$i"
done < "$dir/codes"
# VerifyBatchRequest / VerifyRequest seeds in wire form, from those codes.
mkdir -p "$dir/fastpb"
/usr/bin/python3 - "$dir/codes" "$dir/fastpb" <<'PY'
import sys
codes = [l.strip().encode() for l in open(sys.argv[1]) if l.strip()]
def ld(field, b):
    n, out = len(b), bytearray([field << 3 | 2])
    while n >= 0x80:
        out.append(n & 0x7f | 0x80); n >>= 7
    out.append(n)
    return bytes(out) + b
listing = ld(1, b"L-1") + ld(2, b"0704") + ld(3, b"Acme") + ld(4, b"PB-1")
reqs = [ld(1, c) for c in codes] + [ld(1, codes[0]) + ld(2, listing) + b"\x18\x02"]
for i, r in enumerate(reqs):
    open("%s/req%d" % (sys.argv[2], i), "wb").write(r)
open(sys.argv[2] + "/batch", "wb").write(b"".join(ld(1, r) for r in reqs) + b"\x10\x01")
# Found by fuzz_fastpb: a 5-byte key past field 2^29-1 that protobuf-c skips.
open(sys.argv[2] + "/regress1", "wb").write(
    ld(1, ld(1, b"201ZZZZZZZZZZZZx24100000003G0000DE")) + bytes([0xd0, 0xb9, 0xbb, 0xac, 0x31]))
PY
# Audit entries in their canonical form (fuzz_audit).
mkdir -p "$dir/audit"
printf 'tracecode-audit v1\nindex 7\ntime 1795267936412\nkind cert\nactor regulator:SAMR\nsubject C1\nbody 8:status 2' \
    > "$dir/audit/entry"
printf 'tracecode-audit v1\nindex 0\ntime 0\nkind key\nactor node:a\nsubject keys\nbody 0:' \
    > "$dir/audit/empty"
# A saved tree head (auditor_head_parse); the signature need not verify.
printf 'tracecode-tree-head v1\nkey 2\nsize 12\nroot %s\ntime 1795267936\nsignature %s\n' \
    "$(printf '%064d' 0 | tr 0 a)" "$(printf '%0128d' 0 | tr 0 b)" > "$dir/audit/head"
rm -rf "$dir/ring" "$dir/codes"
