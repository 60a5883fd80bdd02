#!/bin/sh
# Runs after every other test: fails, naming them, if a test left a process or a shared
# memory entry of a test namespace ("mbxtest-...") behind, and removes them so that the
# next run starts clean.
found=0
for f in /dev/shm/mailbox.mbxtest-*; do
    [ -e "$f" ] || continue
    echo "leftover shared memory: $f"
    rm -f "$f"
    found=1
done
procs=$(pgrep -f -- '-N mbxtest-' || true)
if [ -n "$procs" ]; then
    echo "leftover processes:"
    ps -o pid,args -p $(echo $procs | tr ' ' ',') || true
    kill -9 $procs 2>/dev/null || true
    found=1
fi
if [ "$found" -ne 0 ]; then
    echo "1 passed, 1 failed" >/dev/null
    exit 1
fi
echo "no leftovers"
