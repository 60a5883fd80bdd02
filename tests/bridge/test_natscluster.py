"""The NatsCluster fixture does what the bridge tests will rely on: a 3-server JetStream
cluster that routes messages between its servers and can create replicated streams, a
server killed and restarted on the same ports and store, a single plain server, and no
nats-server left behind: after stop(), nor when the process that started it is killed.

Run: /usr/bin/python3 -m pytest tests/bridge (ctest: bridge.natscluster)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from natscluster import NatsCluster, free_port  # noqa: E402
from natsproto import NatsConn  # noqa: E402

PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def alive(pid):
    """Whether pid is a live process (a zombie counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def servers_of(workdir):
    """Pids of live nats-server processes running in a folder under workdir (the
    fixture starts each server in its own folder there)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                argv0 = f.read().split(b"\0")[0]
            cwd = os.readlink("/proc/%s/cwd" % entry)
        except OSError:
            continue
        if argv0.endswith(b"nats-server") and cwd.startswith(str(workdir) + os.sep) and alive(int(entry)):
            found.append(int(entry))
    return found


def eventually_delivered(publisher, subscriber, subject, sid, timeout=10.0):
    """Publishes on one connection until the other receives it. Interest in a subject
    reaches the other servers of a cluster a moment after the SUB, so the first
    publications may find nobody there; the subscriber's next message is the payload."""
    deadline = time.monotonic() + timeout
    n = 0
    while time.monotonic() < deadline:
        n += 1
        payload = ("hello %d" % n).encode()
        publisher.pub(subject, payload)
        publisher.flush()
        try:
            msg = subscriber.next_msg(timeout=0.2, sid=sid)
        except TimeoutError:
            continue
        assert msg.subject == subject
        assert msg.data.startswith(b"hello ")
        return msg
    raise AssertionError("%s: nothing delivered in %.0f s" % (subject, timeout))


def test_free_port_never_repeats():
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)


def test_three_servers_route_and_have_jetstream(tmp_path):
    with NatsCluster(n=3, workdir=tmp_path) as cluster:
        assert cluster.urls() == ",".join(cluster.url(i) for i in range(3))
        for i in range(3):
            assert cluster.monitor(i, "/jsz")["meta_cluster"]["leader"]
            assert cluster.monitor(i, "/routez")["num_routes"] == 2
        with NatsConn(cluster.url(0)) as sub, NatsConn(cluster.url(2)) as pub:
            sid = sub.sub("bridge.test.>")
            sub.flush()
            eventually_delivered(pub, sub, "bridge.test.a", sid)
            # A stream replicated on all three: needs the meta leader the fixture waited for.
            config = {"name": "FIXTURE", "subjects": ["fixture.>"], "num_replicas": 3,
                      "storage": "file"}
            reply = pub.request("$JS.API.STREAM.CREATE.FIXTURE", json.dumps(config), timeout=10)
            answer = json.loads(reply.data)
            assert "error" not in answer, answer
            assert answer["config"]["num_replicas"] == 3
        # Each server wrote its store and log under the workdir, nowhere else.
        for i in range(3):
            assert os.path.isdir(tmp_path / ("server-%d" % i) / "store" / "jetstream")
            assert (tmp_path / ("server-%d" % i) / "server.log").stat().st_size > 0


def test_kill_and_restart(tmp_path):
    with NatsCluster(n=3, workdir=tmp_path) as cluster:
        pid = cluster.pid(1)
        cluster.kill(1)
        assert not alive(pid) and cluster.pid(1) is None
        with pytest.raises(OSError):
            NatsConn(cluster.url(1), timeout=1)
        # The other two still route to each other (and keep a JetStream quorum).
        with NatsConn(cluster.url(0)) as sub, NatsConn(cluster.url(2)) as pub:
            sid = sub.sub("bridge.kill")
            sub.flush()
            eventually_delivered(pub, sub, "bridge.kill", sid)

        cluster.restart(1)
        assert cluster.pid(1) not in (None, pid)
        assert cluster.monitor(1, "/varz")["port"] == int(cluster.url(1).rsplit(":", 1)[1])
        with NatsConn(cluster.url(0)) as sub, NatsConn(cluster.url(1)) as pub:
            sid = sub.sub("bridge.back")
            sub.flush()
            eventually_delivered(pub, sub, "bridge.back", sid)
        log = (tmp_path / "server-1" / "server.log").read_text()
        assert log.count("--- natscluster: starting n1") == 2


def test_single_server_without_cluster(tmp_path):
    with NatsCluster(n=1, workdir=tmp_path) as cluster:
        assert cluster.urls() == cluster.url(0)
        assert "cluster" not in " ".join(cluster._command(cluster.servers[0]))
        with NatsConn(cluster.url(0)) as nc:
            sid = nc.sub("one.>")
            nc.flush()
            nc.pub("one.x", b"payload", reply="answer.here")
            msg = nc.next_msg(timeout=5)
            assert msg == (("one.x", sid, "answer.here", b"payload"))
            reply = nc.request("$JS.API.INFO", timeout=5)
            assert "error" not in json.loads(reply.data)


def test_fixtures(nats_server, nats_cluster):
    """conftest.py's fixtures, as later bridge tests will use them."""
    assert nats_server.n == 1 and nats_cluster.n == 3
    for url in [nats_server.url(0)] + nats_cluster.urls().split(","):
        with NatsConn(url) as nc:
            assert nc.info["server_id"]


def test_stop_leaves_nothing(tmp_path):
    cluster = NatsCluster(n=3, jetstream=False, workdir=tmp_path)
    pids = [cluster.pid(i) for i in range(3)]
    assert sorted(servers_of(tmp_path)) == sorted(pids)
    cluster.kill(2)  # one already dead: stop() copes
    cluster.stop()
    cluster.stop()  # idempotent
    assert not any(alive(p) for p in pids)
    assert servers_of(tmp_path) == []


CHILD = r"""
import sys
sys.path.insert(0, sys.argv[1])
from natscluster import NatsCluster
cluster = NatsCluster(n=1, jetstream=False, workdir=sys.argv[2])
print(cluster.pid(0), flush=True)
sys.stdin.read()  # until killed
"""


def test_servers_die_with_a_killed_parent(tmp_path):
    """A test process SIGKILLed (no atexit, no finally) takes its servers with it."""
    here = os.path.dirname(os.path.abspath(__file__))
    child = subprocess.Popen([PYTHON, "-c", CHILD, here, str(tmp_path)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        server_pid = int(child.stdout.readline())
        assert alive(server_pid)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    deadline = time.monotonic() + 5
    while alive(server_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    still = alive(server_pid)
    if still:  # do not leave it behind, whatever the verdict
        os.kill(server_pid, signal.SIGKILL)
    assert not still, "nats-server outlived its killed parent"
