"""Threads: any number of threads on any number of clients (docs/python.md). Eight
threads send on one client to two receivers, 50,000 messages to each, interleaving
invalid texts (always refused); one receiver is read by one thread, the other by two at
once. Every message arrives exactly once, at its addressee."""
import threading

import mailbox_ipc as m

SENDERS = 8
PER_SENDER = 6250  # per receiver: 8 x 6,250 = 50,000 to each


def test_threads_share_clients_without_crossing_messages(mailbox_ns):
    tx = mailbox_ns.client("tx")
    rx = {"rx1": mailbox_ns.client("rx1"), "rx2": mailbox_ns.client("rx2")}
    got = {"rx1": [], "rx2": []}
    wrong = []
    expected = SENDERS * PER_SENDER
    lock = threading.Lock()

    def receive(name):
        c = rx[name]
        while True:
            with lock:
                if len(got[name]) >= expected:
                    return
            try:
                msg = c.recv(timeout_ms=200)
            except m.Timeout:
                continue
            except m.InvalidArgument:
                continue  # the other thread receives on this client right now
            with lock:
                if msg.to != name:
                    wrong.append((name, msg.to, msg.raw))
                got[name].append((msg.body["t"], msg.body["n"]))

    refused = []

    def send(t):
        for n in range(PER_SENDER):
            for name in ("rx1", "rx2"):
                tx.send(name, {"t": t, "n": n}, timeout_ms=20000)
            try:
                tx.send("rx1", "{not json", timeout_ms=0)
            except m.InvalidJson:
                continue
            refused.append(n)  # an invalid text was accepted

    threads = [threading.Thread(target=receive, args=("rx1",)),
               threading.Thread(target=receive, args=("rx2",)),
               threading.Thread(target=receive, args=("rx2",))]
    threads += [threading.Thread(target=send, args=(t,)) for t in range(SENDERS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=240)
    assert not any(th.is_alive() for th in threads)
    assert wrong == [] and refused == []
    want = sorted((t, n) for t in range(SENDERS) for n in range(PER_SENDER))
    assert sorted(got["rx1"]) == want
    assert sorted(got["rx2"]) == want
