#!/usr/bin/env bash
# The Debian packages, on this machine (as root: CI runs it): builds mailbox and
# mailbox-dev, holds them to lintian (no error or warning but those docs/install.md
# explains), installs them with apt-get, checks what they put where, starts
# mailboxd@test through the unit file's own command line (as its user, in a runtime
# directory of its own), runs mbx and a Python client against it, then removes the
# packages and checks that they are gone.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "check_deb: needs root (it installs packages)"; exit 1; }
export DEBIAN_FRONTEND=noninteractive
build=${BUILD_DIR:-"$top/build-deb"}
# lintian, and dpkg-dev with it (Debian's build flags for build-deb.sh).
if ! command -v lintian >/dev/null || ! command -v dpkg-buildflags >/dev/null; then
    apt-get install -y -qq --no-install-recommends lintian dpkg-dev >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get install -y -qq --no-install-recommends lintian dpkg-dev >/dev/null; }
fi
mapfile -t debs < <(BUILD_DIR="$build" bash "$top/packaging/build-deb.sh")
# One library package would be libmailbox0; until 1.0 the library ships with the broker
# it must match (docs/install.md). Without DEBEMAIL the maintainer is a placeholder.
suppress=package-name-doesnt-match-sonames
[ -n "${DEBEMAIL:-}" ] || suppress+=,bogus-mail-host,bogus-mail-host-in-debian-changelog
lintian --fail-on error,warning --suppress-tags "$suppress" "${debs[@]}" 2> >(grep -v "root privileges" >&2) ||
    { echo "check_deb: lintian finds fault with the packages"; exit 1; }
run=$(mktemp -d /run/mailbox-debtest.XXXXXX)
pid=
cleanup() {
    [ -z "$pid" ] || kill "$pid" 2>/dev/null || true
    rm -rf "$run"
    apt-get remove --purge -y -qq mailbox mailbox-dev >/dev/null 2>&1 || true
}
trap cleanup EXIT

apt-get install -y -qq "${debs[@]}" >/dev/null
for f in /usr/bin/mailboxd /usr/bin/mbx /usr/include/mailbox.h \
    /usr/lib/systemd/system/mailboxd@.service /usr/share/man/man1/mbx.1.gz \
    /usr/share/bash-completion/completions/mbx /usr/share/doc/mailbox/copyright \
    /usr/share/doc/mailbox/changelog.gz /usr/share/doc/mailbox-dev/copyright; do
    [ -e "$f" ] || { echo "check_deb: not installed: $f"; exit 1; }
done
getent passwd mailbox >/dev/null || { echo "check_deb: no user mailbox (postinst)"; exit 1; }

# mailboxd@test as the unit runs it: its ExecStart, its user and group, its environment
# (but a runtime directory of this test's own in /run, made as RuntimeDirectory= would
# be: given to the unit's user).
unit=/usr/lib/systemd/system/mailboxd@.service
read -r -a cmd < <(sed -n 's/^ExecStart=//p' "$unit" | sed 's/%i/test/g')
user=$(sed -n 's/^User=//p' "$unit")
group=$(sed -n 's/^Group=//p' "$unit")
chown "$user:$group" "$run"
chmod 0755 "$run"
export MBX_RUNTIME_DIR="$run"
setpriv --reuid "$user" --regid "$group" --clear-groups env MBX_RUNTIME_DIR="$run" "${cmd[@]}" \
    2>"$run/broker.log" &
pid=$!
# A sender that waits for the broker and its peer; the peer once the broker is up.
mbx send -N test --wait 10000 pkg '{"from":"the package"}' &
sender=$!
for _ in $(seq 200); do
    rc=0
    mbx recv -N test -c 1 -t 10000 pkg >"$run/got" 2>/dev/null || rc=$?
    [ "$rc" -eq 3 ] || break # 3: no broker yet
    sleep 0.05
done
wait "$sender"
[ "$(cat "$run/got")" = '{"from":"the package"}' ] || { echo "check_deb: no message"; exit 1; }
mbx list -N test --json | grep -q '"namespace":"test"'
/usr/bin/python3 -c 'import mailbox_ipc, sys
with mailbox_ipc.Client(namespace="test", name="py") as c:
    c.send("py", {"ok": 1})
    sys.exit(0 if c.recv(timeout_ms=1000).body == {"ok": 1} else 1)'
pkg-config --cflags mailbox >/dev/null
kill -TERM "$pid"
wait "$pid" || true
pid=

apt-get remove --purge -y -qq mailbox mailbox-dev >/dev/null
for f in /usr/bin/mailboxd /usr/bin/mbx /usr/include/mailbox.h "$unit"; do
    [ ! -e "$f" ] || { echo "check_deb: left after removal: $f"; exit 1; }
done
echo "deb: mailbox and mailbox-dev install, serve mailboxd@test through the unit's command line, and remove cleanly"
