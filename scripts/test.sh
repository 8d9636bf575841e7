#!/bin/sh
# test.sh - install what is missing, build, run the whole CTest suite, then
# the sanitizer build (ASan+UBSan, no recovery) of the unit, integration and
# fuzz tests (libFuzzer when clang is present), Release builds with gcc and
# clang, the .deb installed and run (tests/package/), then ThreadSanitizer on
# the tests that run threads.
set -eu
cd "$(dirname "$0")/.."

./scripts/deps.sh

echo "== build (gcc, -Werror) and the whole suite"
CC=${CC:-cc} ./scripts/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo
(cd build && ctest --output-on-failure -j "$(nproc)")

if command -v clang >/dev/null 2>&1; then
    echo "== sanitizer build (clang, ASan+UBSan, libFuzzer, -Werror)"
    CC=clang ./scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DTC_SANITIZE=ON -DTC_FUZZ=ON
else
    echo "== sanitizer build (gcc, ASan+UBSan; no clang, so fuzz targets run standalone)"
    ./scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DTC_SANITIZE=ON
fi
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --output-on-failure -j "$(nproc)" -L 'unit|fuzz|integration')

echo "== Release builds, as a packager makes them (gcc and clang, -O3), warnings as errors"
CC=gcc ./scripts/build.sh build-release-gcc -DCMAKE_BUILD_TYPE=Release
if command -v clang >/dev/null 2>&1; then
    CC=clang ./scripts/build.sh build-release-clang -DCMAKE_BUILD_TYPE=Release
fi

echo "== the .deb: made from the Release tree under /usr, installed with dpkg -i, checked, purged"
deb=$(./scripts/package.sh build-release-gcc)
/usr/bin/python3 tests/package/test_package.py "$deb" || [ $? -eq 77 ] # 77: not root, skipped

echo "== ThreadSanitizer build of the tests that run threads"
./scripts/build.sh build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTC_TSAN=ON -DTC_WERROR=ON
(cd build-tsan && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -L threads)
