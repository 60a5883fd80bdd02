#!/usr/bin/env bash
# Builds mailbox for speed (Release, into build-rel) and runs the comparison harness:
# the same workloads over mailbox, the floor, a Unix SOCK_SEQPACKET socket, a POSIX message
# queue, a pipe, Boost.Interprocess and ZeroMQ (when present), each figure with its ratio;
# then topics' fan-out against 1 -> 1 (fanout.py).
# --quick runs a few seconds only (as CI does).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-"$top/build-rel"}
# The optional peers (Boost.Interprocess, ZeroMQ), from Debian's packages when we may
# install them; without them the harness skips those two and says so.
peers=(g++ libboost-dev libzmq3-dev)
missing=()
for p in "${peers[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" -eq 0 ] && [ -z "${MBX_PERF_NO_PEERS:-}" ]; then
    echo "perf: installing the optional peers: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
        echo "perf: could not install ${missing[*]}; those peers are skipped"
fi
BUILD_DIR="$build" "$top/tools/bootstrap.sh" -DCMAKE_BUILD_TYPE=Release -DMBX_BUILD_TESTS=OFF
"$build/tools/perf/mbx-compare" "$build/broker/mailboxd" "$@"
# What validating one message costs (docs/performance.md, "Validation").
if [[ " $* " == *" --quick "* ]]; then
  "$build/tools/perf/mbx-validate-bench" 100000
else
  "$build/tools/perf/mbx-validate-bench"
fi
# Connect latency while a member wedges the free mailboxes (docs/performance.md, "A broker
# no member can stall").
if [[ " $* " == *" --quick "* ]]; then
  "$build/tools/perf/mbx-connect-stall" "$build/broker/mailboxd" 1
else
  "$build/tools/perf/mbx-connect-stall" "$build/broker/mailboxd"
fi
# Topics: fan-out to 4 subscribers against 1 -> 1 (docs/performance.md).
if [[ " $* " == *" --quick "* ]]; then
  /usr/bin/python3 "$top/tools/perf/fanout.py" "$build" --rounds 1 --count 20000
else
  /usr/bin/python3 "$top/tools/perf/fanout.py" "$build"
fi
