#!/usr/bin/env bash
# Builds the Debian packages mailbox and mailbox-dev (packaging/deb.cmake) for /usr into
# BUILD_DIR (default build-deb) and prints their paths.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-"$top/build-deb"}
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
    -DMBX_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null
(cd "$build" && cpack -G DEB >/dev/null)
ls "$build"/*.deb
