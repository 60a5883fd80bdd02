#!/usr/bin/env bash
# `pip install bindings/python` as a Python user does it (docs/python.md, "Install"): the
# build is installed into a scratch prefix, a fresh venv is made by Debian's
# `python3 -m venv`, pip installs the package into it with --no-index (so that it can
# never reach the network: the in-tree build backend needs nothing), and the venv's python,
# run from a folder outside the source tree, imports the installed copy (not the source
# tree's), finds the prefix's library through LD_LIBRARY_PATH or MBX_LIBRARY, sends and
# receives through a real broker of the prefix, and runs a pytest file that uses the
# plugin's fixture; last, the backend's sdist is installed the same way. Arguments: the
# build folder and the project's version (CMake's).
set -euo pipefail
build_dir=$1
version=$2
here=$(cd "$(dirname "$0")" && pwd)
pkg_src=$(cd "$here/../../bindings/python" && pwd)
python=/usr/bin/python3
scratch=$(mktemp -d)
ns="mbxtest-${MBX_TEST_TAG:-local}-venv-$$"
cleanup() {
    # The brokers die with the python that started them (PR_SET_PDEATHSIG), and their
    # runtime files are in $scratch; this is for a run cut short, and names only this
    # test's own namespace.
    pkill -KILL -f -- "-N $ns" 2>/dev/null || true
    rm -f /dev/shm/mailbox."$ns"*
    rm -rf "$scratch"
}
trap cleanup EXIT
fail() { echo "python.venv: $*" >&2; exit 1; }

# Nothing of the project's own test environment: the package and the library must be
# found the way a user's would be. Runtime files go to the scratch folder.
# No pip configuration either (a pip.conf's find-links or index).
unset MBX_LIBRARY PYTHONPATH LD_LIBRARY_PATH
for v in $(env | sed -n 's/^\(PIP_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
export PIP_CONFIG_FILE=/dev/null
export PYTHONDONTWRITEBYTECODE=1 # nothing written into the source tree by pip's build
export MBX_RUNTIME_DIR=$scratch/run TMPDIR=$scratch/tmp # pip's build folders too
mkdir -m 700 "$MBX_RUNTIME_DIR" "$TMPDIR"

cmake --install "$build_dir" --prefix "$scratch/prefix" >/dev/null
libdir=$(dirname "$(find "$scratch/prefix" -name 'libmailbox.so.0' | head -n 1)")
[ -e "$libdir/libmailbox.so.0" ] || fail "libmailbox.so.0 not installed"
export MAILBOXD=$scratch/prefix/bin/mailboxd MBX_BIN=$scratch/prefix/bin/mbx

venv=$scratch/venv
timeout 120 "$python" -m venv "$venv" >"$scratch/venv.log" 2>&1 ||
    fail "'$python -m venv' failed (is Debian's python3-venv installed? tools/bootstrap.sh" \
         "installs it): $(tail -n 3 "$scratch/venv.log")"
timeout 120 "$venv/bin/pip" install --no-index --no-cache-dir --disable-pip-version-check \
    --no-input -q "$pkg_src" >"$scratch/pip.log" 2>&1 ||
    fail "pip install --no-index failed: $(cat "$scratch/pip.log")"

cd "$scratch" # not the source tree: `python -m` and `-c` put the current folder on sys.path

# The installed package: its files, its metadata, and the library found through the
# loader's path (pip installs no _libpath.txt, so the system's search is what finds it).
cat >"$scratch/check_installed.py" <<'EOF'
import importlib.metadata, os, sys
import mailbox_ipc
from mailbox_ipc import _native
from mailbox_ipc.testing import MailboxNamespace

# From the environment: a namespace named on a command line would count as a leftover.
venv, version, ns, libdir = (os.environ[k] for k in ("VENV", "VERSION", "NS", "LIBDIR"))
pkg = os.path.dirname(os.path.realpath(mailbox_ipc.__file__))
assert pkg.startswith(os.path.realpath(venv) + "/"), f"imported from {pkg}, not the venv"
assert importlib.metadata.version("mailbox-ipc") == version, \
    f"wheel version {importlib.metadata.version('mailbox-ipc')}, project {version}"
assert os.path.exists(os.path.join(pkg, "py.typed")), "py.typed not installed"
assert not os.path.exists(os.path.join(pkg, "_libpath.txt")), "a build's _libpath.txt shipped"
assert _native.lib._name == "libmailbox.so.0", f"loaded {_native.lib._name}"
with open("/proc/self/maps") as f:
    maps = f.read()
assert os.path.realpath(libdir) in maps, "the prefix's library is not the one mapped"
assert mailbox_ipc.library_version() == version, mailbox_ipc.library_version()

space = MailboxNamespace(ns)
try:
    a, b = space.client("a"), space.client("b")
    a.send("b", {"n": 1, "text": "from the venv"})
    msg = b.recv(timeout_ms=5000)
    assert (msg.sender, msg.body) == ("a", {"n": 1, "text": "from the venv"}), msg
finally:
    left = space.close()
assert not left, f"left behind: {left}"
print("venv: send/recv through", space.name, "with", _native.lib._name, "from", libdir)
EOF
VENV=$venv VERSION=$version NS=$ns LIBDIR=$libdir LD_LIBRARY_PATH=$libdir \
    timeout 60 "$venv/bin/python" "$scratch/check_installed.py" || fail "the installed package failed (above)"

# MBX_LIBRARY overrides, with nothing on the loader's path.
MBX_LIBRARY=$libdir/libmailbox.so.0 timeout 30 "$venv/bin/python" -c '
import os, mailbox_ipc
from mailbox_ipc import _native
assert _native.lib._name == os.environ["MBX_LIBRARY"], _native.lib._name
' || fail "MBX_LIBRARY was not used"

# Without either, and with no libmailbox in the system's search, the import fails and says
# what to set (when one is installed system-wide, that one is found instead: fine).
if ! /sbin/ldconfig -p | grep -q 'libmailbox\.so\.0'; then
    if out=$(timeout 30 "$venv/bin/python" -c 'import mailbox_ipc' 2>&1); then
        fail "imported with no library anywhere"
    fi
    case "$out" in *ImportError*MBX_LIBRARY*) ;; *) fail "unclear error without a library: $out" ;; esac
fi

# The pytest plugin's fixture, with the venv's python. The venv has no pytest of its own
# and pip may not download one: the venv is switched to see the system's site-packages
# (Debian's python3-pytest), which come after its own, so the package imported is still
# the venv's (the test asserts it).
sed -i 's/^include-system-site-packages = false$/include-system-site-packages = true/' \
    "$venv/pyvenv.cfg"
grep -q '^include-system-site-packages = true$' "$venv/pyvenv.cfg" || fail "pyvenv.cfg unchanged"
printf '[pytest]\n' >"$scratch/pytest.ini"
cat >"$scratch/test_in_venv.py" <<'EOF'
import os

import mailbox_ipc


def test_fixture_from_the_venv(mailbox_ns):
    venv = os.path.realpath(os.environ["VENV"]) + "/"
    assert os.path.realpath(mailbox_ipc.__file__).startswith(venv), mailbox_ipc.__file__
    a, b = mailbox_ns.client("a"), mailbox_ns.client("b")
    a.send("b", [1, 2, 3])
    msg = b.recv(timeout_ms=5000)
    assert (msg.sender, msg.body) == ("a", [1, 2, 3])
EOF
VENV=$venv LD_LIBRARY_PATH=$libdir timeout 120 "$venv/bin/python" -m pytest \
    -p mailbox_ipc.pytest_plugin -p no:cacheprovider -q "$scratch/test_in_venv.py" ||
    fail "pytest with the plugin failed (above)"
# The sdist the backend makes builds the same package again (its version from PKG-INFO,
# with no CMakeLists.txt beside it), and pip reinstalls from it.
mkdir "$scratch/sdist"
(cd "$pkg_src" && timeout 60 "$python" -c '
import sys
sys.path.insert(0, "_build_backend")
import mailbox_ipc_build
print(mailbox_ipc_build.build_sdist(sys.argv[1]))' "$scratch/sdist" >/dev/null) ||
    fail "build_sdist failed"
sdist=$(echo "$scratch"/sdist/mailbox_ipc-"$version".tar.gz)
[ -e "$sdist" ] || fail "no sdist named after version $version"
timeout 120 "$venv/bin/pip" install --no-index --no-cache-dir --force-reinstall --no-input -q \
    "$sdist" >"$scratch/pip.log" 2>&1 || fail "pip install of the sdist failed: $(cat "$scratch/pip.log")"
VERSION=$version timeout 30 "$venv/bin/python" -c '
import importlib.metadata, os
assert importlib.metadata.version("mailbox-ipc") == os.environ["VERSION"]
' || fail "the package built from the sdist has the wrong version"
echo "python.venv: passed"
