"""A multi-client test written with mailbox_ipc's pytest plugin (docs/python.md): each
test gets a broker of its own; processes started with spawn() are killed at teardown,
and anything the namespace leaves behind fails the test.

    /usr/bin/python3 -m pytest -p mailbox_ipc.pytest_plugin examples/python/test_workers.py
"""
import mailbox_ipc


def adder(namespace, count):
    """A client process: answers `count` requests with the sum of their numbers."""
    with mailbox_ipc.Client(namespace=namespace, name="adder", group=True) as c:
        for _ in range(count):
            req = c.recv(timeout_ms=10000)
            c.reply(req, sum(req.body))
    return 0


def test_two_adders_share_the_work(mailbox_ns):
    me = mailbox_ns.client("tester")
    me.subscribe("$mbx.client.up")  # before the spawns: no arrival is missed
    workers = [mailbox_ns.spawn(adder, 5) for _ in range(2)]
    # Both members serve before the first request. (wait_for("adder") would return with
    # the first: it could answer five and leave before the second is up.)
    assert [me.recv(timeout_ms=10000).body["name"] for _ in workers] == ["adder", "adder"]
    answers = [me.request("adder", [i, i, 1]).body for i in range(10)]
    assert answers == [2 * i + 1 for i in range(10)]
    assert [w.wait() for w in workers] == [0, 0]


def test_subscribers_see_clients_come_and_go(mailbox_ns):
    watcher = mailbox_ns.client("watcher")
    watcher.subscribe("$mbx.client.*")
    with mailbox_ns.client("visitor"):
        pass
    events = [watcher.recv(timeout_ms=5000) for _ in range(2)]
    assert [(e.topic, e.body["name"]) for e in events] == [
        ("$mbx.client.up", "visitor"), ("$mbx.client.down", "visitor")]
    assert events[1].body["reason"] == "closed"


def test_the_command_line_and_a_python_client(mailbox_ns):
    rx = mailbox_ns.client("rx")
    r = mailbox_ns.mbx("send", "rx", '{"from": "shell"}')
    assert r.returncode == 0, r.stderr
    assert rx.recv(timeout_ms=1000).body == {"from": "shell"}
