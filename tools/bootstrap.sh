#!/usr/bin/env bash
# Installs what the build needs (Debian 12, as root; only what is missing) and builds
# mailbox into BUILD_DIR (default: build). Extra arguments go to cmake's configure step.
# Used by tools/demo.sh and tests/run.sh; safe to run again. libnats-dev and nats-server
# are for mailbox-bridge (cnats) and its tests, which run real NATS servers on loopback.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${BUILD_DIR:-"$top/build"}

packages=(cmake gcc make libc6-dev pkg-config libcjson-dev libcmocka-dev python3
          python3-jsonschema python3-pytest python3-pytest-xdist python3-venv procps util-linux
          systemd scdoc groff-base libnats-dev nats-server)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "bootstrap: missing packages: ${missing[*]} (run as root, or install them)" >&2
        exit 1
    fi
    echo "bootstrap: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cmake -S "$top" -B "$build_dir" "$@" >/dev/null
cmake --build "$build_dir" -j "$(nproc)" >/dev/null
echo "bootstrap: built in $build_dir"
