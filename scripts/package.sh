#!/bin/sh
# package.sh [BUILD_DIR] - the .deb, as a packager makes it: a Release
# build installed under /usr, then CPack. Prints the package's path.
set -eu
cd "$(dirname "$0")/.."
dir=${1:-build-package}
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
cmake --build "$dir" >/dev/null
(cd "$dir" && rm -f tracecode_*.deb && { cpack -G DEB > cpack.log 2>&1 || { cat cpack.log >&2; exit 1; }; })
ls "$dir"/tracecode_*.deb
