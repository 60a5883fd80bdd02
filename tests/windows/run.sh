#!/usr/bin/env bash
# Builds mailbox for 64-bit Windows with mingw-w64 and runs its tests under Wine.
#   bash tests/windows/run.sh            (as root on Debian 12: installs what it needs)
# The build goes to build-windows/ (MBX_WINDOWS_BUILD overrides), with its own Wine
# prefix inside it. See docs/windows.md.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${MBX_WINDOWS_BUILD:-$root/build-windows}
mkdir -p "$build"

packages=(cmake dpkg-dev gcc-mingw-w64-x86-64-win32 wine64 wine)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    if [ "$(id -u)" -ne 0 ]; then
        echo "run.sh: install ${missing[*]} first (or run as root)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >"$build/apt.log" 2>&1 || { cat "$build/apt.log" >&2; exit 1; }
fi

bash "$root/tests/windows/deps.sh" "$build/deps"

cmake -S "$root" -B "$build/tree" -DCMAKE_TOOLCHAIN_FILE="$root/cmake/mingw-w64-x86_64.cmake" \
    -DMBX_WINDOWS_DEPS="$build/deps/prefix" -DCMAKE_BUILD_TYPE=Debug -DMBX_FAULT_INJECTION=ON \
    >"$build/configure.log" 2>&1 ||
    { cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build/tree" -j2

# Wine: a prefix of our own, and its server started once for the whole run (else every
# test pays ~2.5 s to start one). The server's output goes to a file: a persistent
# server writing into a pipe hangs the run. wineboot then starts Wine's own services
# (services.exe, rpcss, ...) with their output in a file too: left to the first test,
# they would inherit ctest's output pipe and, living on, keep ctest waiting for ever.
# The server is stopped on exit, whatever happens.
export WINEPREFIX=$build/wineprefix WINEDEBUG=-all
mkdir -p "$WINEPREFIX"
trap 'wineserver -k >/dev/null 2>&1 || true' EXIT
wineserver -p >"$build/wineserver.log" 2>&1
wine wineboot --init >"$build/wineboot.log" 2>&1

cd "$build/tree"
ctest --output-on-failure -j2 "$@"
