#!/usr/bin/python3
"""A pool of worker processes serving one name as a group, and a client sending them
jobs with request/reply; progress goes out on a topic. Runs against the namespace in
$MBX_NAMESPACE (or "default"); a broker must be serving it:

    mailboxd -d -N demo && MBX_NAMESPACE=demo python3 examples/python/worker_pool.py

Prints one line per job and exits 0 when every job got its answer."""
import multiprocessing
import os
import sys

import mailbox_ipc

WORKERS = 3
JOBS = 12


def worker(ns: str, index: int) -> None:
    with mailbox_ipc.Client(namespace=ns, name="squarer", group=True) as c:
        for job in c:  # until the namespace shuts down, or "stop"
            if job.kind != "request":
                break
            c.reply(job, {"n": job.body["n"], "square": job.body["n"] ** 2, "by": index})
            c.publish("pool.progress", {"worker": index, "n": job.body["n"]})


def main() -> int:
    ns = os.environ.get("MBX_NAMESPACE") or mailbox_ipc.default_namespace()
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=worker, args=(ns, i), daemon=True) for i in range(WORKERS)]
    for p in procs:
        p.start()
    with mailbox_ipc.Client(namespace=ns) as me, mailbox_ipc.Client(namespace=ns) as watcher:
        watcher.subscribe("pool.*")
        me.wait_for("squarer", 10000)
        for n in range(JOBS):
            answer = me.request("squarer", {"n": n}, timeout_ms=10000).body
            print(f"{n}^2 = {answer['square']} (worker {answer['by']})")
            if answer["square"] != n * n:
                return 1
        progress = watcher.recv_batch(JOBS, timeout_ms=5000)
        while len(progress) < JOBS:
            progress += watcher.recv_batch(JOBS, timeout_ms=5000)
        for _ in procs:
            me.send("squarer", '"stop"')
    for p in procs:
        p.join(10)
    return 0 if all(p.exitcode == 0 for p in procs) else 1


if __name__ == "__main__":
    sys.exit(main())
