#!/bin/sh
# Runs after every other test: fails, naming them, if a test of this build left a process
# or a shared memory entry or runtime file (control socket, lock, keeper socket) of a test
# namespace ("mbxtest-$MBX_TEST_TAG-...") behind, and
# removes them so that the next run starts clean.
prefix="mbxtest-${MBX_TEST_TAG:-local}-"
found=0
for f in /dev/shm/mailbox."$prefix"*; do
    [ -e "$f" ] || continue
    echo "leftover shared memory: $f"
    rm -f "$f"
    found=1
done
# A broker's control socket and lock in its runtime directory (root's, or this user's).
for dir in "${MBX_RUNTIME_DIR:-}" /run/mailbox "${XDG_RUNTIME_DIR:+$XDG_RUNTIME_DIR/mailbox}" \
    "/tmp/mailbox-$(id -u)"; do
    [ -n "$dir" ] || continue
    for f in "$dir/$prefix"*; do
        [ -e "$f" ] || continue
        echo "leftover runtime file: $f"
        rm -rf "$f"
        found=1
    done
done
procs=$(pgrep -f -- "-N $prefix" || true)
if [ -n "$procs" ]; then
    echo "leftover processes:"
    ps -o pid,args -p "$(echo $procs | tr ' ' ',')" || true
    kill -9 $procs 2>/dev/null || true
    found=1
fi
# Log files of brokers started with -d where there is no /dev/log: not a leak (the
# broker names them at start and keeps them on purpose), but not to pile up either.
rm -f /var/log/mailbox/"$prefix"*.log "${HOME:-/nonexistent}/.local/state/mailbox/$prefix"*.log \
    2>/dev/null || true
[ "$found" -eq 0 ] || exit 1
echo "no leftovers of $prefix*"
