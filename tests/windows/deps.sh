#!/usr/bin/env bash
# Builds cJSON and cmocka for 64-bit Windows from Debian's own source packages (no
# mingw-w64 builds of them are packaged), into DEST/prefix. Nothing is vendored and
# nothing is downloaded except through apt. Usage: deps.sh DEST
set -euo pipefail
dest=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
prefix=$dest/prefix
if [ -f "$prefix/.built" ]; then
    exit 0
fi
mkdir -p "$dest/src"

# Source packages need deb-src entries: make them from the machine's own deb entries.
if ! grep -Eqs '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/*; then
    if [ ! -f /etc/apt/sources.list.d/debian.sources ] || [ "$(id -u)" -ne 0 ]; then
        echo "deps.sh: enable deb-src entries in apt's sources (as root) first" >&2
        exit 1
    fi
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
        >/etc/apt/sources.list.d/mailbox-deb-src.sources
    apt-get update -qq
fi
(cd "$dest/src" && rm -rf cjson-* cmocka-* && apt-get source -qq cjson cmocka >"$dest/source.log" 2>&1) ||
    { cat "$dest/source.log" >&2; exit 1; }

toolchain=$root/cmake/mingw-w64-x86_64.cmake
build() { # name, cmake options...
    local name=$1
    shift
    local src
    src=$(find "$dest/src" -maxdepth 1 -type d -name "$name-*" | head -1)
    cmake -S "$src" -B "$dest/build-$name" -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
        -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_BUILD_TYPE=Release "$@" >"$dest/$name.log" 2>&1 &&
        cmake --build "$dest/build-$name" -j2 >>"$dest/$name.log" 2>&1 &&
        cmake --install "$dest/build-$name" >>"$dest/$name.log" 2>&1 ||
        { cat "$dest/$name.log" >&2; exit 1; }
}
build cjson -DBUILD_SHARED_LIBS=OFF -DENABLE_CJSON_TEST=OFF -DENABLE_CUSTOM_COMPILER_FLAGS=OFF
build cmocka -DWITH_STATIC_LIB=ON -DWITH_EXAMPLES=OFF -DUNIT_TESTING=OFF
touch "$prefix/.built"
