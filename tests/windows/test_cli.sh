#!/bin/sh
# The command line under Wine, as on Linux (tests/cli): options after the arguments (GNU
# order) and "--" ending them; invalid JSON with its position; size suffixes; mbx sub -v;
# mbx monitor.
# Usage: test_cli.sh BIN_DIR (the folder of mailboxd.exe and mbx.exe).
set -u
bin=$1
name=cli
. "$(dirname "$0")/wine_scaffold.sh"
start_broker --max-message 64K

# sub with its options after the pattern ends at its timeout (exit 4), not never.
mbx sub -N "$ns" 'a.>' -c 1 -t 200 >/dev/null 2>&1
rc=$?
[ "$rc" -eq 4 ] || fail "mbx sub -N NS 'a.>' -c 1 -t 200 exited $rc, not 4"
mbx wait -N "$ns" worker -t 200 >/dev/null 2>&1
rc=$?
[ "$rc" -eq 4 ] || fail "mbx wait -N NS worker -t 200 exited $rc, not 4"

timeout -s KILL 60 wine "$bin/mbx.exe" recv worker -N "$ns" -c 2 -t 30000 >"$work/recv.out" 2>&1 &
rpid=$!
wait_listed worker
mbx send --from worker -N "$ns" worker '{}' 2>"$work/err"
rc=$?
[ "$rc" -eq 2 ] && grep -q -- "--from worker: a client of this namespace has that name" "$work/err" ||
    fail "mbx send --from (a client's name) exited $rc: $(cat "$work/err")"
mbx send worker '{}' -N "$ns" || fail "mbx send TO JSON -N NS failed"
mbx send -N "$ns" worker -- -1 || fail "mbx send -N NS TO -- -1 failed"
wait "$rpid"
rc=$?
rpid=
[ "$rc" -eq 0 ] || fail "mbx recv NAME -N NS -c 2 exited $rc: $(cat "$work/recv.out")"
got=$(tr -d '\r' <"$work/recv.out" | tr '\n' ' ')
[ "$got" = "{} -1 " ] || fail "received '$got', not '{} -1 '"
mbx send -N "$ns" worker -1 2>"$work/err"
rc=$?
[ "$rc" -eq 2 ] && grep -q "goes after '--'" "$work/err" ||
    fail "mbx send TO -1 exited $rc: $(cat "$work/err")"

# Invalid JSON: where and what; sizes with suffixes (the broker took --max-message 64K).
mbx pub -N "$ns" t.a "{'a': 1}" 2>"$work/err"
rc=$?
[ "$rc" -eq 6 ] && grep -q "invalid JSON at byte 1: expected a string in double quotes" "$work/err" ||
    fail "mbx pub TOPIC \"{'a': 1}\" exited $rc: $(cat "$work/err")"
mbx list -N "$ns" --json | tr -d '\r' | grep -q '"max_message":65536' ||
    fail "mailboxd --max-message 64K did not give 65536"

# A namespace nobody serves: exit 3 and where the client looked, also from mbx wait.
mbx wait -N "$ns-typo" x -t 200 2>"$work/err"
rc=$?
[ "$rc" -eq 3 ] && grep -q "no broker serves this namespace (looked for .*pipe" "$work/err" ||
    fail "mbx wait -N TYPO x -t 200 exited $rc: $(cat "$work/err")"

# sub -v: 'TOPIC BODY' per line.
timeout -s KILL 60 wine "$bin/mbx.exe" sub -N "$ns" -v --ready -c 1 -t 30000 'a.>' \
    >"$work/sub.out" 2>"$work/sub.err" &
rpid=$!
i=0
until grep -q '^ready' "$work/sub.err" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 100 ] || fail "the subscriber did not get ready: $(cat "$work/sub.err")"
    sleep 0.1
done
mbx pub -N "$ns" a.b '{"x":1}' || fail "mbx pub failed"
wait "$rpid"
rc=$?
rpid=
got=$(tr -d '\r' <"$work/sub.out")
[ "$rc" -eq 0 ] && [ "$got" = 'a.b {"x":1}' ] || fail "mbx sub -v exited $rc, printed '$got'"

# mbx monitor: a send and a publication, once each, as JSON.
timeout -s KILL 60 wine "$bin/mbx.exe" monitor -N "$ns" --json --ready -c 2 -t 30000 \
    >"$work/mon.out" 2>"$work/mon.err" &
rpid=$!
i=0
until grep -q '^ready' "$work/mon.err" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 100 ] || fail "the monitor did not get ready: $(cat "$work/mon.err")"
    sleep 0.1
done
mbx pub -N "$ns" --from probe m.t '[7]' || fail "mbx pub (monitored) failed"
mbx pub -N "$ns" --from probe m.u '[8]' || fail "mbx pub (monitored) failed"
wait "$rpid"
rc=$?
rpid=
got=$(tr -d '\r' <"$work/mon.out" | sed 's/"ts":[0-9]*,//' | tr '\n' ' ')
want='{"kind":"publish","from":"probe","topic":"m.t","size":3,"body":[7]} {"kind":"publish","from":"probe","topic":"m.u","size":3,"body":[8]} '
[ "$rc" -eq 0 ] && [ "$got" = "$want" ] || fail "mbx monitor exited $rc, printed '$got'"

# mbx run: CMD (found beside mbx.exe) runs on a fresh namespace of its own, which is gone
# afterwards; mbx run exits with CMD's code.
mbx run --slots 8 -- mbx.exe list --json >"$work/run.out" 2>"$work/run.err"
rc=$?
run_ns=$(tr -d '\r' <"$work/run.out" | sed -n 's/.*"namespace":"\(run-[^"]*\)".*/\1/p')
[ "$rc" -eq 0 ] && [ -n "$run_ns" ] && tr -d '\r' <"$work/run.out" | grep -q '"slots":8' ||
    fail "mbx run --slots 8 -- mbx.exe list --json exited $rc: $(cat "$work/run.out" "$work/run.err")"
mbx list -N "$run_ns" >/dev/null 2>&1
rc=$?
[ "$rc" -eq 3 ] || fail "mbx run left namespace $run_ns behind (mbx list exited $rc)"
mbx run -- mbx.exe wait -t 100 nobody >/dev/null 2>&1
rc=$?
[ "$rc" -eq 4 ] || fail "mbx run -- mbx.exe wait (timing out: 4) exited $rc"
mbx run -- no-such-program.exe >/dev/null 2>"$work/err"
rc=$?
[ "$rc" -eq 127 ] && grep -q "cannot run 'no-such-program.exe'" "$work/err" ||
    fail "mbx run -- (no such program) exited $rc: $(cat "$work/err")"

kill -INT "$bpid"
wait "$bpid"
bpid=
echo "test_cli: options after the arguments, --, JSON positions, size suffixes, sub -v, monitor and mbx run work under Wine"
