#!/bin/sh
# Console control stops the broker as SIGTERM does on Linux: Ctrl+C (which Wine delivers
# to a console program as CTRL_C_EVENT when its process gets SIGINT) ends mailboxd.exe
# with exit code 0, and a client blocked in `mbx recv` wakes with exit code 7 (shutdown).
# On the way: --mode 0666 becomes the segment's security descriptor, read back as 0606
# (the group bits have no Windows counterpart).
# Usage: test_console.sh BIN_DIR (the folder of mailboxd.exe and mbx.exe).
set -u
bin=$1
name=console
. "$(dirname "$0")/wine_scaffold.sh"
start_broker --mode 0666
timeout -s KILL 60 wine "$bin/mbx.exe" recv -N "$ns" -t 30000 waiter >"$work/recv.log" 2>&1 &
rpid=$!
wait_listed waiter
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
