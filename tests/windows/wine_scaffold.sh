# wine_scaffold.sh: what the Wine shell tests share (sourced, after setting `name` and
# `bin`, the folder of mailboxd.exe and mbx.exe): a namespace and a scratch folder of
# their own, cleaned up on exit with every process started here; fail MESSAGE (with the
# broker's log); mbx ARGS (bounded); start_broker ARGS; wait_listed NAME.
ns="mbxtest-${MBX_TEST_TAG:-x}-$name-$$"
work=$(mktemp -d)
bpid= rpid=
cleanup() {
    for p in $bpid $rpid; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "test_$name: $*" >&2
    echo "--- broker log:" >&2
    cat "$work/broker.log" >&2
    exit 1
}
# Every process here is bounded by timeout(1), which passes our SIGINT on.
mbx() { timeout -s KILL 30 wine "$bin/mbx.exe" "$@"; }
start_broker() {
    timeout -s KILL 90 wine "$bin/mailboxd.exe" -N "$ns" "$@" >"$work/broker.log" 2>&1 &
    bpid=$!
    i=0
    until mbx list -N "$ns" >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 100 ] || fail "the broker did not get ready"
        sleep 0.1
    done
}
wait_listed() {
    i=0
    until mbx list -N "$ns" 2>/dev/null | grep -q "^$1 "; do
        i=$((i + 1))
        [ $i -lt 100 ] || fail "$1 did not connect"
        sleep 0.1
    done
}
