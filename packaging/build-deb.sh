#!/usr/bin/env bash
# Builds the Debian packages mailbox and mailbox-dev (packaging/deb.cmake) for /usr into
# BUILD_DIR (default build-deb) and prints their paths. The programs are built with the
# flags Debian builds its own packages with (dpkg-buildflags, all hardening on: stack
# protector, _FORTIFY_SOURCE, relro and bindnow) when dpkg-dev is there. The packages'
# maintainer is $DEBFULLNAME <$DEBEMAIL> when DEBEMAIL is set (packaging/deb.cmake).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-"$top/build-deb"}
if command -v dpkg-buildflags >/dev/null; then
    export DEB_BUILD_MAINT_OPTIONS=hardening=+all
    # CMake reads CFLAGS and LDFLAGS on the first configure; CPPFLAGS it does not read.
    # From the source tree: the flags map its path out of the debugging information.
    CFLAGS=$(cd "$top" && echo "$(dpkg-buildflags --get CPPFLAGS) $(dpkg-buildflags --get CFLAGS)")
    LDFLAGS=$(cd "$top" && dpkg-buildflags --get LDFLAGS)
    export CFLAGS LDFLAGS
else
    echo "build-deb: dpkg-buildflags not found (dpkg-dev): building without Debian's hardening flags" >&2
fi
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
    -DMBX_BUILD_TESTS=OFF -DMBX_DEB_DOCS=ON >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null
(cd "$build" && cpack -G DEB >/dev/null)
ls "$build"/*.deb
