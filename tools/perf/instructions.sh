#!/usr/bin/env bash
# Instructions per message on the data path, counted by callgrind: a figure that does not
# move with the machine's slow and fast phases (rates do, by 2-4x), so a change's effect
# on the work done per message shows in one run. Runs `mbx bench --mode throughput` (one
# sender, one receiver, 120-byte messages) under callgrind and prints, for each side, the
# instructions of its whole process divided by the messages it moved, and those of the
# call that does the work (mbx_send_ex, mbx_recv) less its waiting. The mailbox is deep
# enough for every message, so the sender never waits for room, and the receiver's spin
# (spin_for_message) is left out: what remains depends on the code only, not on how the
# two processes happened to interleave. Prints figures only; asserts nothing.
#
# Usage: tools/perf/instructions.sh [BUILD ...]   (default: build-rel; a Release build)
#   Several builds: one line per build and side, for comparing them.
#   COUNT: messages (default 100000). ARGS: more `mbx bench` arguments (--no-validate).
set -euo pipefail
# shellcheck source=tools/perf/own_library.sh
. "$(dirname "$0")/own_library.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
builds=("$@")
[ ${#builds[@]} -gt 0 ] || builds=("$top/build-rel")
count=${COUNT:-100000}
for build in "${builds[@]}"; do own_library instructions "$build" || exit 1; done
command -v valgrind >/dev/null || { echo "instructions: needs valgrind" >&2; exit 1; }

work=$(mktemp -d)
export MBX_RUNTIME_DIR="$work/run"
mkdir -m 0700 "$MBX_RUNTIME_DIR"
broker=""
cleanup() {
    [ -z "$broker" ] || kill "$broker" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# The inclusive count of fn in a callgrind output file (0 when it never ran).
inclusive() { # file fn
    callgrind_annotate --inclusive=yes "$1" 2>/dev/null |
        awk -v fn="$2" '$0 ~ ":" fn " " && !found { gsub(",", "", $1); print $1; found = 1 }
                         END { if (!found) print 0 }'
}
total() { # file
    callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ && !done { gsub(",", "", $1); print $1; done = 1 }'
}

printf '%-40s %-9s %14s %16s\n' "build" "side" "instr/msg" "call, no waiting"
for build in "${builds[@]}"; do
    ns="instr$$"
    timeout 600 "$build/broker/mailboxd" -N "$ns" --log "$work/broker.log" \
        --slots 8 --depth "$count" &
    broker=$!
    for _ in $(seq 200); do
        "$build/tools/mbx" list -N "$ns" >/dev/null 2>&1 && break
        sleep 0.05
    done
    rm -f "$work"/cg.*
    # shellcheck disable=SC2086 # ARGS are words
    timeout 600 valgrind --tool=callgrind --trace-children=yes \
        --callgrind-out-file="$work/cg.%p" \
        "$build/tools/mbx" bench -N "$ns" --mode throughput --count "$count" ${ARGS:-} \
        >"$work/bench.log" 2>&1 || { cat "$work/bench.log" >&2; exit 1; }
    kill "$broker" 2>/dev/null || true
    wait "$broker" 2>/dev/null || true
    broker=""
    for f in "$work"/cg.*; do
        send=$(inclusive "$f" mbx_send_ex)
        recv=$(inclusive "$f" mbx_recv)
        spin=$(inclusive "$f" spin_for_message)
        all=$(total "$f")
        if [ "$send" != 0 ]; then
            side=sender call=$send
        elif [ "$recv" != 0 ]; then
            side=receiver call=$((recv - spin))
        else
            continue # the parent, which only waits
        fi
        printf '%-40s %-9s %14.0f %16.0f\n' "$(basename "$build")" "$side" \
            "$(awk -v n="$all" -v c="$count" 'BEGIN { print n / c }')" \
            "$(awk -v n="$call" -v c="$count" 'BEGIN { print n / c }')"
    done
done
echo "(callgrind, $count messages of 120 bytes, 1 -> 1; instr/msg: the whole process, waiting included)"
