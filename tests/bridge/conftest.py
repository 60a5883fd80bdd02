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
