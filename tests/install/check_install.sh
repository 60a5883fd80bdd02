#!/usr/bin/env bash
# Installs the build into a scratch prefix and builds a user's program against it twice:
# through find_package(mailbox) (shared and static) and through pkg-config.
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

cmake -S "$here/consumer" -B "$scratch/consumer" -DCMAKE_PREFIX_PATH="$scratch/prefix" \
    -DCMAKE_C_FLAGS="$flags" >/dev/null
cmake --build "$scratch/consumer" >/dev/null
LD_LIBRARY_PATH="$libdir" "$scratch/consumer/consumer"
"$scratch/consumer/consumer_static"

# The .pc file names the configured prefix; point it at the scratch one.
pc() { PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --define-variable=prefix="$scratch/prefix" "$@"; }
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
echo "install: find_package (shared, static), pkg-config and Python consumers work"
