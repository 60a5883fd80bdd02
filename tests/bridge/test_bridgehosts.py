"""The Host fixture itself (bridgehosts.py), without a bridge: two hosts of one namespace
name are separate namespaces in separate runtime directories; mbx runs with the host's
environment; background clients are stopped at close(), and close() reports nothing left
behind. Run: /usr/bin/python3 -m pytest tests/bridge/test_bridgehosts.py (ctest
bridge.hosts)."""

import os
import signal
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bridgehosts import Host, Hosts, alive, unique_namespace  # noqa: E402


def test_two_hosts_are_separate_namespaces(tmp_path):
    hosts = Hosts(tmp_path, None, bridge=False, broker_args={"B": ["--depth", "4"]})
    try:
        a, b = hosts["A"], hosts["B"]
        assert a.namespace == b.namespace and a.runtime_dir != b.runtime_dir
        for h in (a, b):
            assert stat.S_IMODE(os.stat(h.runtime_dir).st_mode) == 0o700
        assert a.list_json()["broker"]["pid"] == a.broker.pid
        assert b.list_json()["geometry"]["depth"] == 4 and a.list_json()["geometry"]["depth"] == 64

        rx = a.spawn("recv", "-c", "1", "--ready", "--envelope", "only-on-a")
        rx.wait_ready()
        assert [c["name"] for c in a.clients()] == ["only-on-a"]
        assert b.clients() == []
        r = b.mbx("send", "only-on-a", '{"x":1}')
        assert r.returncode == 5, r  # not there on B
        r = a.mbx("send", "only-on-a", '{"x":1}')
        assert r.returncode == 0, r
        assert rx.wait() == 0
        [env] = rx.json_lines()
        assert env["body"] == {"x": 1} and "node" not in env

        # A background client that would run on, and one stopped, are ended by close().
        hang = b.spawn("recv", "--ready", "hang")
        hang.wait_ready()
        stopped = b.spawn("recv", "--ready", "stopped")
        stopped.wait_ready()
        stopped.signal(signal.SIGSTOP)
        pids = [hang.pid, stopped.pid, a.broker.pid, b.broker.pid]
    finally:
        problems = hosts.close()
    assert problems == []
    assert not any(alive(p) for p in pids)
    assert not os.path.exists(a.runtime_dir) and not os.path.exists(b.runtime_dir)
    assert hosts.close() == []  # idempotent


def test_close_reports_what_outlived_it(tmp_path):
    """A process of the host's runtime directory that the fixture did not start (a
    double fork, say) is reported, and killed."""
    host = Host("A", unique_namespace(), tmp_path)
    try:
        host.start(bridge=False)
        rogue = host.spawn("rogue", argv=["setsid", "-f", "sleep", "60"])
        assert rogue.wait() == 0
    finally:
        problems = host.close()
    assert len(problems) == 1 and "sleep 60" in problems[0], problems
    assert host.processes_here() == []


def test_timeouts_bound_background_processes(tmp_path):
    host = Host("A", unique_namespace(), tmp_path)
    try:
        host.start(bridge=False)
        slow = host.spawn("recv", "--ready", "slow", timeout=1)
        slow.wait_ready()
        assert slow.wait(timeout=10) == -signal.SIGKILL and slow.timed_out
    finally:
        assert host.close() == []
