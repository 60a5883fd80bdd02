"""mailbox_ipc.aio: receiving on the wake handle, async iteration, requests, and
cancellation that loses nothing."""
import asyncio

import pytest

import mailbox_ipc as m
from mailbox_ipc.aio import AsyncClient


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_recv_sleeps_on_the_handle_and_wakes(mailbox_ns):
    rx = mailbox_ns.aclient("rx")
    tx = mailbox_ns.client("tx")

    async def main():
        loop = asyncio.get_running_loop()
        loop.call_later(0.1, tx.send, "rx", {"hi": 1})
        msg = await rx.recv(timeout_ms=5000)
        assert msg.body == {"hi": 1}
        with pytest.raises(m.Timeout):
            await rx.recv(timeout_ms=50)

    run(main())


def test_cancelled_recv_loses_no_message(mailbox_ns):
    rx = mailbox_ns.aclient("rx")
    tx = mailbox_ns.client("tx")

    async def main():
        for round_ in range(20):
            task = asyncio.create_task(rx.recv())
            await asyncio.sleep(0.005)
            tx.send("rx", round_)
            task.cancel()  # may come before or after the message: nothing is lost
            try:
                got = await task
            except asyncio.CancelledError:
                got = await rx.recv(timeout_ms=5000)
            assert got.body == round_

    run(main())


def test_async_for_and_concurrent_tasks(mailbox_ns):
    rx = mailbox_ns.aclient("rx")
    tx = mailbox_ns.client("tx")

    async def main():
        for i in range(50):  # within one mailbox (depth 64)
            tx.send("rx", i)
        seen = []
        async for msg in rx:
            seen.append(msg.body)
            if len(seen) == 50:
                break
        assert seen == list(range(50))
        # Two tasks waiting at once each get one.
        tasks = [asyncio.create_task(rx.recv(timeout_ms=5000)) for _ in range(2)]
        await asyncio.sleep(0.05)
        tx.send("rx", {"v": "a"})
        tx.send("rx", {"v": "b"})
        assert sorted([(await t).body["v"] for t in tasks]) == ["a", "b"]

    run(main())


def responder(ns, count):
    with m.Client(namespace=ns, name="srv") as s:
        for _ in range(count):
            req = s.recv(timeout_ms=10000)
            s.reply(req, {"re": req.body})
    return 0


def test_request_alongside_recv(mailbox_ns):
    srv = mailbox_ns.spawn(responder, 6)
    me = mailbox_ns.aclient("me")
    tx = mailbox_ns.client("tx")
    mailbox_ns.wait_for("srv")

    async def main():
        assert (await me.request("srv", 1)).body == {"re": 1}
        # With plain messages waiting and nobody receiving them: they stay.
        tx.send("me", ["first"])
        assert (await me.request("srv", 2)).body == {"re": 2}
        assert (await me.recv(timeout_ms=1000)).body == ["first"]
        # A receiving task and requests at once: each gets its own.
        receiver = asyncio.create_task(me.recv(timeout_ms=5000))
        replies = await asyncio.gather(me.request("srv", 3), me.request("srv", 4))
        assert [r.body for r in replies] == [{"re": 3}, {"re": 4}]
        tx.send("me", ["second"])
        assert (await receiver).body == ["second"]
        # A cancelled request: its reply, when it comes, is not handed to recv().
        task = asyncio.create_task(me.request("srv", 5))
        await asyncio.sleep(0)
        task.cancel()
        try:
            # Under load the reply can be there at the request's first look, before the
            # cancel reaches it: then the request is simply answered.
            assert (await task).body == {"re": 5}
        except asyncio.CancelledError:
            pass
        assert (await me.request("srv", 6)).body == {"re": 6}
        tx.send("me", ["third"])
        assert (await me.recv(timeout_ms=1000)).body == ["third"]

    run(main())
    assert srv.wait() == 0


def test_context_manager_and_send(mailbox_ns):
    async def main():
        async with AsyncClient(namespace=mailbox_ns.name, name="x") as x:
            x.send("x", [1])
            assert (await x.recv(timeout_ms=1000)).body == [1]
            x.subscribe("t.*")
            x.publish("t.a", 2)
            msg = await x.recv(timeout_ms=1000)
            assert (msg.topic, msg.body) == ("t.a", 2)
            assert x.fileno() >= 0

    run(main())


# ---- one dispatcher per client: many tasks, cancellation, no polling ----------------------

def serve_until_stop(ns, delay_ms=0):
    """Answers every request with {"re": body} (after delay_ms, up to it when given as a
    range); ends on the plain message ["stop"]."""
    import random
    import time
    rng = random.Random()
    with m.Client(namespace=ns, name="srv") as s:
        while True:
            msg = s.recv(timeout_ms=60000)
            if msg.kind == "request":
                if delay_ms:
                    time.sleep(rng.uniform(0, delay_ms) / 1000)
                s.reply(msg, {"re": msg.body}, timeout_ms=30000)
            elif msg.body == ["stop"]:
                return 0


def send_numbered(ns, tag, count):
    """count messages to "me", in bursts of up to 20 with pauses of up to 2 ms (so that
    they find tasks waiting in recv() as well as a backlog)."""
    import random
    import time
    rng = random.Random()
    with m.Client(namespace=ns, name=f"tx{tag}") as s:
        for i in range(count):
            if rng.random() < 0.05:
                time.sleep(rng.uniform(0, 0.002))
            s.send("me", {"s": tag, "i": i}, timeout_ms=30000)
    return 0


@pytest.mark.mailbox(args=["--depth", "1024"])
def test_a_thousand_tasks_with_cancellation_lose_nothing(mailbox_ns):
    """1,000 tasks on one client: recv() waiters and request() callers, cancelled at
    random points (wait_for with small timeouts, task.cancel(), recv timeouts), while two
    processes send 2,500 messages each. Every message comes out of recv() exactly once
    (from a task or the final drain), no reply ever does, and every request that was not
    cancelled gets its own reply."""
    import random

    seed = random.randrange(2**32)
    rng = random.Random(seed)
    me = mailbox_ns.aclient("me")
    srv = mailbox_ns.spawn(serve_until_stop, 0, timeout_s=120)
    mailbox_ns.wait_for("srv")
    per_sender, senders = 2500, 2
    n_receivers, n_requesters, per_requester = 600, 400, 5
    got = []  # every message recv() returned
    stats = {"answered": 0, "given_up": 0, "rid": set()}

    def record(msg):
        assert msg.kind != "reply", f"a reply came out of recv(): {msg!r} (seed {seed})"
        got.append((msg.body["s"], msg.body["i"]))

    async def receiver(stop):
        while not stop.is_set():
            mode = rng.random()
            try:
                if mode < 0.3:
                    msg = await me.recv(timeout_ms=rng.choice([0, 1, 5, 20, 100]))
                elif mode < 0.6:
                    msg = await asyncio.wait_for(me.recv(), rng.uniform(0, 0.02))
                elif mode < 0.9:
                    t = asyncio.create_task(me.recv())
                    await asyncio.sleep(rng.choice([0, 0, rng.uniform(0, 0.01)]))
                    t.cancel()
                    msg = await t
                else:
                    msg = await me.recv(timeout_ms=200)
            except (TimeoutError, asyncio.CancelledError):
                if asyncio.current_task().cancelling():
                    raise
                continue
            record(msg)

    def check_reply(body, reply):
        assert reply.kind == "reply" and reply.body == {"re": body}, (body, reply, seed)
        assert reply.correlation not in stats["rid"], (reply, seed)
        stats["rid"].add(reply.correlation)
        stats["answered"] += 1

    async def requester(w):
        for k in range(per_requester):
            body = {"w": w, "k": k}
            mode = rng.random()
            if mode < 0.5:  # not cancelled: must be answered
                check_reply(body, await me.request("srv", body, timeout_ms=60000))
                continue
            try:
                if mode < 0.75:
                    reply = await asyncio.wait_for(me.request("srv", body, timeout_ms=60000),
                                                   rng.uniform(0, 0.01))
                else:
                    t = asyncio.create_task(me.request("srv", body, timeout_ms=60000))
                    await asyncio.sleep(rng.choice([0, rng.uniform(0, 0.005)]))
                    t.cancel()
                    reply = await t
            except (TimeoutError, asyncio.CancelledError):
                if asyncio.current_task().cancelling():
                    raise
                stats["given_up"] += 1
                continue
            check_reply(body, reply)

    async def main():
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        receivers = [asyncio.create_task(receiver(stop)) for _ in range(n_receivers)]
        requesters = [asyncio.create_task(requester(w)) for w in range(n_requesters)]
        procs = [mailbox_ns.spawn(send_numbered, s, per_sender, timeout_s=120)
                 for s in range(senders)]
        for p in procs:
            assert await loop.run_in_executor(None, p.wait) == 0
        await asyncio.gather(*requesters)
        stop.set()
        await asyncio.gather(*receivers)
        me.send("srv", ["stop"])
        assert await loop.run_in_executor(None, srv.wait) == 0
        # Everything sent is in the mailbox or held: drain it (late replies are dropped).
        while True:
            try:
                record(await me.recv(timeout_ms=300))
            except m.Timeout:
                break
        assert me.held == 0

    asyncio.run(asyncio.wait_for(main(), 150))
    expected = {(s, i) for s in range(senders) for i in range(per_sender)}
    assert len(got) == len(set(got)), f"duplicates (seed {seed})"
    assert set(got) == expected, f"lost {len(expected - set(got))} (seed {seed})"
    assert stats["answered"] + stats["given_up"] == n_requesters * per_requester
    assert stats["answered"] >= n_requesters * per_requester // 2


def feed(ns):
    """On ["go", round, n] sends "me" n messages [round, i], with tiny random gaps; ends
    on ["stop"]."""
    import random
    import time
    rng = random.Random()
    with m.Client(namespace=ns, name="feeder") as s:
        while True:
            cmd = s.recv(timeout_ms=60000).body
            if cmd[0] == "stop":
                return 0
            for i in range(cmd[2]):
                if rng.random() < 0.5:
                    time.sleep(rng.uniform(0, 0.001))
                s.send("me", [cmd[1], i], timeout_ms=10000)


@pytest.mark.mailbox(args=["--depth", "1024"])
def test_messages_for_waiters_while_a_request_is_in_flight(mailbox_ns):
    """The missed wake-up: receivers and requests share the client, and messages for the
    receivers arrive (from another process, with tiny gaps) while the requests wait for
    replies that come with random delays. Each round must end within its time: a
    receiver that was never told of its message would wait for ever."""
    import random

    me = mailbox_ns.aclient("me")
    tx = mailbox_ns.client("tx")
    srv = mailbox_ns.spawn(serve_until_stop, 1, timeout_s=120)
    feeder = mailbox_ns.spawn(feed, timeout_s=120)
    mailbox_ns.wait_for("srv")
    mailbox_ns.wait_for("feeder")
    rng = random.Random()

    async def main():
        for round_ in range(500):
            n = rng.randint(1, 4)
            receivers = [asyncio.create_task(me.recv()) for _ in range(n)]
            requests = [asyncio.create_task(me.request("srv", [round_, k], timeout_ms=10000))
                        for k in range(rng.randint(1, 3))]
            if rng.random() < 0.5:
                await asyncio.sleep(0)
            tx.send("feeder", ["go", round_, n])
            got = await asyncio.wait_for(asyncio.gather(*receivers), 5)
            assert sorted(msg.body for msg in got) == [[round_, i] for i in range(n)]
            replies = await asyncio.wait_for(asyncio.gather(*requests), 5)
            assert [r.body for r in replies] == [{"re": [round_, k]} for k in range(len(requests))]
        # Messages taken while no recv() waits are held, and come out in order.
        request = asyncio.create_task(me.request("srv", ["last"], timeout_ms=10000))
        tx.send("feeder", ["go", "held", 20])
        await asyncio.sleep(0.2)
        assert (await asyncio.wait_for(request, 5)).body == {"re": ["last"]}
        bodies = [(await me.recv(timeout_ms=1000)).body for _ in range(20)]
        assert bodies == [["held", i] for i in range(20)]
        tx.send("srv", ["stop"])
        tx.send("feeder", ["stop"])

    asyncio.run(asyncio.wait_for(main(), 120))
    assert srv.wait() == 0
    assert feeder.wait() == 0


def counting(client, calls):
    """Wraps client.recv and client.recv_reply (instance attributes: the class is left
    alone) to count the looks that found nothing."""
    for name in ("recv", "recv_reply"):
        real = getattr(client, name)

        def wrapped(*args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            try:
                return _real(*args, **kwargs)
            except m.Timeout:
                calls["empty"] += 1
                raise
        setattr(client, name, wrapped)


def slow_server(ns):
    import time
    with m.Client(namespace=ns, name="srv") as s:
        req = s.recv(timeout_ms=10000)
        time.sleep(1)
        s.reply(req, {"re": req.body})
    return 0


def test_waiting_does_not_poll(mailbox_ns):
    """While idle with a recv() pending for 1 s, and while a request waits 1 s for its
    reply with messages waiting that no task receives, the client is looked at only a
    few times: no backoff loop."""
    me = mailbox_ns.aclient("me")
    tx = mailbox_ns.client("tx")
    srv = mailbox_ns.spawn(slow_server)
    mailbox_ns.wait_for("srv")
    calls = {"recv": 0, "recv_reply": 0, "empty": 0}
    counting(me.client, calls)

    async def main():
        with pytest.raises(m.Timeout):
            await me.recv(timeout_ms=1000)
        assert calls["recv"] <= 3 and calls["recv_reply"] == 0, calls
        calls.update(recv=0, empty=0)
        for i in range(5):
            tx.send("me", i)
        assert (await me.request("srv", ["q"], timeout_ms=5000)).body == {"re": ["q"]}
        assert calls["empty"] <= 3 and calls["recv_reply"] == 0, calls
        assert calls["recv"] <= 5 + 1 + 3, calls  # the 5 messages, the reply, a few looks
        assert [(await me.recv(timeout_ms=0)).body for _ in range(5)] == list(range(5))

    asyncio.run(asyncio.wait_for(main(), 30))
    assert srv.wait() == 0


def test_interrupt_and_close_wake_waiting_tasks(mailbox_ns):
    me = mailbox_ns.aclient("me")
    tx = mailbox_ns.client("tx")

    async def main():
        task = asyncio.create_task(me.recv())
        await asyncio.sleep(0.05)
        me.interrupt()
        with pytest.raises(m.Interrupted):
            await asyncio.wait_for(task, 2)
        tx.send("me", 1)  # the client stays usable
        assert (await me.recv(timeout_ms=1000)).body == 1
        waiting = [asyncio.create_task(me.recv()) for _ in range(3)]
        await asyncio.sleep(0.05)
        me.close()
        for t in waiting:
            with pytest.raises(m.InvalidArgument):
                await asyncio.wait_for(t, 2)
        with pytest.raises(m.InvalidArgument):
            await me.recv(timeout_ms=0)

    asyncio.run(asyncio.wait_for(main(), 30))


def test_shutdown_reaches_every_waiting_task(mailbox_ns):
    """When the broker shuts the namespace down, every task waiting on the client raises
    Shutdown (and async for ends): none sleeps on."""
    import signal

    me = mailbox_ns.aclient("me")
    mailbox_ns.client("srv")  # takes requests, never answers

    async def main():
        receivers = [asyncio.create_task(me.recv()) for _ in range(5)]
        requests = [asyncio.create_task(me.request("srv", [k], timeout_ms=None))
                    for k in range(3)]

        async def iterate():
            return [msg async for msg in me]
        iterating = asyncio.create_task(iterate())
        await asyncio.sleep(0.1)
        mailbox_ns.broker.send_signal(signal.SIGTERM)
        for t in receivers + requests:
            with pytest.raises(m.Shutdown):
                await asyncio.wait_for(t, 10)
        assert await asyncio.wait_for(iterating, 10) == []

    asyncio.run(asyncio.wait_for(main(), 30))
    mailbox_ns.broker.wait(timeout=10)


def test_a_request_that_looks_does_not_hide_a_message(mailbox_ns):
    """The missed wake-up, step by step: a task sleeps in recv(); a message for it arrives
    and, before the loop next polls the wake handle, another task's request() starts (and
    looks for its reply). The receiver must still get the message: a look for one reply
    that passed it over would leave the handle quiet and the receiver asleep. Once with a
    responder that answers (its reply wakes the client anyway), once with one that does
    not (nothing else comes to wake it)."""
    srv = mailbox_ns.spawn(serve_until_stop, 0)
    mailbox_ns.client("mute")  # takes requests, never answers
    me = mailbox_ns.aclient("me")
    tx = mailbox_ns.client("tx")
    mailbox_ns.wait_for("srv")

    async def main():
        loop = asyncio.get_running_loop()
        for round_ in range(40):
            to = "srv" if round_ % 2 else "mute"
            receiver = asyncio.create_task(me.recv())
            await asyncio.sleep(0.01)  # asleep on the handle
            # In one batch of the loop's callbacks, with no poll in between: the message
            # arrives, then the request starts.
            loop.call_soon(tx.send, "me", [round_])
            request = asyncio.create_task(me.request(to, [round_], timeout_ms=5000))
            assert (await asyncio.wait_for(receiver, 2)).body == [round_]
            if to == "srv":
                assert (await asyncio.wait_for(request, 5)).body == {"re": [round_]}
            else:
                request.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await request
        tx.send("srv", ["stop"])

    asyncio.run(asyncio.wait_for(main(), 60))
    assert srv.wait() == 0


def test_a_message_handed_to_a_cancelled_recv_goes_on(mailbox_ns):
    """A message the dispatcher handed to a waiting recv() whose task is cancelled before
    it returned it goes to the next waiting recv(), or back into the FIFO in its place."""
    me = mailbox_ns.aclient("me")
    tx = mailbox_ns.client("tx")

    async def main():
        loop = asyncio.get_running_loop()
        for with_second in (False, True):
            first = asyncio.create_task(me.recv())
            await asyncio.sleep(0.01)
            second = asyncio.create_task(me.recv()) if with_second else None
            await asyncio.sleep(0.01)
            tx.send("me", ["a"])
            if not with_second:
                tx.send("me", ["b"])
            # One batch: a look (which hands "a" to the first waiter and "b", if sent, to
            # the look itself), then the first waiter's cancel, before it ran again.
            looker = asyncio.create_task(me.recv(timeout_ms=0))
            loop.call_soon(first.cancel)
            with pytest.raises(asyncio.CancelledError):
                await first
            if with_second:  # "a" goes on to the second waiter
                with pytest.raises(m.Timeout):
                    await looker
                assert (await asyncio.wait_for(second, 2)).body == ["a"]
            else:  # "a" goes back into the FIFO
                assert (await looker).body == ["b"]
                assert me.held == 1
                assert (await me.recv(timeout_ms=0)).body == ["a"]
            assert me.held == 0

    asyncio.run(asyncio.wait_for(main(), 30))
