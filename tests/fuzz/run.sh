#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (AddressSanitizer and UndefinedBehaviorSanitizer
# on, library instrumented for coverage) and runs each for SECONDS (default 15), starting
# from the seed corpus in tests/fuzz/corpus/<target>. New inputs go to a scratch folder;
# the seeds in the repository are not changed. A crash stops the run, leaves the input
# that caused it in the working folder (crash-*), and fails.
set -euo pipefail
seconds=${1:-15}
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-"$top/build-fuzz"}

missing=()
for p in clang libclang-rt-14-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "fuzz: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
CC=clang BUILD_DIR="$build" "$top/tools/bootstrap.sh" -DCMAKE_BUILD_TYPE=Debug \
    -DMBX_SANITIZE=address,undefined -DMBX_FUZZ=ON -DMBX_BUILD_TESTS=OFF

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in envelope segment adopt proto; do
    mkdir -p "$scratch/$target"
    echo "fuzz: $target for ${seconds}s"
    "$build/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 \
        -print_final_stats=1 "$scratch/$target" "$top/tests/fuzz/corpus/$target" \
        2>"$scratch/$target.log" || { tail -n 40 "$scratch/$target.log"; exit 1; }
    grep -E "stat::number_of_executed_units|stat::new_units_added" "$scratch/$target.log" |
        tr '\n' ' '
    echo
done
echo "fuzz: all targets ran ${seconds}s without a failure"
