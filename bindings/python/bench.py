#!/usr/bin/python3
"""Messages per second from one Python process to another, 1 -> 1, JSON bodies of about
120 bytes encoded and decoded on each side, in one run:

  mailbox_ipc    Client.send / Client.recv through a broker of its own;
  socketpair     an AF_UNIX SOCK_SEQPACKET socketpair between two processes, the floor
                 of what a Python program gets from the kernel;
  mbx CLI        what a Python test did before the binding: one `mbx send` process per
                 message, into one `mbx recv` process.

and the cost of single calls in one process: a send to itself and its recv, and a
request answered by a thread of the same process (one client each).

Medians of --rounds alternated rounds; prints figures and ratios, asserts nothing. Goal
(docs/python.md): mailbox_ipc at least the socketpair's figure, and 20x the CLI's.

Usage: PYTHONPATH=bindings/python MBX_LIBRARY=build/libmailbox/libmailbox.so.0 \\
       MAILBOXD=build/broker/mailboxd MBX_BIN=build/tools/mbx \\
       /usr/bin/python3 bindings/python/bench.py [--count N] [--rounds R]
"""
import argparse
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import time
import uuid

import mailbox_ipc
from mailbox_ipc.testing import MailboxNamespace, _program

PAD = "x" * 96


def body(i: int) -> dict:
    return {"i": i, "pad": PAD}  # 115-120 bytes of JSON


def mailbox_sender(ns: str, count: int) -> None:
    with mailbox_ipc.Client(namespace=ns, name="tx") as c:
        c.wait_for("rx", 10000)
        for i in range(count):
            c.send("rx", body(i), timeout_ms=10000)


def bench_mailbox(ns: str, count: int) -> float:
    ctx = multiprocessing.get_context("fork")
    with mailbox_ipc.Client(namespace=ns, name="rx") as rx:
        p = ctx.Process(target=mailbox_sender, args=(ns, count))
        p.start()
        first = rx.recv(timeout_ms=10000)
        t0 = time.perf_counter()
        assert first.body["i"] == 0
        for i in range(1, count):
            assert rx.recv(timeout_ms=10000).body["i"] == i
        t = time.perf_counter() - t0
        p.join()
    return (count - 1) / t


def socket_sender(sock: socket.socket, count: int) -> None:
    for i in range(count):
        sock.send(json.dumps(body(i), separators=(",", ":")).encode())


def bench_socketpair(count: int) -> float:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ctx = multiprocessing.get_context("fork")
    p = ctx.Process(target=socket_sender, args=(b, count))
    p.start()
    assert json.loads(a.recv(4096))["i"] == 0
    t0 = time.perf_counter()
    for i in range(1, count):
        assert json.loads(a.recv(4096))["i"] == i
    t = time.perf_counter() - t0
    p.join()
    a.close()
    b.close()
    return (count - 1) / t


def bench_cli(ns: str, count: int) -> float:
    mbx = _program("MBX_BIN", "mbx")
    rx = subprocess.Popen([mbx, "recv", "-N", ns, "--ready", "-c", str(count), "clirx"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rx.stderr.readline()  # "ready clirx"
    t0 = time.perf_counter()
    for i in range(count):
        subprocess.run([mbx, "send", "-N", ns, "clirx", json.dumps(body(i))], check=True)
    out, _ = rx.communicate(timeout=60)
    t = time.perf_counter() - t0
    assert [json.loads(line)["i"] for line in out.splitlines()] == list(range(count))
    return count / t


def bench_calls(ns: str, count: int) -> tuple:
    """Microseconds per send+recv pair on one client, and per request round trip."""
    with mailbox_ipc.Client(namespace=ns, name="self") as c:
        b = body(0)
        t0 = time.perf_counter()
        for _ in range(count):
            c.send("self", b)
            c.recv(timeout_ms=1000)
        pair_us = (time.perf_counter() - t0) / count * 1e6
        with mailbox_ipc.Client(namespace=ns, name="svc") as svc:
            stop = []

            def serve():
                while not stop:
                    try:
                        req = svc.recv(timeout_ms=100)
                    except mailbox_ipc.Timeout:
                        continue
                    svc.reply(req, req.raw)

            import threading
            t = threading.Thread(target=serve)
            t.start()
            n = max(1, count // 10)
            t0 = time.perf_counter()
            for _ in range(n):
                c.request("svc", b, timeout_ms=5000)
            request_us = (time.perf_counter() - t0) / n * 1e6
            stop.append(1)
            t.join()
    return pair_us, request_us


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--cli-count", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    ns = MailboxNamespace(f"pybench-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    try:
        mb, sp, cli, pair, req = [], [], [], [], []
        for _ in range(args.rounds):
            mb.append(bench_mailbox(ns.name, args.count))
            sp.append(bench_socketpair(args.count))
            cli.append(bench_cli(ns.name, args.cli_count))
            p_us, r_us = bench_calls(ns.name, args.count // 2)
            pair.append(p_us)
            req.append(r_us)
    finally:
        left = ns.close()
    m_mb, m_sp, m_cli = (statistics.median(x) for x in (mb, sp, cli))
    runs = lambda xs: ", ".join(f"{x:,.0f}" for x in xs)
    print(f"1 -> 1, JSON of about 120 bytes, medians of {args.rounds} rounds")
    print(f"  mailbox_ipc        {m_mb:12,.0f} msgs/s   (runs: {runs(mb)})")
    print(f"  socketpair         {m_sp:12,.0f} msgs/s   (runs: {runs(sp)})")
    print(f"  mbx send/recv CLI  {m_cli:12,.0f} msgs/s   (runs: {runs(cli)})")
    print(f"  mailbox_ipc / socketpair: {m_mb / m_sp:5.2f}  (goal: at least 1)")
    print(f"  mailbox_ipc / CLI:        {m_mb / m_cli:5.0f}x (goal: at least 20x)")
    print(f"  one process: send+recv {statistics.median(pair):.2f} us per pair, request to a "
          f"thread {statistics.median(req):.1f} us per round trip")
    if left:
        print("left behind: " + "; ".join(left))


if __name__ == "__main__":
    main()
