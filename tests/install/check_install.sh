#!/usr/bin/env bash
# Installs the build into a scratch prefix (not the one configured: the install must be
# relocatable), runs the installed tools, and builds a user's program against it:
# through find_package(mailbox) (shared and static) and through pkg-config, with no
# overrides; then the Python package, and (for a build without fault injection) that
# MBX_FAULT does nothing.
set -euo pipefail
build_dir=$1
# A sanitized library needs a sanitized program: the second argument, if any, is the
# -fsanitize= list the library was built with.
flags=${2:+-fsanitize=$2}
here=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

cmake --install "$build_dir" --prefix "$scratch/prefix" >/dev/null
for f in bin/mailboxd bin/mbx include/mailbox.h; do
    [ -e "$scratch/prefix/$f" ] || { echo "not installed: $f"; exit 1; }
done
libdir=$(dirname "$(find "$scratch/prefix" -name 'libmailbox.so' | head -n 1)")
[ -e "$libdir/libmailbox.a" ] || { echo "not installed: libmailbox.a"; exit 1; }
# Man pages (when scdoc built them), where man looks.
if [ -e "$build_dir/docs/man/mbx.1" ]; then
    for page in man/man1/mbx.1.gz man/man8/mailboxd.8.gz man/man3/libmailbox.3.gz; do
        [ -e "$scratch/prefix/share/$page" ] || { echo "not installed: share/$page"; exit 1; }
    done
    # man 3 FUNCTION: a link to libmailbox(3) for every function mailbox.h exports.
    for fn in $(sed -n 's/^MBX_API .*[ *]\(mbx_[a-z0-9_]*\)(.*/\1/p' "$here/../../libmailbox/include/mailbox.h"); do
        link="$scratch/prefix/share/man/man3/$fn.3.gz"
        [ "$(readlink "$link")" = libmailbox.3.gz ] && [ -e "$link" ] ||
            { echo "no man page link: share/man/man3/$fn.3.gz"; exit 1; }
    done
fi
# The schemas and the reference that --help and the man pages name.
for f in mailbox/schemas/list.schema.json mailbox/schemas/envelope.schema.json \
    mailbox/schemas/monitor.schema.json \
    doc/mailbox/cli.md doc/mailbox/api.md; do
    [ -e "$scratch/prefix/share/$f" ] || { echo "not installed: share/$f"; exit 1; }
done
# Named where the configured prefix puts them (docs/install.md: a moved install's files
# are under its new prefix, the help still says the configured one).
configured=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build_dir/CMakeCache.txt")
"$scratch/prefix/bin/mbx" list --help | grep -q "$configured/share/mailbox/schemas/list.schema.json" ||
    { echo "mbx list --help does not name $configured/share/mailbox/schemas/list.schema.json"; exit 1; }
# The unit names the programs where this install put them, not the prefix configured.
unit="$scratch/prefix/lib/systemd/system/mailboxd@.service"
grep -q "^ExecStart=$scratch/prefix/bin/mailboxd " "$unit" ||
    { echo "mailboxd@.service: $(grep ExecStart "$unit" || echo 'not installed')"; exit 1; }
for f in mbx mailboxd; do
    [ -e "$scratch/prefix/share/bash-completion/completions/$f" ] ||
        { echo "not installed: bash completion for $f"; exit 1; }
done
# ABI: the static library defines nothing but the public mbx_* symbols (its internals are
# local: no collision with an application's names), and the shared one versions them.
leaked=$(nm -g --defined-only "$libdir/libmailbox.a" | awk 'NF == 3 && $3 !~ /^mbx_/ {print $3}')
[ -z "$leaked" ] || { echo "libmailbox.a exports internal symbols: $leaked"; exit 1; }
unversioned=$(objdump -T "$libdir/libmailbox.so" | awk '/ g / && /mbx_/ && !/MAILBOX_0/')
[ -z "$unversioned" ] || { echo "unversioned symbols: $unversioned"; exit 1; }
# The tools find the library next to them (a relative RPATH): no LD_LIBRARY_PATH.
for tool in mbx mailboxd; do
    env -u LD_LIBRARY_PATH "$scratch/prefix/bin/$tool" --version >/dev/null ||
        { echo "installed $tool does not run"; exit 1; }
done

cmake -S "$here/consumer" -B "$scratch/consumer" -DCMAKE_PREFIX_PATH="$scratch/prefix" \
    -DCMAKE_C_FLAGS="$flags" >/dev/null
cmake --build "$scratch/consumer" >/dev/null
LD_LIBRARY_PATH="$libdir" "$scratch/consumer/consumer"
"$scratch/consumer/consumer_static"

# The .pc file finds its prefix from where it is: no --define-variable.
pc() { PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config "$@"; }
case "$(pc --cflags mailbox)" in *"$scratch/prefix"*) ;; *) echo "mailbox.pc: wrong prefix"; exit 1 ;; esac
cc $flags -o "$scratch/pc_consumer" "$here/consumer/main.c" $(pc --cflags --libs mailbox)
LD_LIBRARY_PATH="$libdir" "$scratch/pc_consumer"
# The Python package, where the prefix's python3 looks (one PYTHONPATH for a scratch
# prefix), finds the installed library by itself: no MBX_LIBRARY, no LD_LIBRARY_PATH.
pydir=$(dirname "$(find "$scratch/prefix" -name pytest_plugin.py -path '*mailbox_ipc*' | head -n 1)")
[ -e "$pydir/_libpath.txt" ] || { echo "not installed: the Python package"; exit 1; }
if [ -z "$flags" ]; then
    env -u MBX_LIBRARY -u LD_LIBRARY_PATH PYTHONPATH="$(dirname "$pydir")" /usr/bin/python3 -c \
        'import mailbox_ipc, sys; sys.exit(0 if mailbox_ipc.library_version().count(".") == 2 else 1)'
fi
# A build made to be installed has no fault injection: no trace of it in the library,
# and MBX_FAULT set on a send changes nothing. (Test builds have it: CI runs this
# script on the release build too.)
if grep -q '^MBX_FAULT_INJECTION:BOOL=OFF' "$build_dir/CMakeCache.txt"; then
    if grep -q -a 'MBX_FAULT' "$libdir/libmailbox.so" "$scratch/prefix/bin/mailboxd"; then
        echo "fault injection left in an installed build"; exit 1
    fi
    export MBX_RUNTIME_DIR="$scratch/run"
    ns="install-$$"
    broker=$("$scratch/prefix/bin/mailboxd" -d -N "$ns" --log "$scratch/broker.log")
    trap 'kill "$broker" 2>/dev/null; rm -rf "$scratch"' EXIT
    timeout 10 "$scratch/prefix/bin/mbx" recv -N "$ns" -c 1 -t 5000 x >"$scratch/got" &
    MBX_FAULT=ring.put.locked timeout 10 "$scratch/prefix/bin/mbx" send -N "$ns" --wait 5000 \
        x '{"fault":"ignored"}'
    wait $!
    [ "$(cat "$scratch/got")" = '{"fault":"ignored"}' ] || { echo "MBX_FAULT had an effect"; exit 1; }
    kill "$broker"
    echo "install: no fault injection in the installed build (MBX_FAULT ignored)"
fi
echo "install: find_package (shared, static), pkg-config and Python consumers work"
