"""asyncio: AsyncClient, the Client's methods as coroutines, on the wake handle.

    async with AsyncClient(name="worker") as c:
        async for msg in c:
            ...

One dispatcher per client. Only it takes messages out of the mailbox, always with a
non-blocking receive (Client.recv with 0) repeated until Timeout, and only while some task
waits: a recv() or a request(). What it takes goes at once, with no await in between, to
the one it is for: a reply to a pending request() to that request; anything else to the
oldest waiting recv(), or, when no recv() waits, to a local FIFO of messages taken but
not yet returned, which recv() serves first, in the order they came.

On Linux the dispatcher runs when the client's wake handle is readable (loop.add_reader,
while anyone waits). The handle is readable while anything arrived since the client last
looked; the dispatcher is the only one that looks, and it always looks to the end of the
mailbox (a receive that ends in Timeout), so no waiting task is left unaware of a message
and no task ever polls. Before a task sleeps it runs the dispatcher itself (a look first,
then the wait), because the handle only tells of what came after the last look.

On Windows (a HANDLE, which the proactor loop cannot watch) each waiting task runs the
dispatcher after a short sleep instead, 1 ms growing to 20 ms while nothing comes.

Cancellation loses nothing: a message taken is either returned by the recv() it was
handed to or, when that task was cancelled (or timed out) first, handed to the next
waiting recv() or put back into the FIFO in its place.
"""
from __future__ import annotations

import asyncio
import sys
from collections import deque
from typing import Any, Callable, Deque, Dict, Optional, Tuple

from .client import Body, Client, Message
from .errors import InvalidArgument, Shutdown, Timeout

_POLL_MIN_S, _POLL_MAX_S = 0.001, 0.02

_INT_MAX = 2**31 - 1


def _seconds(timeout_ms: Optional[float]) -> Optional[float]:
    """A timeout in seconds, None for no limit: as Client's (None, -1 or beyond a C int
    mean no limit; any other negative value is a ValueError)."""
    if timeout_ms is None or timeout_ms == -1 or timeout_ms > _INT_MAX:
        return None
    if timeout_ms < 0:
        raise ValueError(f"timeout_ms must be None, -1 or at least 0, not {timeout_ms}")
    return timeout_ms / 1000


def _expire(fut: asyncio.Future, error: Callable[[], BaseException]) -> None:
    if not fut.done():
        fut.set_exception(error())


def _quiet(fut: asyncio.Future) -> None:
    """Marks an exception the future holds as seen (no "never retrieved" warning)."""
    if fut.done() and not fut.cancelled():
        fut.exception()


class AsyncClient:
    """Client(...)'s arguments; the blocking calls become coroutines."""

    def __init__(self, *args: Any, **kwargs: Any):
        self.client = Client(*args, **kwargs)
        self._fd: Optional[int] = None if sys.platform == "win32" else self.client.fileno()
        self._watching: Optional[asyncio.AbstractEventLoop] = None
        # Waiting recv() calls, oldest first: each future gets (order, message).
        self._receivers: Deque[asyncio.Future] = deque()
        # Pending request() calls by request id: each future gets the reply.
        self._requests: Dict[int, asyncio.Future] = {}
        # Messages taken that no recv() has returned yet, as (order, message).
        self._held: Deque[Tuple[int, Message]] = deque()
        self._taken = 0  # messages taken so far: their order
        self._closed = False

    # ---- life ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.client.name

    @property
    def held(self) -> int:
        """How many messages the dispatcher took that no recv() returned yet (see the
        module's docstring). They are returned by the next recv() calls, before anything
        still in the mailbox; close() discards them."""
        return len(self._held)

    def close(self) -> None:
        """Closes the client. Messages held locally are discarded, as the mailbox's waiting
        messages are; tasks still awaiting recv() or request() raise InvalidArgument
        ("client is closed"). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._unwatch()
        self.client.close()
        self._held.clear()
        waiting = list(self._receivers) + list(self._requests.values())
        self._receivers.clear()
        for fut in waiting:
            if not fut.done():
                try:
                    fut.set_exception(InvalidArgument("client is closed"))
                except RuntimeError:  # its loop is closed: nobody awaits it any more
                    pass

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()

    # ---- the dispatcher -------------------------------------------------------------------

    def _someone_waits(self) -> bool:
        receivers = self._receivers
        while receivers and receivers[0].done():
            receivers.popleft()
        if receivers:
            return True
        return any(not f.done() for f in self._requests.values())

    def _pump(self) -> None:
        """Takes messages while anyone waits, until the mailbox is empty (a receive that
        ends in Timeout: it has looked at everything, so the wake handle tells of what
        comes next), and hands each to whom it is for."""
        if self._closed:
            return
        while self._someone_waits():
            try:
                msg = self.client.recv(0)
            except Timeout:
                break
            except Shutdown:
                self._fail_all(lambda: Shutdown("receive"))
                break
            except Exception as e:  # Interrupted, Corrupt...: one receive's outcome
                self._fail_one(e)
                continue
            self._taken += 1
            self._dispatch(self._taken, msg)
        if not self._someone_waits():
            self._unwatch()

    def _dispatch(self, order: int, msg: Message) -> None:
        if msg.kind == "reply" and msg.correlation in self._requests:
            fut = self._requests[msg.correlation]
            if not fut.done():
                fut.set_result(msg)
            # else: the request was given up a moment ago (its task has not run since):
            # its reply is dropped, as the library drops those that come later.
            return
        self._hand(order, msg)

    def _hand(self, order: int, msg: Message) -> None:
        """To the oldest waiting recv(), else into the FIFO at its place. (While a recv()
        waits the FIFO is empty: recv() serves the FIFO before it waits, and messages go
        into the FIFO only when nobody waits.)"""
        while self._receivers:
            fut = self._receivers.popleft()
            if not fut.done():
                fut.set_result((order, msg))
                return
        held = self._held
        if not held or held[-1][0] < order:
            held.append((order, msg))
            return
        # Handed back by a recv() that was cancelled: before what came after it.
        i = len(held)
        while i > 0 and held[i - 1][0] > order:
            i -= 1
        held.insert(i, (order, msg))

    def _fail_one(self, error: BaseException) -> None:
        for fut in list(self._receivers) + list(self._requests.values()):
            if not fut.done():
                fut.set_exception(error)
                return

    def _fail_all(self, error: Callable[[], BaseException]) -> None:
        for fut in list(self._receivers) + list(self._requests.values()):
            if not fut.done():
                fut.set_exception(error())

    def _on_readable(self) -> None:
        self._pump()

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._watching is loop or self._fd is None:
            return
        self._unwatch()
        loop.add_reader(self._fd, self._on_readable)
        self._watching = loop

    def _unwatch(self) -> None:
        if self._watching is not None and self._fd is not None:
            try:
                self._watching.remove_reader(self._fd)
            except (RuntimeError, ValueError, OSError):  # that loop is closed
                pass
        self._watching = None

    async def _wait(self, fut: asyncio.Future) -> None:
        """Until fut is done: on the wake handle, or (Windows) by looking now and then."""
        if self._fd is not None:
            self._watch(asyncio.get_running_loop())
            await fut
            return
        backoff = _POLL_MIN_S
        while not fut.done():
            await asyncio.wait((fut,), timeout=backoff)
            self._pump()
            backoff = min(backoff * 2, _POLL_MAX_S)

    def _settle(self) -> None:
        if not self._someone_waits():
            self._unwatch()

    # ---- receiving ------------------------------------------------------------------------

    async def recv(self, timeout_ms: Optional[float] = None) -> Message:
        """The next message; raises Timeout after timeout_ms (None: no limit; 0: only what
        is there already)."""
        if self._held:
            return self._held.popleft()[1]
        if self._closed:
            raise InvalidArgument("client is closed")
        timeout_s = _seconds(timeout_ms)
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._receivers.append(fut)
        timer = None
        try:
            self._pump()  # a look first: the handle tells only of what comes after it
            if not fut.done():
                if timeout_s == 0:
                    raise Timeout("receive")
                if timeout_s is not None:
                    timer = loop.call_later(timeout_s, _expire, fut, lambda: Timeout("receive"))
                await self._wait(fut)
            return fut.result()[1]
        except BaseException:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self._hand(*fut.result())  # taken for this call, which did not return it
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if not fut.done():
                fut.cancel()
            _quiet(fut)
            try:
                self._receivers.remove(fut)
            except ValueError:
                pass
            self._settle()

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

    async def request(self, to: str, obj: Body, timeout_ms: Optional[float] = 5000) -> Message:
        """Sends a request and awaits its reply (timeout_ms None: no limit); other messages
        go to recv(). A request that times out or whose task is cancelled is given up
        (request_cancel): its reply, if one comes, is dropped, never handed to recv()."""
        timeout_s = _seconds(timeout_ms)
        loop = asyncio.get_running_loop()
        rid = self.client.request_send(to, obj, timeout_ms=0)
        fut = loop.create_future()
        self._requests[rid] = fut
        timer = None
        answered = False
        try:
            self._pump()
            if not fut.done():
                if timeout_s is not None:
                    timer = loop.call_later(timeout_s, _expire, fut,
                                            lambda: Timeout(f"request to {to}"))
                await self._wait(fut)
            msg = fut.result()
            answered = True
            return msg
        finally:
            if timer is not None:
                timer.cancel()
            if not fut.done():
                fut.cancel()
            _quiet(fut)
            del self._requests[rid]
            if not answered:
                try:
                    self.client.request_cancel(rid)  # a reply that comes later is dropped
                except InvalidArgument:  # answered meanwhile, or the client is closed
                    pass
            self._settle()

    def reply(self, msg: Message, obj: Body, timeout_ms: int = 0) -> None:
        self.client.reply(msg, obj, timeout_ms=timeout_ms)

    def fileno(self) -> int:
        return self.client.fileno()

    def interrupt(self) -> None:
        """Makes one waiting recv() (or request()) raise Interrupted; when none waits, the
        next one. From the loop's thread, another thread, or a signal handler."""
        self.client.interrupt()
        loop = self._watching
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._pump)  # the handle does not tell of it
            except RuntimeError:  # that loop is closed
                pass
