#!/usr/bin/env bash
# Builds mailbox and runs the whole test suite (unit, multi-process integration, CLI and
# the leftovers check). With --sanitize, builds into build-sanitize with AddressSanitizer
# and UndefinedBehaviorSanitizer and runs the same suite there.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
args=()
if [ "${1:-}" = "--sanitize" ]; then
    export BUILD_DIR=${BUILD_DIR:-"$top/build-sanitize"}
    args+=(-DCMAKE_BUILD_TYPE=Debug -DMBX_SANITIZE=address,undefined)
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    # The sanitizers' runtimes come with the compiler; clang is not needed.
fi
export BUILD_DIR=${BUILD_DIR:-"$top/build"}
"$top/tools/bootstrap.sh" "${args[@]}"
cd "$BUILD_DIR"
ctest --output-on-failure --timeout 600
