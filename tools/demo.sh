#!/usr/bin/env bash
# The live demo: builds mailbox, starts a broker on a throwaway namespace, starts a
# receiver, sends it messages from the shell, shows the namespace, then shuts down; and
# does the same in one command with `mbx run`, as a shell test would.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
"$top/tools/bootstrap.sh"
bin=${BUILD_DIR:-"$top/build"}
mbx="$bin/tools/mbx"
mailboxd="$bin/broker/mailboxd"
export MBX_NAMESPACE="demo-$$"

broker_pid=""
rx_pid=""
out=$(mktemp)
log=$(mktemp) # the broker's log: the demo leaves nothing behind
cleanup() {
    [ -n "$rx_pid" ] && kill "$rx_pid" 2>/dev/null || true
    [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null || true
    rm -f "$out" "$log"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "start a broker for namespace $MBX_NAMESPACE (returns once clients can connect)"
broker_pid=$("$mailboxd" -d --slots 16 --depth 32 --log "$log")
echo "mailboxd running, pid $broker_pid"

say "start a receiver 'console' that prints each message with its envelope"
timeout 20 "$mbx" recv --envelope -c 4 -t 15000 console >"$out" &
rx_pid=$!
"$mbx" wait -t 5000 console   # no race: returns once the receiver has its mailbox

say "send one message as an argument"
"$mbx" send --from greeter console '{"hello": "world"}'

say "the namespace now: the broker, its geometry and the live receiver"
"$mbx" list

say "send three lines from standard input, one message each"
printf '%s\n' '{"n": 1}' '{"n": 2}' '"the end"' | "$mbx" send --from counter console

say "what the receiver printed"
wait "$rx_pid"
rx_pid=""
cat "$out"

say "shut down: SIGTERM makes the broker wake its clients and remove the namespace"
kill -TERM "$broker_pid"
for _ in $(seq 100); do kill -0 "$broker_pid" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$broker_pid" 2>/dev/null; then echo "broker did not stop" >&2; exit 1; fi
broker_pid=""
if "$mbx" list >/dev/null 2>&1; then echo "namespace left behind" >&2; exit 1; fi
echo "broker stopped, namespace removed"

say "the same for a script or a test, in one command: mbx run -- CMD"
# mbx run starts a broker on a fresh private namespace, runs CMD with MBX_NAMESPACE set,
# stops the broker when CMD ends and exits with CMD's status.
unset MBX_NAMESPACE
# shellcheck disable=SC2016 # expanded by the inner shell, in mbx run's namespace
timeout 30 "$mbx" run --slots 8 -- bash -c '
    echo "inside: namespace $MBX_NAMESPACE"
    timeout 10 "$0" recv -c 1 -t 5000 box &
    "$0" wait -t 5000 box
    "$0" send --from script box "{\"via\": \"mbx run\"}"
    wait $!' "$mbx"
echo "mbx run exited with its command's status ($?), leaving nothing behind: demo done"
