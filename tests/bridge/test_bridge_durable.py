"""mailbox-bridge --durable (issue 23; docs/bridge.md "Guarantees"; bridge/durable.c):
three nats-server processes clustered with JetStream (natscluster.py), hosts A and B
(bridgehosts.py: own runtime directory, broker and bridge each), both bridges started with
--durable, the same --cluster, and all three servers in --nats.

The contract tested: a message to a name on another host is delivered exactly once, in
order per sender, through kill -9 of either bridge, of the receiving broker (which the
next mailboxd adopts) and of one of the three NATS servers; messages to a host whose
bridge is down are kept and delivered when it returns; requests still cross (through core
NATS).

Every child has a time limit (bridgehosts.Background), every wait a deadline.

Run: MBX_BIN=... MAILBOXD=... MBX_BRIDGE=... /usr/bin/python3 -m pytest -s tests/bridge/test_bridge_durable.py
(ctest: bridge.durable). With -s, the big test prints its wall time and throughput.
"""

import json
import os
import signal
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bridgehosts import mbx_bin  # noqa: E402

BIG_COUNT = 100000
BIG_SENDERS = 4
BIG_BOUND_S = 300.0  # the whole run of the big test, senders to the last message
SEND_TIMEOUT_MS = 120000  # a full mailbox waits (a bridge down), it does not fail
REQUEST_TIMEOUT_MS = 10000


@pytest.fixture
def durable_hosts(nats_cluster, make_hosts):
    """(cluster, hosts): three clustered servers with JetStream; A and B, each a broker and
    a `mailbox-bridge --durable` given all three servers (A from server 0, B from 1)."""
    order = {"A": (0, 1, 2), "B": (1, 2, 0)}

    def urls(node):
        return ",".join(nats_cluster.url(i) for i in order[node])

    hosts = make_hosts(urls, bridge_args={"A": ["--durable"], "B": ["--durable"]})
    return nats_cluster, hosts


# -- helpers ---------------------------------------------------------------------------------


def receiver(host, name, timeout_s, linger_s=600):
    """A long-running `mbx recv --envelope --linger --ready NAME` on host (no count: it is
    ended by the test, so that a duplicate after the last expected message is seen too)."""
    rx = host.spawn("recv", "--envelope", "--ready", "--linger", str(linger_s),
                    "-t", str(int(timeout_s * 1000)), name, timeout=timeout_s + 30)
    rx.wait_ready()
    return rx


def line_sender(host, name, sender, lines_path, timeout_s):
    """`mbx send --from s<sender> -t SEND_TIMEOUT_MS NAME < lines_path` in the background:
    one message per line, in order; the first that cannot be sent ends it non-zero."""
    script = 'exec "$0" send -N "$1" --from "$2" -t "$3" "$4" < "$5"'
    argv = ["sh", "-c", script, mbx_bin(), host.namespace, "s%d" % sender,
            str(SEND_TIMEOUT_MS), name, lines_path]
    return host.spawn("send", argv=argv, timeout=timeout_s)


def write_lines(path, sender, count):
    with open(path, "w") as f:
        for n in range(count):
            f.write('{"s":%d,"n":%d}\n' % (sender, n))


class Received:
    """What a receiver wrote so far, read incrementally from its output file: per sender
    the numbers in arrival order, and every line that is not as expected."""

    def __init__(self, rx):
        self.rx = rx
        self.offset = 0
        self.partial = b""
        self.total = 0
        self.by_sender = {}
        self.seen = set()
        self.duplicates = []
        self.bad = []

    def poll(self):
        with open(self.rx.out_path, "rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        self.offset += len(chunk)
        data = self.partial + chunk
        lines = data.split(b"\n")
        self.partial = lines.pop()
        for raw in lines:
            self.total += 1
            try:
                env = json.loads(raw)
                body = env["body"]
                key = (body["s"], body["n"])
                ok = env.get("node") == "A" and env.get("from") == "s%d" % body["s"]
            except (ValueError, KeyError, TypeError):
                self.bad.append(raw[:200])
                continue
            if not ok:
                self.bad.append(raw[:200])
            if key in self.seen:
                self.duplicates.append(key)
            self.seen.add(key)
            self.by_sender.setdefault(key[0], []).append(key[1])
        return len(self.seen)

    def problems(self, senders, count):
        """A list of what is wrong (empty: exactly once, in order per sender)."""
        out = []
        if self.bad:
            out.append("%d unexpected lines, e.g. %s" % (len(self.bad), self.bad[:3]))
        if self.duplicates:
            out.append("%d duplicates, e.g. %s" % (len(self.duplicates), self.duplicates[:10]))
        for s in range(senders):
            got = self.by_sender.get(s, [])
            distinct = set(got)
            missing = [n for n in range(count) if n not in distinct]
            if missing:
                out.append("sender %d: %d of %d missing, e.g. %s (ranges: %s)"
                           % (s, len(missing), count, missing[:10], ranges(missing)[:10]))
            for i in range(1, len(got)):
                if got[i] <= got[i - 1]:
                    out.append("sender %d: out of order: %d after %d (arrival %d); next: %s"
                               % (s, got[i], got[i - 1], i, got[i:i + 5]))
                    break
        return out


def ranges(numbers):
    """[(first, last), ...] of consecutive runs."""
    out = []
    for n in numbers:
        if out and out[-1][1] == n - 1:
            out[-1] = (out[-1][0], n)
        else:
            out.append((n, n))
    return out


def stream_leader(cluster):
    """The index of the server leading the bridges' stream (MBX_*), or None."""
    for i in range(cluster.n):
        if cluster.pid(i) is None:
            continue
        try:
            jsz = cluster.monitor(i, "/jsz?accounts=true&streams=true")
        except Exception:  # noqa: BLE001 - monitoring is a hint here
            continue
        for account in jsz.get("account_details") or []:
            for stream in account.get("stream_detail") or []:
                if stream.get("name", "").startswith("MBX_"):
                    leader = (stream.get("cluster") or {}).get("leader")
                    for k, server in enumerate(cluster.servers):
                        if server.name == leader:
                            return k
    return None


def counters(host):
    state = host.bridge_state(timeout_ms=2000) if host.bridge_running() else None
    return state


def send_lines(host, name, bodies, timeout_ms=30000):
    """`mbx send NAME` with one line per body on standard input; the CompletedProcess."""
    return host.mbx("send", "-t", str(timeout_ms), "--from", "s0", name,
                    input="".join(b + "\n" for b in bodies), timeout=timeout_ms / 1000.0 + 30)


# -- 1. exactly once, in order, through kill -9 of everything ---------------------------------


def test_durable_exactly_once_through_crashes(durable_hosts, tmp_path):
    cluster, hosts = durable_hosts
    a, b = hosts["A"], hosts["B"]
    per_sender = BIG_COUNT // BIG_SENDERS
    rx = receiver(b, "sink", timeout_s=BIG_BOUND_S + 120)
    a.wait_name("sink")
    got = Received(rx)

    paths = []
    for s in range(BIG_SENDERS):
        path = str(tmp_path / ("lines-%d.txt" % s))
        write_lines(path, s, per_sender)
        paths.append(path)

    # The crashes, each once, spaced through the run by what has arrived at B.
    def kill_a_bridge():
        a.kill_bridge()
        a.start_bridge()

    def kill_b_bridge():
        b.kill_bridge()
        b.start_bridge()

    def kill_b_broker():
        rc = b.stop_broker(signal.SIGKILL)  # the broker alone: its keeper holds the segment
        assert rc == -signal.SIGKILL, rc
        b.start_broker()  # adopts the namespace: the receiver and the bridge live on
        assert rx.running(), "the receiver died with B's broker: " + rx.describe()
        assert b.bridge_running(), "B's bridge died with B's broker:\n" + b.log_tail()

    killed_nats = []

    def kill_nats():
        i = stream_leader(cluster)
        i = 1 if i is None else i
        killed_nats.append(i)
        cluster.kill(i)
        time.sleep(2.0)
        cluster.restart(i)

    plan = [(0.15, "kill -9 A's bridge, start it again", kill_a_bridge),
            (0.35, "kill -9 B's bridge, start it again", kill_b_bridge),
            (0.55, "kill -9 B's broker, start it again (adoption)", kill_b_broker),
            (0.75, "kill -9 a NATS server (the stream's leader), restart it", kill_nats)]
    events = []

    start = time.monotonic()
    senders = [line_sender(a, "sink", s, paths[s], timeout_s=BIG_BOUND_S + 60)
               for s in range(BIG_SENDERS)]
    deadline = start + BIG_BOUND_S
    last_progress, last_count = start, 0

    def diagnose(why):
        took = time.monotonic() - start
        return ("%s\nafter %.1f s: %d distinct of %d arrived (%d lines; %.0f msg/s); crashes done: %s\n"
                "senders:\n%s\nreceiver: %s\nproblems so far: %s\nnats servers: %s\n%s"
                % (why, took, len(got.seen), BIG_COUNT, got.total, len(got.seen) / took, events,
                   "\n".join(s.describe() for s in senders), rx.describe(),
                   got.problems(BIG_SENDERS, per_sender)[:8],
                   ["n%d %s" % (i, "up" if cluster.pid(i) else "down") for i in range(cluster.n)],
                   a.all_logs()))

    while True:
        distinct = got.poll()
        now = time.monotonic()
        for s in senders:
            rc = s.proc.poll()
            if rc not in (None, 0):
                raise AssertionError(diagnose("a sender failed (exit %s): %s"
                                              % (rc, s.stderr()[-2000:])))
        if not rx.running():
            raise AssertionError(diagnose("the receiver ended"))
        if plan and distinct >= plan[0][0] * BIG_COUNT:
            at, what, action = plan.pop(0)
            t0 = time.monotonic()
            action()
            events.append("%s at %d arrived (%.1f s into the run, took %.1f s)"
                          % (what, distinct, t0 - start, time.monotonic() - t0))
            continue
        if distinct >= BIG_COUNT and all(s.proc.poll() == 0 for s in senders):
            break
        if distinct > last_count:
            last_progress, last_count = now, distinct
        if now > deadline:
            raise AssertionError(diagnose("not done within %.0f s" % BIG_BOUND_S))
        if now - last_progress > 90:
            raise AssertionError(diagnose("no progress for 90 s"))
        time.sleep(0.2)

    elapsed = time.monotonic() - start
    # Duplicates may trail the last new message: give them a moment to show, then end
    # the receiver cleanly (it finishes the line it writes).
    time.sleep(3.0)
    rx.terminate()
    got.poll()
    report = ("durable: %d messages from %d senders A->B in %.1f s (%.0f msg/s) through: %s; "
              "NATS server killed: n%s; lines received %d; A state %s; B state %s"
              % (BIG_COUNT, BIG_SENDERS, elapsed, BIG_COUNT / elapsed, "; ".join(events),
                 killed_nats, got.total, counters(a), counters(b)))
    print("\n" + report)
    with open(str(tmp_path / "durable-report.txt"), "w") as f:
        f.write(report + "\n")
    problems = got.problems(BIG_SENDERS, per_sender)
    assert not problems, diagnose("not exactly once in order:\n" + "\n".join(problems))
    assert got.total == BIG_COUNT, diagnose("%d lines for %d messages" % (got.total, BIG_COUNT))
    assert not plan, "crashes not done: %s" % [p[1] for p in plan]


# -- 2. a host whose bridge is down gets its messages when it returns --------------------------


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "kill9"])
def test_delivered_when_the_bridge_returns(durable_hosts, how):
    cluster, hosts = durable_hosts
    a, b = hosts["A"], hosts["B"]
    rx = receiver(b, "later", timeout_s=120)
    a.wait_name("later")
    # The path works before the bridge goes away (the consumer exists).
    r = send_lines(a, "later", ['{"s":0,"n":-1}'])
    assert r.returncode == 0, "exit %s: %s\n%s" % (r.returncode, r.stderr, a.all_logs())
    got = Received(rx)
    deadline = time.monotonic() + 30
    while got.poll() < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert got.total == 1, "the first message did not cross: " + rx.describe() + a.all_logs()

    rc = b.stop_bridge(how)
    assert rc == (0 if how == signal.SIGTERM else -how), "B's bridge exit status on signal %d: %s\n%s" % (how, rc, b.log_tail())
    time.sleep(1.0)  # let the departure (SIGTERM) or the silence (kill -9) be seen by A
    r = send_lines(a, "later", ['{"s":0,"n":%d}' % n for n in range(100)])
    assert r.returncode == 0, ("sends while B's bridge is down must be accepted: exit %s: %s\n%s"
                               % (r.returncode, r.stderr, a.all_logs()))
    time.sleep(0.5)
    assert got.poll() == 1, "arrived while B's bridge was down: " + rx.describe()
    b.start_bridge()

    deadline = time.monotonic() + 60
    while got.poll() < 101 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2.0)  # duplicates would trail
    rx.terminate()
    got.poll()
    numbers = got.by_sender.get(0, [])
    why = ("%d lines: %s\nbad %s duplicates %s\n%s"
           % (got.total, numbers, got.bad[:3], got.duplicates[:10], a.all_logs()))
    assert not got.bad and not got.duplicates, why
    assert numbers == [-1] + list(range(100)), why


# -- 3. requests still cross in durable mode ---------------------------------------------------


def test_request_across_durable(durable_hosts):
    cluster, hosts = durable_hosts
    a, b = hosts["A"], hosts["B"]
    b.spawn("reply", "svc", "--echo")
    a.wait_name("svc")
    for i in range(5):
        start = time.monotonic()
        r = a.mbx("request", "-t", str(REQUEST_TIMEOUT_MS), "svc", '{"q":%d}' % i,
                  timeout=REQUEST_TIMEOUT_MS / 1000.0 + 15)
        took = time.monotonic() - start
        assert r.returncode == 0, "exit %s: %s %s\n%s" % (r.returncode, r.stdout, r.stderr,
                                                           a.all_logs())
        assert json.loads(r.stdout) == {"q": i}, r.stdout
        assert took < REQUEST_TIMEOUT_MS / 1000.0
    # Nobody serves it anywhere: "no such recipient" (exit 5) at once, through core NATS.
    start = time.monotonic()
    r = a.mbx("request", "-t", str(REQUEST_TIMEOUT_MS), "nobody-here", "{}",
              timeout=REQUEST_TIMEOUT_MS / 1000.0 + 15)
    assert r.returncode == 5, "exit %s: %s\n%s" % (r.returncode, r.stderr, a.all_logs())
    assert time.monotonic() - start < 3.0


def test_request_after_messages_durable(durable_hosts):
    """A request behind plain messages in the same proxy mailbox on A: the messages go
    into the stream (the replier on B skips them), the request through core NATS."""
    cluster, hosts = durable_hosts
    a, b = hosts["A"], hosts["B"]
    b.spawn("reply", "svc2", "--echo")
    a.wait_name("svc2")
    r = send_lines(a, "svc2", ['{"s":0,"n":%d}' % n for n in range(3)])
    assert r.returncode == 0, "exit %s: %s\n%s" % (r.returncode, r.stderr, a.all_logs())
    r = a.mbx("request", "-t", str(REQUEST_TIMEOUT_MS), "svc2", '{"q":"after"}',
              timeout=REQUEST_TIMEOUT_MS / 1000.0 + 15)
    assert r.returncode == 0, "exit %s: %s %s\n%s" % (r.returncode, r.stdout, r.stderr,
                                                       a.all_logs())
    assert json.loads(r.stdout) == {"q": "after"}, r.stdout
