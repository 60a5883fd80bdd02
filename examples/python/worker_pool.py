#!/usr/bin/python3
"""A pool of worker processes serving one name as a group, and a client sending them
jobs with request/reply; readiness and progress go out on topics, and one publication
stops them all. Runs against the namespace in
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
        c.subscribe("pool.stop")
        c.publish("pool.ready", {"worker": index})  # serving, and will hear the stop
        for job in c:  # until the namespace shuts down, or pool.stop
            if job.kind != "request":
                break
            c.reply(job, {"n": job.body["n"], "square": job.body["n"] ** 2, "by": index})
            c.publish("pool.progress", {"worker": index, "n": job.body["n"]})


def main() -> int:
    ns = os.environ.get("MBX_NAMESPACE") or mailbox_ipc.default_namespace()
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=worker, args=(ns, i), daemon=True) for i in range(WORKERS)]
    with mailbox_ipc.Client(namespace=ns) as me, mailbox_ipc.Client(namespace=ns) as watcher:
        watcher.subscribe("pool.ready")  # before the workers start: none is missed
        watcher.subscribe("pool.progress")
        for p in procs:
            p.start()
        # Every worker serves before the first job. (wait_for("squarer") would return
        # with the first member; the jobs would still be answered, by fewer workers.)
        for _ in procs:
            watcher.recv(timeout_ms=10000)
        for n in range(JOBS):
            answer = me.request("squarer", {"n": n}, timeout_ms=10000).body
            print(f"{n}^2 = {answer['square']} (worker {answer['by']})")
            if answer["square"] != n * n:
                return 1
        progress = watcher.recv_batch(JOBS, timeout_ms=5000)
        while len(progress) < JOBS:
            progress += watcher.recv_batch(JOBS, timeout_ms=5000)
        # One publication reaches every worker. (A "stop" sent to the group's name goes
        # to one member each time, and could go twice to a member that is leaving.)
        me.publish("pool.stop", {})
    for p in procs:
        p.join(10)
    return 0 if all(p.exitcode == 0 for p in procs) else 1


if __name__ == "__main__":
    sys.exit(main())
