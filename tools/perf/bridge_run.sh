#!/usr/bin/env bash
# The reference figures for mailbox-bridge: starts one nats-server on loopback (ports
# chosen by the server itself, a throwaway JetStream store), runs mbx-nats-peer against it
# (cnats request round trip, publish -> subscribe throughput, 120-byte payloads) and prints
# the figures with the goals the bridge is judged by: a bridged ping-pong round trip at
# most 1.5x cnats' request round trip (its send-asap one, the faster: cnats' default
# batching adds about a millisecond to a lone request), bridged 1 -> 1 throughput at least
# 0.5x cnats' publish -> subscribe throughput. Prints figures only; asserts nothing.
#
# Usage: tools/perf/bridge_run.sh [mbx-nats-peer options, e.g. --count 5000 --messages 200000]
# BUILD_DIR defaults to build-rel, built for speed as tools/perf/run.sh does when
# mbx-nats-peer is not there yet. NATS_SERVER names the server binary (default: PATH,
# then Debian's /usr/sbin/nats-server).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-"$top/build-rel"}
peer="$build/tools/perf/mbx-nats-peer"

if [ ! -x "$peer" ]; then
    BUILD_DIR="$build" "$top/tools/bootstrap.sh" -DCMAKE_BUILD_TYPE=Release -DMBX_BUILD_TESTS=OFF
fi
if [ ! -x "$peer" ]; then
    echo "bridge_run: $peer was not built (needs libnats-dev)" >&2
    exit 1
fi
server=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
if [ ! -x "$server" ]; then
    echo "bridge_run: nats-server not found (Debian package nats-server, or set NATS_SERVER)" >&2
    exit 1
fi

# Everything the server writes (ports file, store, log) goes here and is removed on exit;
# the server and the peer are stopped on exit and, through setpriv's pdeathsig, die with
# this script even when it is SIGKILLed (which leaves only this folder behind).
scratch=$(mktemp -d "${TMPDIR:-/tmp}/mbx-bridge-run.XXXXXX")
server_pid=
peer_pid=
cleanup() {
    [ -z "$peer_pid" ] || kill -KILL "$peer_pid" 2>/dev/null || true
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# -p -1 -m -1: the server picks free ports itself and writes them to the ports file once
# it listens, so there is no window in which another process could take them.
setpriv --pdeathsig KILL "$server" -a 127.0.0.1 -p -1 -m -1 --ports_file_dir "$scratch" \
    -js -sd "$scratch/store" >"$scratch/server.log" 2>&1 &
server_pid=$!
ports="$scratch/nats-server_$server_pid.ports"
for _ in $(seq 150); do
    [ -s "$ports" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [ ! -s "$ports" ]; then
    echo "bridge_run: nats-server did not start within 15 s; its log:" >&2
    tail -n 20 "$scratch/server.log" >&2
    exit 1
fi
url=$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["nats"][0])' "$ports")
echo "bridge_run: nats-server $("$server" --version | sed 's/^nats-server: //') at $url"

# In the background, waited for: bash runs a trap only between commands, so a signal to
# this script alone would otherwise wait for the whole measurement.
setpriv --pdeathsig KILL "$peer" --nats "$url" --json "$@" >"$scratch/figures.json" &
peer_pid=$!
wait "$peer_pid" || status=$?
peer_pid=
figures=$(cat "$scratch/figures.json")
if [ -z "$figures" ]; then
    echo "bridge_run: mbx-nats-peer failed (status ${status:-?})" >&2
    exit "${status:-1}"
fi
echo "$figures" | /usr/bin/python3 -c '
import json, sys
f = json.loads(sys.stdin.read())
print("cnats request rtt (send-asap): p50 %.1f us, p99 %.1f us, mean %.1f us (%d requests of %d bytes)"
      % (f["rtt_p50_us"], f["rtt_p99_us"], f["rtt_mean_us"], f["requests"], f["size"]))
print("cnats request rtt (default, buffered writes): p50 %.1f us, p99 %.1f us, mean %.1f us"
      % (f["rtt_buffered_p50_us"], f["rtt_buffered_p99_us"], f["rtt_buffered_mean_us"]))
print("cnats pub->sub throughput: %.0f msgs/s (%d of %d received, %d dropped as slow consumer)"
      % (f["pubsub_msgs_per_s"], f["received"], f["messages"], f["dropped_slow_consumer"]))
print("goal: bridged ping-pong rtt p50 at most %.1f us (1.5x); bridged 1->1 at least %.0f msgs/s (0.5x)"
      % (1.5 * f["rtt_p50_us"], 0.5 * f["pubsub_msgs_per_s"]))
'

# ---- bridged figures: to be written with mailbox-bridge -------------------------------
# The same two workloads through the bridge: two mailbox namespaces joined over this
# nats-server, a ping-pong between a client of each (round-trip percentiles) and one
# sender -> one receiver (messages per second at the receiver), each printed next to its
# goal above. Until then this only says whether the bridge exists; it invents nothing.
bridged_figures() {
    local bridge
    bridge=$(find "$build" -name mailbox-bridge -type f -perm -u+x 2>/dev/null | head -n 1)
    if [ -z "$bridge" ]; then
        echo "bridged figures: mailbox-bridge not built"
    else
        echo "bridged figures: $bridge is built, but its measurement is not written yet"
    fi
}
bridged_figures "$url"

exit "${status:-0}"
