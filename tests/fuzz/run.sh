#!/bin/sh
# run.sh TRACEKEYS TARGET KIND RUNS SEEDROOT - make seeds, then run one fuzz
# target for a bounded number of executions (libFuzzer or the standalone
# driver take the same -runs=N and corpus directory arguments).
set -eu
tk=$1
target=$2
kind=$3
runs=$4
root=$5
here=$(dirname "$0")
"$here/make_seeds.sh" "$tk" "$root"
work="$root/work-$kind"
mkdir -p "$work"
exec "$target" -runs="$runs" -max_len=512 -timeout=10 "$work" "$root/$kind"
