"""A forked child never touches its parent's client (docs/python.md, "fork"): however the
child ends (sys.exit, an exception, the end of the script, os._exit) or if it connects
anew, the parent keeps its name and its mailbox and loses nothing."""
import os
import subprocess
import sys

import pytest

SCRIPT = r'''
import os, sys
import mailbox_ipc as m
ns, how = os.environ["MBX_NAMESPACE"], sys.argv[1]
parent = m.Client(namespace=ns, name="parent")
pid = os.fork()
if pid == 0:
    try:
        parent.send("parent", 1)
        print("child: the parent's client worked", flush=True)  # it must not
    except m.InvalidArgument:
        pass
    if how == "connect":
        with m.Client(namespace=ns, name="kid") as kid:
            kid.send("parent", {"from": "kid"})
        sys.exit(0)
    if how == "sys.exit":
        sys.exit(0)
    if how == "exception":
        raise RuntimeError("the child fails")
    if how == "_exit":
        os._exit(0)
    # "end": the end of the script, with the parent's client still referenced
else:
    os.waitpid(pid, 0)
    if how == "connect":
        assert parent.recv(timeout_ms=5000).body == {"from": "kid"}
    with m.Client(namespace=ns, name="other") as other:
        other.send("parent", 7)
    assert parent.recv(timeout_ms=5000).body == 7
    parent.send("parent", 8)
    assert parent.recv(timeout_ms=1000).body == 8
    parent.close()
    print("parent: ok", flush=True)
'''


@pytest.mark.parametrize("how", ["sys.exit", "exception", "end", "_exit", "connect"])
def test_the_parent_keeps_working_whatever_the_child_does(mailbox_ns, how):
    env = dict(os.environ, MBX_NAMESPACE=mailbox_ns.name)
    r = subprocess.run([sys.executable, "-c", SCRIPT, how], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "parent: ok" in r.stdout, r.stderr
    assert "child: the parent's client worked" not in r.stdout
