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
        with pytest.raises(asyncio.CancelledError):
            await task
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
