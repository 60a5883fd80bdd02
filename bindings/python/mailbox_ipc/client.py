"""The synchronous client: Client, Message, inspect() and wait_for()."""
from __future__ import annotations

import collections
import ctypes
import itertools
import weakref
import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from . import _native as N
from .errors import Full, InvalidArgument, Shutdown, Signalled, Timeout, check

#: What the policy names of subscribe() mean in mailbox.h.
POLICIES = {"drop": 0, "block": 1}
#: mbx_kind values, as Message.kind names them.
KINDS = {0: "plain", 1: "request", 2: "reply", 3: "publication"}

Body = Union[str, bytes, Any]


def _b(s: Optional[str]) -> Optional[bytes]:
    return None if s is None else s.encode()


# One encoder for every body (json.dumps with options would build one per call). Its
# output is one compact JSON value in UTF-8 (allow_nan=False: no NaN or Infinity, which
# JSON does not have), so it goes as trusted text: the library skips its own check
# (the receiver still checks every body).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _encode(obj: Body) -> Tuple[bytes, int]:
    """JSON text for a body, and whether it is trusted: str and bytes are taken as JSON
    already (the library checks them), anything else is serialised compactly."""
    if isinstance(obj, bytes):
        return obj, 0
    if isinstance(obj, str):
        return obj.encode(), 0
    return _ENCODER.encode(obj).encode(), 1


_INT_MAX = 2**31 - 1


def _timeout(timeout_ms: Optional[float]) -> int:
    """None (or -1) waits without limit (-1 for the library); a time beyond what a C int
    holds (about 24.8 days) means no limit too, instead of wrapping; any other negative
    value is a ValueError."""
    if timeout_ms is None:
        return -1
    ms = int(timeout_ms)
    if ms == -1 or ms > _INT_MAX:
        return -1
    if ms < 0:
        raise ValueError(f"timeout_ms must be None, -1 or at least 0, not {timeout_ms}")
    return ms


# ---- signals and Ctrl-C ----------------------------------------------------------------
#
# Python runs a signal handler (KeyboardInterrupt's included) in the main thread, between
# two bytecodes: never while a call into the library sleeps. So every client is connected
# with the library's `signals` option: a signal ends a sleeping call with MBX_ESIGNAL
# having taken nothing, the handler runs as the call returns (raising, or not), and the
# binding calls again with what is left of the timeout. A signal that lands while the
# library spins, just before it sleeps, is not seen by it: the main thread therefore
# waits in slices of _SLICE_MS, so that Ctrl-C always lands within one slice.
# docs/python.md, "Signals", states the rules.

_ETIMEDOUT, _ESIGNAL = Timeout.code, Signalled.code
_SLICE_MS = 50
_MAIN = threading.main_thread().ident
_get_ident = threading.get_ident
_monotonic = time.monotonic


def _sliced(ms: int) -> int:
    """The first wait of a call that may wait ms (-1: no limit): a slice in the main
    thread, where signal handlers run."""
    if ms != 0 and (ms < 0 or ms > _SLICE_MS) and _get_ident() == _MAIN:
        return _SLICE_MS
    return ms


def _wait_on(call, ms: int, start: float, code: int, first: int) -> int:
    """Goes on with call(timeout_ms) -> code after a first call that waited `first` ms
    from `start` and returned `code`: again after a signal, and after a slice that ended
    before the caller's time did; returns the first other result."""
    deadline = None if ms < 0 else start + ms / 1000
    while code == _ESIGNAL or (code == _ETIMEDOUT and first != ms):
        if deadline is None:
            ms_left = -1
        else:
            ms_left = int((deadline - _monotonic()) * 1000 + 0.999)
            if ms_left <= 0:
                return _ETIMEDOUT
        first = _sliced(ms_left)
        ms = ms_left
        code = call(first)
    return code


def _blocking(call, ms: int, sliced: bool = True) -> int:
    """call(timeout_ms) -> code, carried over signals, and over slices unless `sliced` is
    false (a send: a slice that ends full would count as refused, and lose its turn)."""
    start = _monotonic()
    first = _sliced(ms) if sliced else ms
    return _wait_on(call, ms, start, call(first), first)


def _cancel_quietly(c: int, rid: int) -> None:
    """Gives a request up, if it still waits (not answered meanwhile, client open)."""
    if c:
        N.request_cancel(c, rid)


class Message:
    """One received message. `body` is the decoded JSON value, `raw` its text."""

    __slots__ = ("sender", "to", "seq", "ts", "raw", "kind", "correlation", "topic", "missed",
                 "node", "_native", "_body", "__weakref__")

    def __init__(self, sender: str, to: str, seq: int, ts: int, raw: str, kind: str = "plain",
                 correlation: int = 0, topic: Optional[str] = None, missed: int = 0,
                 _native: Optional[int] = None):
        self.sender = sender  #: the sender's client name ("mailboxd" for broker events)
        self.to = to  #: our own name
        self.seq = seq  #: the sender's sequence number
        self.ts = ts  #: microseconds since the Unix epoch, at send
        self.raw = raw  #: the body as compact JSON text
        self.kind = kind  #: plain, request, reply or publication
        self.correlation = correlation  #: a request's id (requests and their replies)
        self.topic = topic  #: the topic of a publication, else None
        self.missed = missed  #: publications missed just before this one (drop policy)
        #: the node (host) it came from through mailbox-bridge; None for one sent here
        self.node: Optional[str] = None
        self._native = _native
        self._body: Any = _UNSET

    @property
    def body(self) -> Any:
        if self._body is _UNSET:
            self._body = json.loads(self.raw)
        return self._body

    def __repr__(self) -> str:
        extra = f", topic={self.topic!r}" if self.topic is not None else ""
        return (f"Message(sender={self.sender!r}, to={self.to!r}, seq={self.seq}, "
                f"kind={self.kind!r}{extra}, raw={self.raw!r})")

    # No __del__: Python runs a signal handler at the start of any Python function, a
    # finalizer included, and an exception there is dropped: a Ctrl-C that landed in
    # one would be lost. A request's native message is freed by its client instead
    # (Client._own).


_UNSET = object()

# Native structures the calls fill are per thread: any number of threads may use any
# number of clients (a structure shared between threads once handed one thread's message
# to another).
_per_thread = threading.local()


def _fields() -> "tuple":
    """This thread's MessageFields and a reference to it."""
    mine = getattr(_per_thread, "fields", None)
    if mine is None:
        f = N.MessageFields()
        mine = _per_thread.fields = (f, ctypes.byref(f))
    return mine


def _message_from(native: int, to: Optional[str] = None) -> Message:
    """A Message of the native one's fields (to: our own name, when known). The common
    case, a plain message, reads only what it has."""
    f, ref = _fields()
    N.message_fields_get(native, ref)
    kind = f.kind
    msg = Message(f.sender.decode(), to if to is not None else f.to.decode(), f.seq, f.ts_us,
                  f.body.decode())
    if kind:
        msg.kind = KINDS.get(kind, "plain")
        msg.correlation = f.correlation
        topic = f.topic
        msg.topic = topic.decode() if topic is not None else None
        msg.missed = f.missed
    node = f.node
    if node is not None:
        msg.node = node.decode()
    return msg


@dataclass
class PublishResult:
    """What one publication did."""

    delivered: int
    dropped: int


@dataclass
class ClientInfo:
    name: str
    slot: int
    pid: int
    waiting: int
    sent: int
    received: int
    refused_full: int
    lingering: bool
    late_replies: int
    group: bool
    subscriptions: List[dict]
    dropped: int
    senders_waiting: int = 0


@dataclass
class NamespaceInfo:
    """A namespace's state, as mbx_inspect() and `mbx list` report it."""

    namespace: str
    broker_pid: int
    uptime_s: int
    epoch: int
    slots: int
    depth: int
    max_message: int
    segment_bytes: int
    discarded: int
    max_subscriptions: int
    subscriptions: int
    max_retained: int
    retained: int
    clients: List[ClientInfo]
    total_sent: int = 0  #: since the namespace was made, clients gone included
    total_received: int = 0
    total_refused_full: int = 0
    clients_seen: int = 0
    mailbox_bytes: int = 0  #: bytes of each mailbox's ring of messages


class Client:
    """A mailbox in a namespace: `with Client(name="worker") as c: ...`.

    namespace None is $MBX_NAMESPACE, else "default"; name None lets the broker assign
    one. linger_ms keeps the mailbox that long after the client goes; timeout_ms bounds
    talking to the broker. group=True joins the group of clients serving `name`.
    send_only=True takes no mailbox (sends and publishes only; `name` is a label).
    """

    def __init__(self, namespace: Optional[str] = None, name: Optional[str] = None,
                 linger_ms: int = 0, timeout_ms: int = 5000, group: bool = False,
                 send_only: bool = False):
        opts = N.ConnectOptions()
        N.connect_options_init(ctypes.byref(opts))
        self._ns = _b(namespace)
        self._name = _b(name)
        opts.namespace_name = self._ns
        opts.client_name = self._name
        opts.linger_ms = linger_ms
        opts.timeout_ms = _timeout(timeout_ms)
        opts.group = 1 if group else 0
        opts.send_only = 1 if send_only else 0
        opts.signals = 1  # a signal ends a sleeping call: see "signals and Ctrl-C" above
        handle = N.c_client_p()
        check(N.connect(ctypes.byref(opts), ctypes.byref(handle)),
              f"connect to {namespace or N.default_namespace().decode()}")
        self._c = handle
        # Per thread: send options and a receive buffer (see _per_thread); every buffer
        # made is listed, so that close() frees them whichever thread made them.
        self._local = threading.local()
        self._buffers_lock = threading.Lock()
        self._buffers: List[int] = []
        # Messages taken but not handed out when a signal's exception came (see _rescue):
        # the next recv() returns them first; replies by request id for recv_reply().
        self._held: "collections.deque[Message]" = collections.deque()
        self._held_replies: Dict[int, Message] = {}
        # Native messages of requests handed out (reply() needs them), freed once their
        # Message is gone: its weak reference lands in _dead (a C-level append, no
        # Python code runs then), and the next request taken, or close(), frees them.
        self._owned: Dict[Any, int] = {}
        self._dead: List[Any] = []
        self.namespace = namespace or N.default_namespace().decode()
        self._my_name = N.client_name(self._c).decode()

    # ---- life -------------------------------------------------------------------------

    def close(self) -> None:
        """Gives the mailbox back (waiting messages are discarded). Idempotent."""
        if getattr(self, "_c", None):
            N.close(self._c)
            self._c = None
        lock = getattr(self, "_buffers_lock", None)
        if lock is not None:
            with lock:
                buffers, self._buffers = self._buffers, []
                owned, self._owned = self._owned, {}
            for native in buffers:
                N.message_free(native)
            for ref, native in owned.items():
                message = ref()
                if message is not None:
                    message._native = None  # reply() now says "not a request"
                N.message_free(native)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        self.close()

    def _send_options(self) -> "tuple":
        """This thread's SendOptions for this client, and a reference to it."""
        mine = getattr(self._local, "opts", None)
        if mine is None:
            opts = N.SendOptions()
            N.send_options_init(ctypes.byref(opts))
            mine = self._local.opts = (opts, ctypes.byref(opts))
        return mine

    def _buffer(self) -> int:
        """This thread's receive buffer for this client."""
        native = getattr(self._local, "msg", None)
        if native is None:
            native = N.message_new()
            if not native:
                raise MemoryError("mbx_message_new")
            with self._buffers_lock:
                self._buffers.append(native)
            self._local.msg = native
        return native

    def _handle(self):
        if not self._c:
            raise InvalidArgument("client is closed")
        return self._c

    @property
    def name(self) -> str:
        return N.client_name(self._handle()).decode()

    @property
    def max_message(self) -> int:
        return N.max_message(self._handle())

    # ---- sending ----------------------------------------------------------------------

    def send(self, to: str, obj: Body, timeout_ms: int = 5000, wait_ms: int = 0) -> None:
        """Sends obj (any JSON-serialisable value, or str/bytes holding JSON) to `to`,
        waiting up to timeout_ms for room and up to wait_ms for `to` to appear."""
        data, trusted = _encode(obj)
        opts, opts_ref = getattr(self._local, "opts", None) or self._send_options()
        ms = opts.timeout_ms = _timeout(timeout_ms)
        wait = opts.wait_ms = min(int(wait_ms), _INT_MAX)  # 0: not at all (no "no limit")
        if wait < 0:
            raise ValueError(f"wait_ms must be at least 0, not {wait_ms}")
        opts.trusted = trusted
        c = self._c or self._handle()
        code = N.send_ex(c, to.encode(), data, len(data), opts_ref)
        # Nothing was sent: again, with the time left. The wait the signal cut short is
        # not known (the clock is not read on the common path): a handler that returns
        # may stretch the timeout once, by that wait at most.
        start = _monotonic() if code == _ESIGNAL else 0.0
        while code == _ESIGNAL:
            spent = int((_monotonic() - start) * 1000)
            opts.timeout_ms = ms if ms < 0 else max(0, ms - spent)
            opts.wait_ms = max(0, wait - spent)
            code = N.send_ex(c, to.encode(), data, len(data), opts_ref)
        if code:
            check(code, f"send to {to}")

    def publish(self, topic: str, obj: Body, retain: bool = False,
                timeout_ms: int = 5000) -> PublishResult:
        """Publishes obj on topic to every subscriber. Raises Full (with .subscriber) when
        a block-policy subscriber stayed full for timeout_ms, and Signalled when a signal
        whose handler returned ended that wait."""
        data, trusted = _encode(obj)
        result = N.PublishResult()
        opts = N.PublishOptions()
        N.publish_options_init(ctypes.byref(opts))
        opts.trusted = trusted
        opts.timeout_ms = _timeout(timeout_ms)
        opts.retain = 1 if retain else 0
        opts.result = ctypes.pointer(result)
        code = N.publish(self._handle(), topic.encode(), data, len(data), ctypes.byref(opts))
        if code == Full.code:
            err = Full(f"publish on {topic}: subscriber {result.full.decode()!r}")
            err.subscriber = result.full.decode()
            raise err
        check(code, f"publish on {topic} (delivered to {result.delivered})")
        return PublishResult(result.delivered, result.dropped)

    def subscribe(self, pattern: str, policy: str = "drop") -> None:
        """Subscribes to the topics pattern selects ('*' one token, '>' the rest); policy
        'drop' (miss what comes while the mailbox is full) or 'block' (publishers wait)."""
        if policy not in POLICIES:
            raise InvalidArgument(f"policy {policy!r}: use 'drop' or 'block'", 12)
        opts = N.SubscribeOptions(POLICIES[policy])
        check(N.subscribe(self._handle(), pattern.encode(), ctypes.byref(opts)),
              f"subscribe to {pattern}")

    def unsubscribe(self, pattern: str) -> None:
        check(N.unsubscribe(self._handle(), pattern.encode()), f"unsubscribe from {pattern}")

    # ---- receiving --------------------------------------------------------------------

    def recv(self, timeout_ms: Optional[float] = None) -> Message:
        """The next message, waiting up to timeout_ms (None: without limit). Raises
        Timeout when none came."""
        if self._held:
            # Indexing and del run no signal handler between them (a call would): a held
            # message is either still held or returned.
            msg = self._held[0]
            del self._held[0]
            return msg
        local = self._local
        native = getattr(local, "msg", None) or self._buffer()
        c = self._c or self._handle()
        ms = _timeout(timeout_ms)
        msg = None
        try:
            # The first wait inline (the common case is one call): a slice in the main
            # thread (see _sliced). The clock is read only when that was not the end.
            first = ms
            if ms != 0 and (ms < 0 or ms > _SLICE_MS) and _get_ident() == _MAIN:
                first = _SLICE_MS
            code = N.recv(c, native, first)
            if code == _ESIGNAL or (code == _ETIMEDOUT and first != ms):
                # Time spent: a slice that ran out is known; the wait a signal cut short
                # is not, so a returning handler may stretch the timeout once, by that
                # wait at most.
                start = _monotonic() - (first / 1000 if code == _ETIMEDOUT else 0)
                code = _wait_on(lambda t: N.recv(c, native, t), ms, start, code, first)
            if not code:
                msg = _message_from(native, self._my_name)
                if msg.kind == "request":
                    self._keep_request(msg, native)
        except BaseException:
            self._rescue(native)
            raise
        if code:
            check(code, "receive")
        local.given = msg
        return msg

    def _keep_request(self, msg: Message, native: int) -> None:
        """A request keeps this thread's buffer (reply() needs it); the thread gets a fresh
        one at its next receive."""
        with self._buffers_lock:
            self._buffers.remove(native)
        self._local.msg = None
        self._own(msg, native)

    def _own(self, msg: Message, native: int) -> None:
        """msg (a request) keeps native until it is gone; frees those of requests gone."""
        msg._native = native
        ref = weakref.ref(msg, self._dead.append)
        self._owned[ref] = native
        while self._dead:
            native = self._owned.pop(self._dead.pop(), None)
            if native:
                N.message_free(native)

    def _rescue(self, native: int) -> None:
        """An exception (a signal handler's KeyboardInterrupt) came while recv() ran. If
        the library had taken a message into this thread's buffer that recv() did not
        hand out, it is kept for the next recv(): a message leaves the mailbox only when
        it is returned."""
        f, ref = _fields()
        N.message_fields_get(native, ref)
        if not f.sender:
            return  # the buffer never held a message
        given = getattr(self._local, "given", None)
        if given is not None and given.seq == f.seq and given.ts == f.ts_us and \
                given.sender == f.sender.decode():
            return  # the last message handed out: nothing new was taken
        msg = _message_from(native, self._my_name)
        if msg.kind == "request":  # it keeps the buffer, as _take would have done
            with self._buffers_lock:
                if native in self._buffers:
                    self._buffers.remove(native)
            if getattr(self._local, "msg", None) is native:
                self._local.msg = None
            self._own(msg, native)
        self._local.given = msg
        self._held.append(msg)

    def recv_batch(self, n: int, timeout_ms: Optional[float] = None) -> List[Message]:
        """Waits up to timeout_ms for one message, then takes up to n of those waiting."""
        if n < 1:
            raise InvalidArgument(f"n = {n}", 12)
        if self._held:  # as in recv(): the held list is replaced, never taken from
            held = self._held
            out = list(itertools.islice(held, n))
            rest = collections.deque(itertools.islice(held, n, None))
            self._held = rest
            return out
        natives = (N.c_message_p * n)()
        for i in range(n):
            natives[i] = N.message_new()
        got = ctypes.c_size_t()
        c = self._handle()
        out: List[Message] = []
        kept = False  # out is in _held already
        try:
            code = _blocking(lambda t: N.recv_batch(c, natives, n, ctypes.byref(got), t),
                             _timeout(timeout_ms))
            if not code:
                out = [_message_from(natives[i], self._my_name)
                       for i in range(got.value)]
                for i, msg in enumerate(out):
                    if msg.kind == "request":  # it keeps its native message
                        native, natives[i] = natives[i], None
                        self._own(msg, native)
        except BaseException:
            # Taken and not handed out (a KeyboardInterrupt): kept for the next receive.
            for i in range(got.value):
                if natives[i] is None:  # a request already converted and kept
                    self._held.append(out[i])
                elif N.message_from(natives[i]):
                    msg = _message_from(natives[i], self._my_name)
                    if msg.kind == "request":
                        native, natives[i] = natives[i], None
                        self._own(msg, native)
                    self._held.append(msg)
            kept = True
            raise
        finally:
            try:
                for i in range(n):
                    if natives[i]:
                        N.message_free(natives[i])
            except BaseException:  # a KeyboardInterrupt after the take: keep them
                if not kept:
                    self._held.extend(out)
                raise
        if code:
            check(code, "receive")
        return out

    def __iter__(self) -> Iterator[Message]:
        """Messages as they come, until the namespace shuts down."""
        while True:
            try:
                yield self.recv()
            except Shutdown:
                return

    # ---- request and reply --------------------------------------------------------------

    def request(self, to: str, obj: Body, timeout_ms: int = 5000) -> Message:
        """Sends a request to `to` and waits for its reply; other messages stay queued.
        Interrupted (KeyboardInterrupt, an exception of any kind), it gives the request
        up: a reply that comes later is dropped. A signal whose handler returns ends it
        with Signalled (the library gave the request up: sending it again could have it
        served twice).

        One call into the library: a request_send() and a recv_reply() from Python cost
        a second hand-over of the interpreter's lock, which a responder in a thread of
        the same process pays for on every round trip (+25 us measured). The price: no
        50 ms slices, so a Ctrl-C that lands in the microseconds before the library
        holds signals waits for the reply or the timeout (docs/python.md, "Signals")."""
        data, _ = _encode(obj)
        native = N.message_new()
        try:
            code = N.request(self._c or self._handle(), to.encode(), data, len(data), native,
                             _timeout(timeout_ms))
            if code:
                check(code, f"request to {to}")
            return _message_from(native)
        finally:
            N.message_free(native)

    def request_send(self, to: str, obj: Body, timeout_ms: int = 5000) -> int:
        """Sends a request and returns its id; see recv_reply()."""
        data, _ = _encode(obj)
        rid = ctypes.c_uint64(0)
        c = self._handle()
        to_b = to.encode()
        try:
            code = _blocking(lambda t: N.request_send(c, to_b, data, len(data), t,
                                                      ctypes.byref(rid)),
                             _timeout(timeout_ms), sliced=False)
            check(code, f"request to {to}")
        except BaseException:
            # Sent, then a KeyboardInterrupt before the caller got its id: nobody could
            # ever take the reply, so the request is given up (its reply is dropped).
            if rid.value:
                _cancel_quietly(c, rid.value)
            raise
        return rid.value

    def recv_reply(self, request_id: int, timeout_ms: Optional[float] = None) -> Message:
        """The reply to request_id, taken past other messages (which stay queued)."""
        held = self._held_replies.get(request_id)
        if held is not None:
            del self._held_replies[request_id]  # as in recv(): no call in between
            return held
        native = N.message_new()
        c = self._handle()
        msg = None
        try:
            code = _blocking(lambda t: N.recv_reply(c, request_id, native, t),
                             _timeout(timeout_ms))
            if not code:
                msg = _message_from(native)
        except BaseException:
            if N.message_from(native):
                # Taken, then a KeyboardInterrupt: the next call for this id returns it.
                self._held_replies[request_id] = _message_from(native)
            N.message_free(native)
            raise
        try:
            N.message_free(native)
        except BaseException:  # a KeyboardInterrupt as the buffer went: keep the reply
            if msg is not None:
                self._held_replies[request_id] = msg
            raise
        if code:  # no call on the way out with a reply in hand
            check(code, "receive reply")
        return msg

    def request_cancel(self, request_id: int) -> None:
        """Gives up request_id (from request_send): a reply that comes later is dropped
        (counted in late_replies). Raises InvalidArgument when it does not wait any more."""
        self._held_replies.pop(request_id, None)
        check(N.request_cancel(self._handle(), request_id), "cancel request")

    def reply(self, msg: Message, obj: Body, timeout_ms: int = 5000) -> None:
        """Answers a request (msg.kind == 'request') with obj."""
        if msg.kind != "request" or not msg._native:
            raise InvalidArgument("not a request", 12)
        data, _ = _encode(obj)
        c = self._handle()
        code = _blocking(lambda t: N.reply(c, msg._native, data, len(data), t),
                         _timeout(timeout_ms), sliced=False)
        check(code, f"reply to {msg.sender}")

    # ---- event loops and peers ----------------------------------------------------------

    def fileno(self) -> int:
        """The wake handle: readable whenever a message waits that was not taken (an fd
        on POSIX, a HANDLE on Windows). Receive with timeout_ms=0 until Timeout."""
        h = N.c_handle()
        check(N.wait_handle(self._handle(), ctypes.byref(h)), "wake handle")
        return h.value

    def interrupt(self) -> None:
        """Makes a receive blocked on this client (or the next one) raise Interrupted.
        Any thread; safe from a signal handler."""
        check(N.interrupt(self._handle()), "interrupt")

    def wait_for(self, name: str, timeout_ms: Optional[float] = 5000) -> None:
        """Returns once a send to name would be accepted; raises Timeout."""
        wait_for(name, timeout_ms, namespace=self.namespace)


def wait_for(name: str, timeout_ms: Optional[float] = 5000,
             namespace: Optional[str] = None) -> None:
    """Waits until a client called name is there (and a broker, when none runs yet)."""
    ns, name_b = _b(namespace), name.encode()
    check(_blocking(lambda t: N.wait_for(ns, name_b, t), _timeout(timeout_ms)),
          f"wait for {name}")


def where(namespace: Optional[str] = None) -> str:
    """Where a client looks for the namespace's broker (the control socket's path in each
    runtime directory, or the broker's pipe on Windows): what to say with NoBroker."""
    buf = ctypes.create_string_buffer(1024)
    check(N.where(_b(namespace), buf, len(buf)), "where")
    return buf.value.decode()


def inspect(namespace: Optional[str] = None) -> NamespaceInfo:
    """The namespace and its clients (with their subscriptions), without connecting."""
    subs: dict = {}

    def on_sub(info, _arg):
        s = info.contents
        subs.setdefault(s.slot, []).append(
            {"pattern": s.pattern.decode(), "policy": "block" if s.policy == 1 else "drop"})
        return 0

    clients: List[ClientInfo] = []

    def on_client(info, _arg):
        c = info.contents
        clients.append(ClientInfo(c.name.decode(), c.slot, c.pid, c.waiting, c.sent,
                                  c.received, c.refused_full, bool(c.lingering), c.late_replies,
                                  bool(c.group), subs.get(c.slot, []), c.dropped,
                                  c.senders_waiting))
        return 0

    ns = _b(namespace)
    sub_cb = N.SUBSCRIPTION_VISITOR(on_sub)
    check(N.inspect_subscriptions(ns, sub_cb, None), "inspect")
    info = N.NamespaceInfo()
    client_cb = N.CLIENT_VISITOR(on_client)
    check(N.inspect(ns, ctypes.byref(info), client_cb, None), "inspect")
    return NamespaceInfo(info.namespace_name.decode(), info.broker_pid, info.uptime_s,
                         info.epoch, info.slots, info.depth, info.max_message,
                         info.segment_bytes, info.discarded, info.max_subscriptions,
                         info.subscriptions, info.max_retained, info.retained, clients,
                         info.total_sent, info.total_received, info.total_refused_full,
                         info.clients_seen, info.mailbox_bytes)
