#!/usr/bin/env bash
# What a change costs the data path: runs `mbx bench` with two builds, alternating them
# (A, B, A, B, ...) so that a slow or fast phase of the machine falls on both, and prints
# each figure's median per build and the ratio B/A. Each build runs its own mailboxd on
# a namespace of its own (the two may differ in layout). Prints figures only; asserts
# nothing.
#
# Usage: tools/perf/ab_run.sh BUILD_A BUILD_B [ROUNDS]
#   BUILD_A, BUILD_B: build trees with broker/mailboxd and tools/mbx (Release builds:
#   cmake -DCMAKE_BUILD_TYPE=Release -DMBX_BUILD_TESTS=OFF). ROUNDS: runs per build and
#   figure (default 5). Build the old tree from a git worktree (git worktree add DIR REV):
#   a copied build tree still loads the original tree's library through its run path. MONITOR=1 runs B's figures with `mbx monitor` attached (writing
#   to /dev/null): what watching costs, beside what the hook costs when nobody watches.
#   FIGURES=wait runs the event-loop figures instead: ping-pong with a blocking receiver,
#   with one waiting in epoll on its wake handle (--poll), and with one that busy-polls
#   30 us before it waits (--poll --busy-poll 30).
#
# docs/performance.md, "The monitor hook", was measured with this script: A the build
# before monitors, B the build with them.
set -euo pipefail
# shellcheck source=tools/perf/own_library.sh
. "$(dirname "$0")/own_library.sh"
a=${1:?usage: ab_run.sh BUILD_A BUILD_B [ROUNDS]}
b=${2:?usage: ab_run.sh BUILD_A BUILD_B [ROUNDS]}
rounds=${3:-5}
for build in "$a" "$b"; do
    for p in broker/mailboxd tools/mbx; do
        [ -x "$build/$p" ] || { echo "ab_run: $build/$p not built" >&2; exit 1; }
    done
    own_library ab_run "$build" || exit 1
done

# Everything lives in a private runtime directory, removed on exit with the brokers.
work=$(mktemp -d)
export MBX_RUNTIME_DIR="$work/run"
mkdir -m 0700 "$MBX_RUNTIME_DIR"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for ns in abA abB; do "$a/tools/mbx" clean "$ns" >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

start_broker() { # build ns
    timeout 600 "$1/broker/mailboxd" -N "$2" --log "$work/$2.log" &
    pids+=($!)
    for _ in $(seq 200); do
        "$1/tools/mbx" list -N "$2" >/dev/null 2>&1 && return
        sleep 0.05
    done
    echo "ab_run: $1/broker/mailboxd did not serve $2" >&2
    exit 1
}
start_broker "$a" abA
start_broker "$b" abB
if [ "${MONITOR:-0}" = 1 ]; then
    timeout 600 "$b/tools/mbx" monitor -N abB >/dev/null &
    pids+=($!)
fi

# figure name, then mbx bench arguments; the JSON field the figure is read from
figures=(
    "pingpong p50 us|--mode pingpong --count 100000|rtt_us.p50"
    "1 -> 1 msgs/s|--mode throughput --count 2000000|msgs_per_s"
    "4 -> 1 msgs/s|--mode throughput --senders 4 --count 2000000|msgs_per_s"
    "request p50 us|--mode request --count 50000|rtt_us.p50"
)
if [ "${FIGURES:-}" = wait ]; then
    figures=(
        "blocking p50 us|--mode pingpong --count 50000|rtt_us.p50"
        "poll p50 us|--mode pingpong --count 50000 --poll|rtt_us.p50"
        "busy-poll p50 us|--mode pingpong --count 50000 --poll --busy-poll 30|rtt_us.p50"
    )
fi
field() { # json dotted.path
    /usr/bin/python3 -c 'import json,sys
v=json.loads(sys.argv[1])
for k in sys.argv[2].split("."): v=v[k]
print(v)' "$1" "$2"
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }

# The machine's phase before and after (mbx-line-probe): rates move 2-4x with it, and a
# run whose two lines disagree straddled a change of phase (run it again).
probe() {
    for build in "$b" "$a"; do
        if [ -x "$build/tools/perf/mbx-line-probe" ]; then
            echo "phase $1: $("$build/tools/perf/mbx-line-probe" 300000)"
            return
        fi
    done
}
probe before
printf '%-18s %14s %14s %8s\n' "figure" "A (median)" "B (median)" "B/A"
for fig in "${figures[@]}"; do
    IFS='|' read -r name args path <<<"$fig"
    va=() vb=()
    for _ in $(seq "$rounds"); do
        # shellcheck disable=SC2086 # args are words
        va+=("$(field "$(timeout 300 "$a/tools/mbx" bench -N abA $args --json)" "$path")")
        # shellcheck disable=SC2086
        vb+=("$(field "$(timeout 300 "$b/tools/mbx" bench -N abB $args --json)" "$path")")
    done
    ma=$(median "${va[@]}") mb=$(median "${vb[@]}")
    printf '%-18s %14s %14s %8.3f\n' "$name" "$ma" "$mb" "$(awk -v a="$ma" -v b="$mb" 'BEGIN {print b / a}')"
done
echo "($rounds runs of each build, alternated; lower is better for us, higher for msgs/s)"
probe after
