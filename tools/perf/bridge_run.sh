#!/usr/bin/env bash
# The reference figures for mailbox-bridge, and the bridge's own beside them. Starts one
# nats-server on loopback (ports chosen by the server itself, a throwaway JetStream store)
# and runs mbx-nats-peer against it (cnats request round trip, publish -> subscribe
# throughput, 120-byte payloads). Then, on the same server, two namespaces (mbxbrA and
# mbxbrB, each with its own mailboxd in a private runtime directory, standing for two
# hosts) joined by a mailbox-bridge each (--cluster mbxbench, --node a and b), and
# `mbx bench -N mbxbrA --peer-namespace mbxbrB`: ping-pong (round trip) and throughput
# (one sender -> one receiver). Then the bridges are restarted with --durable (cluster
# mbxbenchd, a JetStream stream in the server's store) and the same two runs, shorter, give
# the durable column. Prints the figures and the ratios against the goals the bridge is
# judged by: a bridged ping-pong round trip at most 1.5x cnats' request round trip (its
# send-asap one, the faster: cnats' default batching adds about a millisecond to a lone
# request), bridged 1 -> 1 throughput (core) at least 0.5x cnats' publish -> subscribe
# throughput. Prints figures only; asserts nothing.
#
# The brokers run with --depth 1024 (BRIDGE_DEPTH): a remote name's mailbox is what holds
# a stream while the network carries the window before it (docs/bridge.md, "Sizing"); at
# the default depth of 64 the bridged 1 -> 1 figure is about a third as high.
#
# Usage: tools/perf/bridge_run.sh [mbx-nats-peer options, e.g. --count 5000 --messages 200000]
# BUILD_DIR defaults to build-rel, built for speed with tools/bootstrap.sh when a program
# is not there yet. NATS_SERVER names the server binary (default: PATH, then Debian's
# /usr/sbin/nats-server). BRIDGED_PINGS and BRIDGED_MESSAGES set the bridged runs' counts
# (default 10000 round trips and 300000 messages: a few seconds each), DURABLE_PINGS and
# DURABLE_MESSAGES the durable ones (1000 and 5000), BRIDGE_DEPTH the brokers' --depth
# (1024), MAILBOXD_ARGS more broker options.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-"$top/build-rel"}
peer="$build/tools/perf/mbx-nats-peer"
mbx="$build/tools/mbx"
mailboxd="$build/broker/mailboxd"
bridge="$build/bridge/mailbox-bridge"
pings=${BRIDGED_PINGS:-10000}
messages=${BRIDGED_MESSAGES:-300000}
durable_pings=${DURABLE_PINGS:-1000}
durable_messages=${DURABLE_MESSAGES:-5000}
depth=${BRIDGE_DEPTH:-1024}

if [ ! -x "$peer" ] || [ ! -x "$mbx" ] || [ ! -x "$mailboxd" ] || [ ! -x "$bridge" ]; then
    BUILD_DIR="$build" "$top/tools/bootstrap.sh" -DCMAKE_BUILD_TYPE=Release -DMBX_BUILD_TESTS=OFF
fi
for p in "$peer" "$mbx" "$mailboxd" "$bridge"; do
    if [ ! -x "$p" ]; then
        echo "bridge_run: $p was not built (mbx-nats-peer and mailbox-bridge need libnats-dev)" >&2
        exit 1
    fi
done
server=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
if [ ! -x "$server" ]; then
    echo "bridge_run: nats-server not found (Debian package nats-server, or set NATS_SERVER)" >&2
    exit 1
fi

# Everything the server, the brokers and the bridges write (ports file, store, runtime
# directory, logs) goes here and is removed on exit. Every process started here is
# stopped on exit and, through setpriv's pdeathsig, dies with this script even when it is
# SIGKILLed; each also has a time limit of its own (bounded). After a SIGKILL, the reaper
# below (it reads a pipe only this script and its children hold, so it sees end of file
# once all of them are gone) stops the brokers' keepers (mailboxd-keep, which outlive a
# killed broker by design) and removes this folder.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/mbx-bridge-run.XXXXXX")
exec 9> >(
    trap '' INT TERM HUP
    cat >/dev/null
    for k in $(cat "$scratch/keepers" 2>/dev/null); do kill -TERM "$k" 2>/dev/null; done
    rm -rf "$scratch"
)
server_pid=
peer_pid=
declare -A daemon_pids=() # name -> pid: the bridges and the brokers
cleanup() {
    [ -z "$peer_pid" ] || kill -KILL "$peer_pid" 2>/dev/null || true
    # Bridges first (their clients leave the namespaces), then brokers, then the server.
    for d in bridge-b bridge-a mailboxd-b mailboxd-a server; do
        local pid=${daemon_pids[$d]:-}
        [ "$d" != server ] || pid=$server_pid
        [ -n "$pid" ] || continue
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    # A broker stopped cleanly tells its keeper, which then exits; one that had to be
    # killed leaves it: stop it (SIGTERM ends a keeper cleanly).
    for k in $(cat "$scratch/keepers" 2>/dev/null); do kill -TERM "$k" 2>/dev/null || true; done
    rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# bounded SECONDS PROGRAM ARGS... &: PROGRAM dies with this script (pdeathsig on timeout,
# and on PROGRAM, whose parent is timeout) and after SECONDS at the latest (TERM, then
# KILL 5 s later); $! is timeout, which passes a TERM on. In the background only: the
# subshell execs, so that nothing stands between this script and timeout. Fd 9, the
# reaper's pipe, is not passed on. quick: the same in the foreground, for short commands.
bounded() {
    exec setpriv --pdeathsig KILL timeout -k 5 "$1" setpriv --pdeathsig KILL "${@:2}" 9>&-
}
quick() {
    setpriv --pdeathsig KILL timeout -k 1 5 setpriv --pdeathsig KILL "$@" 9>&-
}

# -p -1 -m -1: the server picks free ports itself and writes them to the ports file once
# it listens, so there is no window in which another process could take them.
setpriv --pdeathsig KILL "$server" -a 127.0.0.1 -p -1 -m -1 --ports_file_dir "$scratch" \
    -js -sd "$scratch/store" >"$scratch/server.log" 2>&1 9>&- &
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
bounded 600 "$peer" --nats "$url" --json "$@" >"$scratch/figures.json" &
peer_pid=$!
wait "$peer_pid" || status=$?
peer_pid=
figures=$(cat "$scratch/figures.json")
if [ -z "$figures" ]; then
    echo "bridge_run: mbx-nats-peer failed (status ${status:-?})" >&2
    exit "${status:-1}"
fi
echo "$figures" >"$scratch/cnats.json"
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

# ---- bridged figures ------------------------------------------------------------------
# Two namespaces on this machine, each with its broker and its bridge, over the server
# above: the same path as two hosts (the bridges meet only through NATS). Both brokers
# share one private runtime directory (namespaces are apart by name).
export MBX_RUNTIME_DIR="$scratch/run"
mkdir -m 0700 "$MBX_RUNTIME_DIR"
unset MBX_NAMESPACE NATS_URL NATS_USER NATS_PASSWORD NATS_TOKEN

# waited NAME SECONDS PROGRAM ARGS...: runs a bounded program in the background and waits
# for it (so that a signal to this script is handled at once); its status is returned.
waited() {
    local name=$1 secs=$2
    shift 2
    bounded "$secs" "$@" >"$scratch/$name.out" 2>"$scratch/$name.err" &
    peer_pid=$!
    local st=0
    wait "$peer_pid" || st=$?
    peer_pid=
    return "$st"
}

start_namespace() { # side (a|b), namespace
    # shellcheck disable=SC2086 # MAILBOXD_ARGS: words on purpose
    bounded 3600 "$mailboxd" -N "$2" --depth "$depth" ${MAILBOXD_ARGS:-} \
        >"$scratch/mailboxd-$1.log" 2>&1 &
    daemon_pids[mailboxd-$1]=$!
    for _ in $(seq 150); do
        quick "$mbx" list -N "$2" >/dev/null 2>&1 && break
        kill -0 "${daemon_pids[mailboxd-$1]}" 2>/dev/null || break
        sleep 0.1
    done
    if ! quick "$mbx" list -N "$2" >/dev/null 2>&1; then
        echo "bridge_run: mailboxd for $2 did not start within 15 s; its log:" >&2
        tail -n 20 "$scratch/mailboxd-$1.log" >&2
        exit 1
    fi
    # Its keeper (mailboxd-keep, forked by the broker) is the broker's one child; the broker
    # is timeout's.
    local broker
    broker=$(ps -o pid= --ppid "${daemon_pids[mailboxd-$1]}" | tr -d ' ' || true)
    [ -z "$broker" ] || ps -o pid= --ppid "$broker" | tr -d ' ' >>"$scratch/keepers" || true
    start_bridge "$1" "$2" mbxbench
}
start_bridge() { # side, namespace, cluster, bridge options...
    local side=$1 ns=$2 cluster=$3
    shift 3
    bounded 3600 "$bridge" -N "$ns" --cluster "$cluster" --node "$side" --nats "$url" "$@" \
        >"$scratch/bridge-$side.log" 2>&1 &
    daemon_pids[bridge-$side]=$!
}
stop_bridge() { # side
    local pid=${daemon_pids[bridge-$1]}
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    daemon_pids[bridge-$1]=
}
start_namespace a mbxbrA
start_namespace b mbxbrB
# Each bridge serves bridge.<node> in its namespace once it runs, and logs "node X joined"
# when it hears of the other (mbx bench then waits for its own names to cross).
joined() {
    for _ in $(seq 150); do
        grep -q "node b joined" "$scratch/bridge-a.log" &&
            grep -q "node a joined" "$scratch/bridge-b.log" && return 0
        sleep 0.1
    done
    return 1
}
await_join() { # mode
    if ! waited join 30 "$mbx" wait -N mbxbrA -t 15000 bridge.a ||
        ! waited join 30 "$mbx" wait -N mbxbrB -t 15000 bridge.b || ! joined; then
        echo "bridge_run: the bridges did not join mbxbrA and mbxbrB within 15 s; their logs:" >&2
        tail -n 10 "$scratch/bridge-a.log" "$scratch/bridge-b.log" >&2
        exit 1
    fi
    echo "bridge_run: mbxbrA and mbxbrB (mailboxd --depth $depth) joined by $("$bridge" --version 2>/dev/null | head -n 1 || true) ($1)"
}
await_join "core NATS mode"

bridged() { # name, bench options...
    local name=$1
    shift
    if ! waited "$name" 300 "$mbx" bench -N mbxbrA --peer-namespace mbxbrB --size 120 --json "$@"; then
        echo "bridge_run: bridged $name failed: $(head -n 1 "$scratch/$name.err")" >&2
        echo '{}' >"$scratch/$name.out"
    fi
}
bridged pingpong --mode pingpong --count "$pings"
bridged throughput --mode throughput --count "$messages"

# Durable mode: the same two namespaces, the bridges restarted with --durable on a
# cluster name of their own (its JetStream stream MBX_mbxbenchd, in the server's
# throwaway store). Fewer messages: one message per name is at JetStream at a time.
stop_bridge a
stop_bridge b
start_bridge a mbxbrA mbxbenchd --durable
start_bridge b mbxbrB mbxbenchd --durable
await_join "durable mode: JetStream"
bridged durable-pingpong --mode pingpong --count "$durable_pings"
bridged durable-throughput --mode throughput --count "$durable_messages"

/usr/bin/python3 - "$scratch/cnats.json" "$scratch/pingpong.out" "$scratch/throughput.out" \
    "$scratch/durable-pingpong.out" "$scratch/durable-throughput.out" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
def load(path):
    try:
        return json.loads(open(path).read() or "{}")
    except ValueError:
        return {}
pp, tp, dpp, dtp = (load(p) for p in sys.argv[2:6])
def us(run, key):
    rtt = run.get("rtt_us")
    return "%.1f us" % rtt[key] if rtt else "failed"
def rate(run):
    return "%.0f msgs/s" % run["msgs_per_s"] if run.get("msgs_per_s") else "failed"
print()
print("%-34s %-22s %-22s %s" % ("", "cnats (loopback)", "bridged, core", "bridged, durable"))
print("%-34s %-22s %-22s %s" % ("ping-pong round trip p50", "%.1f us" % c["rtt_p50_us"],
                                us(pp, "p50"), us(dpp, "p50")))
print("%-34s %-22s %-22s %s" % ("                      p99", "%.1f us" % c["rtt_p99_us"],
                                us(pp, "p99"), us(dpp, "p99")))
print("%-34s %-22s %-22s %s" % ("                      mean", "%.1f us" % c["rtt_mean_us"],
                                us(pp, "mean"), us(dpp, "mean")))
print("%-34s %-22s %-22s %s" % ("1 -> 1 throughput", "%.0f msgs/s" % c["pubsub_msgs_per_s"],
                                rate(tp), rate(dtp)))
print()
rtt = pp.get("rtt_us")
if rtt:
    r = rtt["p50"] / c["rtt_p50_us"]
    print("rtt ratio (bridged p50 / cnats send-asap p50): %.2fx, goal <= 1.5x: %s"
          % (r, "met" if r <= 1.5 else "NOT MET"))
if tp.get("msgs_per_s"):
    r = tp["msgs_per_s"] / c["pubsub_msgs_per_s"]
    print("throughput ratio (bridged 1 -> 1 / cnats pub->sub): %.2fx, goal >= 0.5x: %s"
          % (r, "met" if r >= 0.5 else "NOT MET"))
print("bridged runs: core %s round trips, %s messages; durable %s round trips, %s messages; "
      "120 bytes each" % (pp.get("count", "-"), tp.get("count", "-"), dpp.get("count", "-"),
                          dtp.get("count", "-")))
PY

exit "${status:-0}"
