#!/usr/bin/env bash
# Builds mailbox for speed (Release, into build-rel) and runs the comparison harness:
# the same workloads over mailbox, a Unix SOCK_SEQPACKET socket, a POSIX message queue and
# a pipe, each figure with its ratio; then topics' fan-out against 1 -> 1 (fanout.py).
# --quick runs a few seconds only (as CI does).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-"$top/build-rel"}
BUILD_DIR="$build" "$top/tools/bootstrap.sh" -DCMAKE_BUILD_TYPE=Release -DMBX_BUILD_TESTS=OFF
"$build/tools/perf/mbx-compare" "$build/broker/mailboxd" "$@"
# What validating one message costs (docs/performance.md, "Validation").
if [[ " $* " == *" --quick "* ]]; then
  "$build/tools/perf/mbx-validate-bench" 100000
else
  "$build/tools/perf/mbx-validate-bench"
fi
# Topics: fan-out to 4 subscribers against 1 -> 1 (docs/performance.md).
if [[ " $* " == *" --quick "* ]]; then
  /usr/bin/python3 "$top/tools/perf/fanout.py" "$build" --rounds 1 --count 20000
else
  /usr/bin/python3 "$top/tools/perf/fanout.py" "$build"
fi
