#!/usr/bin/env bash
# mailboxd@.service: systemd-analyze verify passes on an instance of the unit (pointed at
# this build's mailboxd), and the unit's own command line, run as the unit runs it
# (%i substituted, its Environment=), serves a namespace that mbx can use.
set -euo pipefail
build_dir=$1
unit="$build_dir/packaging/mailboxd@.service"
[ -e "$unit" ] || { echo "no unit generated: $unit"; exit 1; }
scratch=$(mktemp -d)
pid=
cleanup() {
    [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
    rm -rf "$scratch"
}
trap cleanup EXIT
ns="mbxtest-${MBX_TEST_TAG:-local}-unit-$$"
bindir=$(sed -n 's#^ExecStart=\(.*\)/mailboxd .*#\1#p' "$unit")
sed "s#$bindir/mailboxd#$build_dir/broker/mailboxd#" "$unit" >"$scratch/mailboxd@$ns.service"
systemd-analyze verify --man=no "$scratch/mailboxd@$ns.service"

cmdline=$(sed -n 's#^ExecStart=##p' "$scratch/mailboxd@$ns.service" | sed "s/%i/$ns/g")
export MBX_RUNTIME_DIR="$scratch/run"
$cmdline 2>"$scratch/log" &
pid=$!
# A sender that waits for the broker and for its peer, and the peer once the broker is
# up (the unit would wait for READY=1; here, up to 10 s for the endpoint).
"$build_dir/tools/mbx" send -N "$ns" --wait 10000 probe '{"via":"unit"}' &
sender=$!
for _ in $(seq 200); do
    rc=0
    "$build_dir/tools/mbx" recv -N "$ns" -c 1 -t 10000 probe >"$scratch/got" 2>/dev/null || rc=$?
    [ "$rc" -eq 3 ] || break # 3: no broker yet
    sleep 0.05
done
wait "$sender"
[ "$(cat "$scratch/got")" = '{"via":"unit"}' ] || { echo "no message through the unit's broker"; exit 1; }
kill -TERM "$pid"
wait "$pid"
pid=
echo "systemd: the unit verifies, and its command line serves a namespace"
