"""asyncio: AsyncClient, the Client's methods as coroutines, on the wake handle.

    async with AsyncClient(name="worker") as c:
        async for msg in c:
            ...

On Linux the client's wake handle goes into the running loop (loop.add_reader): a task
awaiting recv() sleeps until a message comes, then takes it with a non-blocking receive.
Taking a message and returning it happen with no await in between, so cancelling a task
that awaits recv() or request() never loses a message: it stays in the mailbox for the
next recv(). On Windows (a HANDLE, which the proactor loop cannot watch) the wait is a
short sleep between non-blocking receives, 1 ms growing to 20 ms while nothing comes.
"""
from __future__ import annotations

import asyncio
import sys
import time
from typing import Any, Dict, List, Optional, Set

from .client import Body, Client, Message
from .errors import InvalidArgument, Shutdown, Timeout

_POLL_MIN_S, _POLL_MAX_S = 0.001, 0.02


class AsyncClient:
    """Client(...)'s arguments; the blocking calls become coroutines."""

    def __init__(self, *args: Any, **kwargs: Any):
        self.client = Client(*args, **kwargs)
        self._fd: Optional[int] = None if sys.platform == "win32" else self.client.fileno()
        self._waiters: List[asyncio.Future] = []
        self._watching: Optional[asyncio.AbstractEventLoop] = None
        self._pending: Set[int] = set()  # requests awaited by request()
        self._replies: Dict[int, Message] = {}  # their replies, taken by recv()

    # ---- life ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.client.name

    def close(self) -> None:
        self._unwatch()
        self.client.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()

    # ---- waiting for the wake handle ------------------------------------------------------

    def _on_readable(self) -> None:
        waiters, self._waiters = self._waiters, []
        for f in waiters:
            if not f.done():
                f.set_result(None)
        self._unwatch()

    def _unwatch(self) -> None:
        if self._watching is not None and self._fd is not None:
            self._watching.remove_reader(self._fd)
        self._watching = None

    async def _readable(self, timeout_s: Optional[float]) -> None:
        """Returns when the wake handle is readable, or timeout_s passed."""
        if self._fd is None:  # Windows: see the module's docstring
            await asyncio.sleep(min(_POLL_MAX_S, timeout_s if timeout_s is not None
                                    else _POLL_MAX_S))
            return
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._waiters.append(fut)
        if self._watching is None:
            loop.add_reader(self._fd, self._on_readable)
            self._watching = loop
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout_s)
        except asyncio.TimeoutError:
            pass
        finally:
            if fut in self._waiters:
                self._waiters.remove(fut)
            if not self._waiters:
                self._unwatch()

    # ---- receiving ------------------------------------------------------------------------

    def _take(self) -> Optional[Message]:
        """One message for recv(), or None when the mailbox is empty. Replies that a
        request() awaits go to it (those of cancelled requests never come out: the
        library drops them)."""
        while True:
            try:
                msg = self.client.recv(0)
            except Timeout:
                return None
            if msg.kind == "reply" and msg.correlation in self._pending:
                self._replies[msg.correlation] = msg
                self._wake_all()
                continue
            return msg

    def _wake_all(self) -> None:
        for f in self._waiters:
            if not f.done():
                f.set_result(None)

    async def recv(self, timeout_ms: Optional[float] = None) -> Message:
        """The next message; raises Timeout after timeout_ms (None: no limit)."""
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        backoff = _POLL_MIN_S
        while True:
            msg = self._take()
            if msg is not None:
                return msg
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise Timeout("receive")
            if self._fd is None:
                await asyncio.sleep(min(backoff, left) if left is not None else backoff)
                backoff = min(backoff * 2, _POLL_MAX_S)
            else:
                await self._readable(left)

    def __aiter__(self) -> "AsyncClient":
        return self

    async def __anext__(self) -> Message:
        try:
            return await self.recv()
        except Shutdown:
            raise StopAsyncIteration from None

    # ---- sending and requests -----------------------------------------------------------

    def send(self, to: str, obj: Body, timeout_ms: int = 0, wait_ms: int = 0) -> None:
        """Sends without waiting for room by default (an event loop must not block):
        raises Full when the recipient's mailbox is full."""
        self.client.send(to, obj, timeout_ms=timeout_ms, wait_ms=wait_ms)

    def publish(self, topic: str, obj: Body, retain: bool = False, timeout_ms: int = 0):
        return self.client.publish(topic, obj, retain=retain, timeout_ms=timeout_ms)

    def subscribe(self, pattern: str, policy: str = "drop") -> None:
        self.client.subscribe(pattern, policy)

    async def request(self, to: str, obj: Body, timeout_ms: int = 5000) -> Message:
        """Sends a request and awaits its reply; other messages stay for recv().

        A look for the reply (recv_reply with 0) counts, for the client's one wake handle,
        as a look at everything that waits: other tasks sharing the client are not told
        of what it passed over. So a look that found nothing wakes the other waiters when
        something is there for them, and while messages wait that no task receives, the
        wait backs off (1 ms to 20 ms) instead of spinning."""
        rid = self.client.request_send(to, obj, timeout_ms=0)
        self._pending.add(rid)
        deadline = time.monotonic() + timeout_ms / 1000
        backoff = _POLL_MIN_S
        done = False
        try:
            while True:
                if rid in self._replies:
                    done = True
                    return self._replies.pop(rid)
                try:
                    msg = self.client.recv_reply(rid, 0)
                    done = True
                    return msg
                except Timeout:
                    pass
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Timeout(f"request to {to}")
                if self._fd is None:
                    await asyncio.sleep(min(backoff, left))
                    backoff = min(backoff * 2, _POLL_MAX_S)
                    continue
                self._wake_all()  # what this look passed over may be theirs
                before = time.monotonic()
                await self._readable(left)
                if time.monotonic() - before < _POLL_MIN_S / 2:
                    # Readable at once, and no reply: other messages wait. Back off.
                    await asyncio.sleep(min(backoff, max(0.0, deadline - time.monotonic())))
                    backoff = min(backoff * 2, _POLL_MAX_S)
                else:
                    backoff = _POLL_MIN_S
        finally:
            self._pending.discard(rid)
            if not done:
                self._replies.pop(rid, None)
                try:
                    self.client.request_cancel(rid)  # a reply that comes later is dropped
                except InvalidArgument:  # answered meanwhile, or the client is closed
                    pass

    def reply(self, msg: Message, obj: Body, timeout_ms: int = 0) -> None:
        self.client.reply(msg, obj, timeout_ms=timeout_ms)

    def fileno(self) -> int:
        return self.client.fileno()

    def interrupt(self) -> None:
        self.client.interrupt()
