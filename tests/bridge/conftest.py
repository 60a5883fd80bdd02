"""pytest fixtures for the bridge tests: real NATS servers on loopback (natscluster.py),
stopped after each test whatever its outcome, everything they write under its tmp_path."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from natscluster import NatsCluster  # noqa: E402


@pytest.fixture
def nats_server(tmp_path):
    """One plain server with JetStream; .url(0) / .urls() to connect."""
    with NatsCluster(n=1, workdir=tmp_path / "nats") as cluster:
        yield cluster


@pytest.fixture
def nats_cluster(tmp_path):
    """Three clustered servers with JetStream and a meta leader; kill(i), restart(i)."""
    with NatsCluster(n=3, workdir=tmp_path / "nats") as cluster:
        yield cluster


# -- hosts with brokers and bridges (bridgehosts.py) --------------------------------------

from bridgehosts import Hosts, bridge_bin  # noqa: E402


@pytest.fixture
def make_hosts(tmp_path):
    """A factory: make_hosts(nats_urls, nodes=("A", "B"), broker_args={node: [...]},
    bridge=True, bridge_args={node: [...]}) -> Hosts, each host with its own runtime
    directory, broker and (bridge=True) mailbox-bridge. nats_urls is a string or a
    function of the node. Everything is stopped after the test, which then fails if a
    process, a runtime file or a /dev/shm entry was left behind."""
    made = []

    def make(nats_urls, nodes=("A", "B"), broker_args=None, bridge=True, bridge_args=None):
        if bridge and bridge_bin() is None:
            pytest.skip("mailbox-bridge not built (set $MBX_BRIDGE)")
        hosts = Hosts(tmp_path / ("hosts-%d" % len(made)), nats_urls, nodes=nodes,
                      broker_args=broker_args, bridge=bridge, bridge_args=bridge_args)
        made.append(hosts)
        return hosts

    yield make
    problems = []
    for hosts in made:
        problems += hosts.close()
    assert not problems, "left behind:\n" + "\n".join(problems)


@pytest.fixture
def two_hosts(nats_server, make_hosts):
    """Hosts A and B, one NATS server, a bridge on each: two_hosts["A"], two_hosts["B"]."""
    return make_hosts(nats_server.url(0))


@pytest.fixture
def three_nats_two_hosts(nats_cluster, make_hosts):
    """(cluster, hosts): a 3-server NATS cluster; A's bridge is given the servers from 0,
    B's from 1 (both know all three, for reconnecting)."""
    order = {"A": (0, 1, 2), "B": (1, 2, 0)}

    def urls(node):
        return ",".join(nats_cluster.url(i) for i in order[node])

    return nats_cluster, make_hosts(urls)
