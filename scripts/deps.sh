#!/bin/sh
# deps.sh - install the Debian packages tracecode builds and tests with,
# only those missing (apt-get update first when something is). Needs root,
# or sudo.
set -eu

PKGS="build-essential cmake ninja-build pkg-config git clang-format
      libssl-dev libqrencode-dev libpng-dev libcmocka-dev
      zbar-tools librsvg2-bin clang libclang-rt-14-dev python3 python3-cryptography
      protobuf-c-compiler libprotobuf-c-dev protobuf-compiler
      libhiredis-dev libevent-dev redis-server curl chromium fonts-droid-fallback
      libgrpc-dev grpc-proto python3-grpcio python3-grpc-tools"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "deps.sh: need root to install:$missing" >&2; exit 1; }
    sudo=sudo
fi
echo "deps.sh: installing:$missing"
$sudo apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
