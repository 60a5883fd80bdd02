#!/bin/sh
# Console control stops the broker as SIGTERM does on Linux: Ctrl+C (which Wine delivers
# to a console program as CTRL_C_EVENT when its process gets SIGINT) ends mailboxd.exe
# with exit code 0, and a client blocked in `mbx recv` wakes with exit code 7 (shutdown).
# On the way: --mode 0666 becomes the segment's security descriptor, read back as 0606
# (the group bits have no Windows counterpart).
# Usage: test_console.sh BIN_DIR (the folder of mailboxd.exe and mbx.exe).
set -u
bin=$1
ns="mbxtest-${MBX_TEST_TAG:-x}-console-$$"
work=$(mktemp -d)
bpid= rpid=
cleanup() {
    for p in $bpid $rpid; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "test_console: $*" >&2
    echo "--- broker log:" >&2
    cat "$work/broker.log" >&2
    exit 1
}
# Every process here is bounded: timeout(1) passes our SIGINT on and kills at its limit.
timeout -s KILL 60 wine "$bin/mailboxd.exe" -N "$ns" --mode 0666 >"$work/broker.log" 2>&1 &
bpid=$!
i=0
until timeout 10 wine "$bin/mbx.exe" list -N "$ns" >/dev/null 2>&1; do
    i=$((i + 1))
    [ $i -lt 100 ] || fail "the broker did not get ready"
    sleep 0.1
done
timeout -s KILL 60 wine "$bin/mbx.exe" recv -N "$ns" -t 30000 waiter >"$work/recv.log" 2>&1 &
rpid=$!
i=0
until timeout 10 wine "$bin/mbx.exe" list -N "$ns" 2>/dev/null | grep -q '^waiter '; do
    i=$((i + 1))
    [ $i -lt 100 ] || fail "the receiver did not connect"
    sleep 0.1
done
sleep 0.3 # let it block in mbx_recv
grep -q "ready: .*, mode 0606" "$work/broker.log" || fail "--mode 0666 did not read back as 0606"

kill -INT "$bpid"
wait "$bpid"
brc=$?
bpid=
[ "$brc" -eq 0 ] || fail "mailboxd.exe exited with $brc after Ctrl+C, not 0"
grep -q 'stopping (signal 2)' "$work/broker.log" || fail "no 'stopping' line in the log"
wait "$rpid"
rrc=$?
rpid=
[ "$rrc" -eq 7 ] || fail "mbx recv exited with $rrc, not 7 (shutdown): $(cat "$work/recv.log")"
echo "test_console: Ctrl+C stopped the broker (exit 0) and woke the receiver (exit 7)"
