#!/usr/bin/env bash
# Builds mailbox and runs the whole test suite: on Linux (unit, multi-process integration,
# CLI and the leftovers check), then built for Windows with mingw-w64 and run under Wine
# (tests/windows/run.sh).
#   --linux     the Linux part only;
#   --windows   the Windows part only;
#   --sanitize  builds into build-sanitize with AddressSanitizer and
#               UndefinedBehaviorSanitizer and runs the same suite there, with a longer soak;
#   --tsan      builds into build-tsan with ThreadSanitizer and runs the threaded tests,
#               and mailbox-bridge's core tests against the bridge built so (where it
#               is built: libnats-dev and nats-server installed).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
# A test build: with the fault-injection points the crash tests fire (never installed).
args=(-DMBX_FAULT_INJECTION=ON)
select=()
windows=yes
case "${1:-}" in
--linux) windows=no ;;
--windows) exec bash "$top/tests/windows/run.sh" ;;
--sanitize)
    export BUILD_DIR=${BUILD_DIR:-"$top/build-sanitize"}
    args+=(-DCMAKE_BUILD_TYPE=Debug -DMBX_SANITIZE=address,undefined)
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    export MBX_SOAK_SECONDS=${MBX_SOAK_SECONDS:-60}
    # Not the bridge's tests: they run the bridge with cnats, whose process-wide state
    # is not ours to make leak-clean; the bridge's own code is covered by the Linux run.
    select+=(-LE bridge)
    windows=no
    ;;
--tsan)
    export BUILD_DIR=${BUILD_DIR:-"$top/build-tsan"}
    args+=(-DCMAKE_BUILD_TYPE=Debug -DMBX_SANITIZE=thread)
    export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
    select+=(-L threads)
    windows=no
    ;;
"") ;;
*)
    echo "usage: tests/run.sh [--linux | --windows | --sanitize | --tsan]" >&2
    exit 2
    ;;
esac
# Not build/: that is the README's build to install, which must not get fault injection.
export BUILD_DIR=${BUILD_DIR:-"$top/build-test"}
"$top/tools/bootstrap.sh" "${args[@]}"
(cd "$BUILD_DIR" && ctest --output-on-failure --timeout 900 "${select[@]}")
if [ "${1:-}" = --tsan ] && [ -x "$BUILD_DIR/bridge/mailbox-bridge" ]; then
    # The bridge is two kinds of threads sharing main-thread work (bridge/bridge.h): its
    # core tests with it built with ThreadSanitizer (the rest of the programs too). The
    # Python binding's peers load libmailbox into an interpreter ThreadSanitizer cannot
    # run in, so they get a plain build of the library.
    plain="$BUILD_DIR-plain-lib"
    cmake -S "$top" -B "$plain" -DMBX_BUILD_TESTS=OFF >/dev/null
    cmake --build "$plain" --target mailbox -j2 >/dev/null
    server=$(command -v nats-server || echo /usr/sbin/nats-server)
    NATS_SERVER="$server" MBX_BIN="$BUILD_DIR/tools/mbx" MAILBOXD="$BUILD_DIR/broker/mailboxd" \
        MBX_BRIDGE="$BUILD_DIR/bridge/mailbox-bridge" MBX_LIBRARY="$plain/libmailbox/libmailbox.so" \
        PYTHONDONTWRITEBYTECODE=1 timeout 900 /usr/bin/python3 -m pytest -p no:cacheprovider -q \
        "$top/tests/bridge/test_bridge_core.py"
fi
if [ "$windows" = yes ]; then
    bash "$top/tests/windows/run.sh"
fi
