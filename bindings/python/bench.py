#!/usr/bin/python3
"""Messages per second from one Python process to another, 1 -> 1, JSON bodies of about
120 bytes encoded and decoded on each side, in one run:

  mailbox_ipc    Client.send / Client.recv through a broker of its own;
  socketpair     an AF_UNIX SOCK_SEQPACKET socketpair between two processes, the floor
                 of what a Python program gets from the kernel;
  mbx CLI        what a Python test did before the binding: one `mbx send` process per
                 message, into one `mbx recv` process.

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=100000)
    ap.add_argument("--cli-count", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    ns = MailboxNamespace(f"pybench-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    try:
        mb, sp, cli = [], [], []
        for _ in range(args.rounds):
            mb.append(bench_mailbox(ns.name, args.count))
            sp.append(bench_socketpair(args.count))
            cli.append(bench_cli(ns.name, args.cli_count))
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
    if left:
        print("left behind: " + "; ".join(left))


if __name__ == "__main__":
    main()
