"""Ten client processes in a ring exchange 10,000 messages: each sends 1,000 to the next
and receives 1,000 from the one before, in order."""
import pytest

import mailbox_ipc as m

PROCESSES = 10
EACH = 1000


def ring_member(ns, i):
    with m.Client(namespace=ns, name=f"p{i}") as c:
        nxt = f"p{(i + 1) % PROCESSES}"
        c.wait_for(nxt, 10000)
        expect = 0
        for k in range(EACH):
            c.send(nxt, {"from": i, "k": k}, timeout_ms=10000)
            while True:  # take what has come meanwhile, without blocking
                try:
                    msg = c.recv(timeout_ms=0)
                except m.Timeout:
                    break
                if msg.body != {"from": (i - 1) % PROCESSES, "k": expect}:
                    return 3
                expect += 1
        while expect < EACH:
            msg = c.recv(timeout_ms=10000)
            if msg.body != {"from": (i - 1) % PROCESSES, "k": expect}:
                return 4
            expect += 1
        c.send("done", i, timeout_ms=10000, wait_ms=10000)
    return 0


# Deep mailboxes: every member may send all it has before the next one reads.
@pytest.mark.mailbox(args=["--depth", "1024", "--max-message", "256"])
def test_ten_processes_ten_thousand_messages(mailbox_ns):
    done = mailbox_ns.client("done")
    procs = [mailbox_ns.spawn(ring_member, i, timeout_s=120) for i in range(PROCESSES)]
    finished = sorted(done.recv(timeout_ms=60000).body for _ in range(PROCESSES))
    assert finished == list(range(PROCESSES))
    assert [p.wait(30) for p in procs] == [0] * PROCESSES
