"""The synchronous client: Client, Message, inspect() and wait_for()."""
from __future__ import annotations

import ctypes
import json
import threading
from dataclasses import dataclass
from typing import Any, Iterator, List, Optional, Tuple, Union

from . import _native as N
from .errors import Full, InvalidArgument, Shutdown, Timeout, check

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


class Message:
    """One received message. `body` is the decoded JSON value, `raw` its text."""

    __slots__ = ("sender", "to", "seq", "ts", "raw", "kind", "correlation", "topic", "missed",
                 "_native", "_body")

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

    def __del__(self):
        if self._native:
            N.message_free(self._native)
            self._native = None


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


def _message_from(native: int, keep: bool, to: Optional[str] = None) -> Message:
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
    if keep:
        msg._native = native
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
        handle = N.c_client_p()
        check(N.connect(ctypes.byref(opts), ctypes.byref(handle)),
              f"connect to {namespace or N.default_namespace().decode()}")
        self._c = handle
        # Per thread: send options and a receive buffer (see _per_thread); every buffer
        # made is listed, so that close() frees them whichever thread made them.
        self._local = threading.local()
        self._buffers_lock = threading.Lock()
        self._buffers: List[int] = []
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
            for native in buffers:
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
        opts, opts_ref = self._send_options()
        opts.timeout_ms = _timeout(timeout_ms)
        opts.wait_ms = min(int(wait_ms), _INT_MAX)  # 0: not at all (no "no limit" here)
        if opts.wait_ms < 0:
            raise ValueError(f"wait_ms must be at least 0, not {wait_ms}")
        opts.trusted = trusted
        code = N.send_ex(self._c or self._handle(), to.encode(), data, len(data),
                         opts_ref)
        if code:
            check(code, f"send to {to}")

    def publish(self, topic: str, obj: Body, retain: bool = False,
                timeout_ms: int = 5000) -> PublishResult:
        """Publishes obj on topic to every subscriber. Raises Full (with .subscriber) when
        a block-policy subscriber stayed full for timeout_ms."""
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
        check(code, f"publish on {topic}")
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
        native = self._buffer()
        code = N.recv(self._c or self._handle(), native, _timeout(timeout_ms))
        if code:
            check(code, "receive")
        return self._take(native)

    def _take(self, native: int) -> Message:
        """A Message of what this thread's buffer holds. A request keeps its native message
        (reply() needs it) and the thread gets a fresh buffer."""
        msg = _message_from(native, False, self._my_name)
        if msg.kind == "request":
            with self._buffers_lock:
                self._buffers.remove(native)
            self._local.msg = None
            msg._native = native
        return msg

    def recv_batch(self, n: int, timeout_ms: Optional[float] = None) -> List[Message]:
        """Waits up to timeout_ms for one message, then takes up to n of those waiting."""
        if n < 1:
            raise InvalidArgument(f"n = {n}", 12)
        natives = (N.c_message_p * n)()
        for i in range(n):
            natives[i] = N.message_new()
        got = ctypes.c_size_t()
        try:
            check(N.recv_batch(self._handle(), natives, n, ctypes.byref(got),
                               _timeout(timeout_ms)), "receive")
            out = []
            for i in range(got.value):
                keep = N.message_kind(natives[i]) == 1
                out.append(_message_from(natives[i], keep=keep))
                if keep:
                    natives[i] = None
            return out
        finally:
            for i in range(n):
                if natives[i]:
                    N.message_free(natives[i])

    def __iter__(self) -> Iterator[Message]:
        """Messages as they come, until the namespace shuts down."""
        while True:
            try:
                yield self.recv()
            except Shutdown:
                return

    # ---- request and reply --------------------------------------------------------------

    def request(self, to: str, obj: Body, timeout_ms: int = 5000) -> Message:
        """Sends a request to `to` and waits for its reply; other messages stay queued."""
        data, _ = _encode(obj)
        native = N.message_new()
        try:
            check(N.request(self._handle(), to.encode(), data, len(data), native,
                            _timeout(timeout_ms)), f"request to {to}")
            return _message_from(native, keep=False)
        finally:
            N.message_free(native)

    def request_send(self, to: str, obj: Body, timeout_ms: int = 5000) -> int:
        """Sends a request and returns its id; see recv_reply()."""
        data, _ = _encode(obj)
        rid = ctypes.c_uint64()
        check(N.request_send(self._handle(), to.encode(), data, len(data), _timeout(timeout_ms),
                             ctypes.byref(rid)), f"request to {to}")
        return rid.value

    def recv_reply(self, request_id: int, timeout_ms: Optional[float] = None) -> Message:
        """The reply to request_id, taken past other messages (which stay queued)."""
        native = N.message_new()
        try:
            check(N.recv_reply(self._handle(), request_id, native, _timeout(timeout_ms)),
                  "receive reply")
            return _message_from(native, keep=False)
        finally:
            N.message_free(native)

    def request_cancel(self, request_id: int) -> None:
        """Gives up request_id (from request_send): a reply that comes later is dropped
        (counted in late_replies). Raises InvalidArgument when it does not wait any more."""
        check(N.request_cancel(self._handle(), request_id), "cancel request")

    def reply(self, msg: Message, obj: Body, timeout_ms: int = 5000) -> None:
        """Answers a request (msg.kind == 'request') with obj."""
        if msg.kind != "request" or not msg._native:
            raise InvalidArgument("not a request", 12)
        data, _ = _encode(obj)
        check(N.reply(self._handle(), msg._native, data, len(data), _timeout(timeout_ms)),
              f"reply to {msg.sender}")

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
    check(N.wait_for(_b(namespace), name.encode(), _timeout(timeout_ms)), f"wait for {name}")


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
