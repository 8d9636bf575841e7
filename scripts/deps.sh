#!/bin/sh
# deps.sh - install the Debian packages tracecode builds and tests with,
# only those missing (apt-get update first when something is). Needs root,
# or sudo.
set -eu

PKGS="build-essential cmake ninja-build pkg-config git clang-format
      libssl-dev libqrencode-dev libpng-dev libcmocka-dev
      zbar-tools librsvg2-bin clang libclang-rt-14-dev python3 python3-cryptography python3-yaml
      protobuf-c-compiler libprotobuf-c-dev protobuf-compiler
      libhiredis-dev libevent-dev redis-server redis-sentinel curl chromium fonts-droid-fallback
      libgrpc-dev grpc-proto python3-grpcio python3-grpc-tools
      dpkg-dev systemd strace man-db groff-base passwd util-linux"
# Node.js and npm: the machine's own when it has them, else Debian's.
command -v npm >/dev/null 2>&1 || PKGS="$PKGS nodejs npm"

# npm tools (buf, the Node example's gRPC), pinned by package-lock.json;
# installed after the Debian packages, never used by the service itself.
npm_tools() {
    if [ ! -x node_modules/.bin/buf ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
        echo "deps.sh: npm ci (package-lock.json)"
        npm ci --no-audit --no-fund --loglevel=error >/dev/null
    fi
}
# promtool (checks /metrics and the alert rules in the tests): taken out of
# Debian's prometheus package into .tools/, not installed - installing it
# would also start a Prometheus server.
promtool_tool() {
    [ -x .tools/promtool ] && return 0
    tmp=$(mktemp -d)
    if ! (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1); then
        ${sudo:-} apt-get update -qq
        (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1)
    fi
    dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
    mkdir -p .tools
    cp "$tmp/x/usr/bin/promtool" .tools/promtool
    rm -rf "$tmp"
    echo "deps.sh: .tools/promtool ($(.tools/promtool --version 2>&1 | head -n 1))"
}
cd "$(dirname "$0")/.."

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
if [ -z "$missing" ]; then
    npm_tools
    promtool_tool
    exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "deps.sh: need root to install:$missing" >&2; exit 1; }
    sudo=sudo
fi
echo "deps.sh: installing:$missing"
$sudo apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
npm_tools
promtool_tool
