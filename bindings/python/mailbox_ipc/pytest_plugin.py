"""pytest plugin for multi-client tests: load it with `-p mailbox_ipc.pytest_plugin` (or
`pytest_plugins = ["mailbox_ipc.pytest_plugin"]` in a conftest.py).

The `mailbox_ns` fixture starts a real mailboxd on a namespace of its own (unique per
test, per pytest-xdist worker and per process), waits until it is ready and yields a
MailboxNamespace: it makes clients, runs `mbx`, and spawns client processes (Python
functions or commands) that are killed at teardown, whether the test passed or not. At
teardown it stops the broker and fails the test if anything of the namespace is left:
a process (a broker or a client started outside spawn()), the namespace's files in the
runtime directory, a /dev/shm entry.

Broker options: `@pytest.mark.mailbox(args=["--depth", "16"])`. Programs: $MAILBOXD and
$MBX_BIN, else `mailboxd` and `mbx` on PATH, else next to the installed library.
"""
from __future__ import annotations

import os
import uuid
from typing import Iterator

import pytest

from .testing import MailboxNamespace, SetupError

_counter = 0


def _namespace_name() -> str:
    global _counter
    _counter += 1
    worker = os.environ.get("PYTEST_XDIST_WORKER", "w")
    return f"pytest-{worker}-{os.getpid()}-{_counter}-{uuid.uuid4().hex[:6]}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers",
                            "mailbox(args): extra mailboxd arguments for the mailbox_ns fixture")


@pytest.fixture
def mailbox_ns(request: pytest.FixtureRequest) -> Iterator[MailboxNamespace]:
    """A running namespace of this test's own (see the module's docstring)."""
    marker = request.node.get_closest_marker("mailbox")
    args = marker.kwargs.get("args", []) if marker else []
    try:
        ns = MailboxNamespace(_namespace_name(), args)
    except SetupError as e:
        raise pytest.UsageError(str(e)) from None
    try:
        yield ns
    finally:
        left = ns.close()
    if left:
        pytest.fail(f"mailbox namespace {ns.name} left behind: " + "; ".join(left),
                    pytrace=False)
