"""mailbox_ipc.Client over a real broker: every method and every exception class."""
import ctypes
import json
import select
import threading
import time

import pytest

import mailbox_ipc as m
from mailbox_ipc import _native as N
from mailbox_ipc import errors


def test_send_and_recv_values_text_and_bytes(mailbox_ns):
    a, b = mailbox_ns.client("a"), mailbox_ns.client("b")
    a.send("b", {"n": 1, "s": "é"})
    a.send("b", "[1, 2]")  # JSON text, sent as is (and compacted)
    a.send("b", b'"bytes"')
    first = b.recv(timeout_ms=1000)
    assert (first.sender, first.to, first.seq, first.kind) == ("a", "b", 1, "plain")
    assert first.body == {"n": 1, "s": "é"}
    assert json.loads(first.raw) == first.body
    assert abs(first.ts - time.time() * 1e6) < 60e6
    assert first.topic is None and first.missed == 0
    assert b.recv(0).raw == "[1,2]"
    assert b.recv(0).body == "bytes"
    with pytest.raises(m.Timeout) as e:
        b.recv(timeout_ms=0)
    assert isinstance(e.value, TimeoutError) and e.value.code == 7
    assert a.name == "a" and a.max_message == 4096


def test_where_names_the_namespace_socket(mailbox_ns, monkeypatch, tmp_path):
    monkeypatch.setenv("MBX_RUNTIME_DIR", str(tmp_path))
    assert m.where("nowhere") == f"{tmp_path}/nowhere.sock"
    with pytest.raises(m.InvalidArgument):
        m.where("bad name")


def test_errors_are_classes_with_codes(mailbox_ns):
    a = mailbox_ns.client("a")
    with pytest.raises(m.NoRecipient):
        a.send("nobody", 1)
    with pytest.raises(m.InvalidJson) as e:
        a.send("a", "{nope")
    assert isinstance(e.value, ValueError)
    with pytest.raises(m.TooLarge):
        a.send("a", "1" * 5000)
    with pytest.raises(m.NameTaken):
        mailbox_ns.client("a")
    with pytest.raises(m.InvalidArgument):
        a.subscribe("a..b")
    with pytest.raises(m.InvalidArgument):
        a.subscribe("a", policy="sometimes")
    with pytest.raises(m.NoBroker):
        m.Client(namespace=mailbox_ns.name + "-none")
    # One class per code, all under MailboxError, codes as in mailbox.h.
    codes = sorted(errors.BY_CODE)
    assert codes == list(range(1, 20))
    for code, cls in errors.BY_CODE.items():
        err = cls("x")
        assert isinstance(err, m.MailboxError) and err.code == code
        assert str(err).startswith("x: ")


def test_batch_iteration_and_shutdown(mailbox_ns):
    a, b = mailbox_ns.client("a"), mailbox_ns.client("b")
    for i in range(5):
        a.send("b", i)
    got = b.recv_batch(3, timeout_ms=1000)
    assert [x.body for x in got] == [0, 1, 2]
    assert [x.body for x in b.recv_batch(10, timeout_ms=0)] == [3, 4]
    a.send("b", 5)
    seen = []
    mailbox_ns.broker.terminate()  # the iteration ends with the namespace
    for msg in b:
        seen.append(msg.body)
    assert seen == [5]


def worker_echo(ns, count):
    with m.Client(namespace=ns, name="srv") as s:
        for _ in range(count):
            req = s.recv(timeout_ms=10000)
            s.reply(req, {"re": req.body})
    return 0


def test_request_reply_and_the_asynchronous_form(mailbox_ns):
    srv = mailbox_ns.spawn(worker_echo, 3)
    me = mailbox_ns.client("me")
    me.wait_for("srv", 10000)
    r = me.request("srv", [1], timeout_ms=5000)
    assert (r.kind, r.body, r.sender) == ("reply", {"re": [1]}, "srv")
    mailbox_ns.client("noise").send("me", '"noise"')
    rid = me.request_send("srv", [2])
    assert me.recv_reply(rid, timeout_ms=5000).body == {"re": [2]}
    assert me.request("srv", [3]).correlation > rid
    assert me.recv(0).body == "noise"  # left in place, in order
    with pytest.raises(m.NoRecipient):
        me.request("nobody", 1)
    with pytest.raises(m.InvalidArgument):
        me.reply(r, 1)  # not a request
    assert srv.wait() == 0


def test_node_of_a_message_from_another_host(mailbox_ns):
    """A message delivered by mailbox-bridge says where it came from (Message.node), and
    who sent it there; one sent here has no node."""
    bridge, svc = mailbox_ns.client("bridge"), mailbox_ns.client("svc")
    bridge.send("svc", 1)
    assert svc.recv(1000).node is None
    opts = N.SendOptions()
    N.send_options_init(ctypes.byref(opts))
    opts.node, opts.from_ = b"hosta", b"alice"
    assert N.send_ex(bridge._c, b"svc", b"2", 1, ctypes.byref(opts)) == 0
    msg = svc.recv(1000)
    assert (msg.body, msg.sender, msg.node) == (2, "alice", "hosta")


def test_topics(mailbox_ns):
    pub, sub, slow = (mailbox_ns.client(n) for n in ("pub", "sub", "slow"))
    pub.publish("cfg.mode", {"m": "fast"}, retain=True)
    sub.subscribe("cfg.*")
    msg = sub.recv(0)
    assert (msg.topic, msg.body, msg.kind, msg.sender) == ("cfg.mode", {"m": "fast"},
                                                           "publication", "pub")
    res = pub.publish("cfg.other", 1)
    assert (res.delivered, res.dropped) == (1, 0)
    sub.unsubscribe("cfg.*")
    assert pub.publish("cfg.x", 2).delivered == 0
    with pytest.raises(m.Timeout):
        sub.recv(0)  # the queued cfg.other was for a pattern given up
    slow.subscribe("s.>", policy="block")
    for i in range(64):
        pub.publish("s.x", i)
    with pytest.raises(m.Full) as e:
        pub.publish("s.x", 64, timeout_ms=50)
    assert e.value.subscriber == "slow"
    info = m.inspect(mailbox_ns.name)
    assert info.subscriptions == 1 and info.retained == 1
    (slow_info,) = [c for c in info.clients if c.name == "slow"]
    assert slow_info.subscriptions == [{"pattern": "s.>", "policy": "block"}]
    assert slow_info.waiting == 64


def test_missed_publications_are_counted(mailbox_ns):
    pub, sub = mailbox_ns.client("pub"), mailbox_ns.client("sub")
    sub.subscribe("t")
    for i in range(70):
        pub.publish("t", i)
    got = [sub.recv(0) for _ in range(64)]
    assert [g.body for g in got] == list(range(64))
    pub.publish("t", 99)
    last = sub.recv(0)
    assert (last.body, last.missed) == (99, 6)
    (info,) = [c for c in m.inspect(mailbox_ns.name).clients if c.name == "sub"]
    assert info.dropped == 6


def test_fileno_interrupt_and_inspect(mailbox_ns):
    a, b = mailbox_ns.client("a"), mailbox_ns.client("b", linger_ms=1000)
    fd = b.fileno()
    assert select.select([fd], [], [], 0)[0] == []
    a.send("b", 1)
    assert select.select([fd], [], [], 2)[0] == [fd]
    b.recv(0)
    with pytest.raises(m.Timeout):
        b.recv(0)
    assert select.select([fd], [], [], 0)[0] == []
    threading.Timer(0.1, b.interrupt).start()
    with pytest.raises(m.Interrupted):
        b.recv(timeout_ms=5000)
    info = m.inspect(mailbox_ns.name)
    assert info.namespace == mailbox_ns.name and info.broker_pid == mailbox_ns.broker.pid
    assert sorted(c.name for c in info.clients) == ["a", "b"]
    assert m.default_namespace() and m.library_version().count(".") == 2


def test_wait_for_a_late_peer_and_groups(mailbox_ns):
    t = threading.Timer(0.2, lambda: mailbox_ns.client("late"))
    t.start()
    m.wait_for("late", 5000, namespace=mailbox_ns.name)
    with pytest.raises(m.Timeout):
        m.wait_for("never", 100, namespace=mailbox_ns.name)
    g1 = mailbox_ns.client("grp", group=True)
    g2 = mailbox_ns.client("grp", group=True)
    s = mailbox_ns.client()
    for i in range(4):
        s.send("grp", i)
    got = g1.recv_batch(10, 0) + g2.recv_batch(10, 0)
    assert sorted(x.body for x in got) == [0, 1, 2, 3]
    assert s.name.startswith("anon.")


def test_closed_client_refuses(mailbox_ns):
    c = mailbox_ns.client("c")
    c.close()
    c.close()
    with pytest.raises(m.InvalidArgument):
        c.send("x", 1)
    with m.Client(namespace=mailbox_ns.name, name="c") as again:  # the name is free
        assert again.name == "c"


def test_send_only_client_takes_no_slot(mailbox_ns):
    rx = mailbox_ns.client("rx")
    with m.Client(namespace=mailbox_ns.name, name="label", send_only=True) as a, \
            m.Client(namespace=mailbox_ns.name, name="label", send_only=True) as b:
        a.send("rx", 1)
        b.send("rx", 2)
        assert [rx.recv(timeout_ms=1000).sender for _ in range(2)] == ["label", "label"]
        with pytest.raises(m.InvalidArgument):
            a.recv(timeout_ms=0)
        assert [c.name for c in m.inspect(mailbox_ns.name).clients] == ["rx"]


def test_timeouts_beyond_a_c_int_mean_no_limit(mailbox_ns):
    # 2**32 once wrapped to 0 (an immediate Timeout); now it is "no limit", like None.
    a = mailbox_ns.client("a")
    a.send("a", 1, timeout_ms=2**40)
    assert a.recv(timeout_ms=2**32).body == 1
    with pytest.raises(ValueError):
        a.recv(timeout_ms=-5)
    with pytest.raises(m.Timeout):
        a.recv(timeout_ms=0)
