#!/bin/sh
# build.sh [DIR [cmake options...]] - configure and build (Ninja when
# present), warnings as errors (TC_WERROR; a later option may turn it off).
# Executables land in DIR/bin; DIR defaults to build.
set -eu
cd "$(dirname "$0")/.."
dir=${1:-build}
[ $# -gt 0 ] && shift
gen=""
command -v ninja >/dev/null 2>&1 && gen="-G Ninja"
# shellcheck disable=SC2086
cmake -S . -B "$dir" $gen -DTC_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j "$(nproc)"
