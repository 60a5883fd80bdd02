"""A minimal NATS client over a plain socket, for tests that watch or poke subjects.

The NATS client protocol is text lines (INFO, CONNECT, PUB, SUB, UNSUB, PING/PONG, MSG,
+OK/-ERR), so a test can speak it directly and depend on nothing but the standard
library; it is also what the bridge's traffic looks like on the wire, which makes a
failing test easy to read. No headers (HPUB/HMSG), TLS, auth or reconnection.

    with NatsConn("nats://127.0.0.1:4222") as nc:
        nc.sub("mbx.>", sid=1)
        nc.flush()                        # the server has the subscription now
        nc.pub("mbx.app.worker", b'{"job":42}')
        msg = nc.next_msg(timeout=5)      # Msg(subject, sid, reply, data)
"""

import collections
import itertools
import json
import socket
import time
from urllib.parse import urlsplit

Msg = collections.namedtuple("Msg", "subject sid reply data")


class NatsProtocolError(RuntimeError):
    pass


def _split_url(url):
    """(host, port) of the first URL of "nats://h:p[,nats://h:p...]" (or "h:p")."""
    first = url.split(",")[0].strip()
    if "://" not in first:
        first = "nats://" + first
    parts = urlsplit(first)
    return parts.hostname or "127.0.0.1", parts.port or 4222


class NatsConn:
    def __init__(self, url, name="natsproto", timeout=5.0):
        host, port = _split_url(url)
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.msgs = collections.deque()  # MSGs read while waiting for something else
        self._inbox_ids = itertools.count(1)
        self._sids = itertools.count(1000)  # above the small sids tests pick by hand
        line = self._read_line(time.monotonic() + timeout)
        if not line.startswith(b"INFO "):
            raise NatsProtocolError("expected INFO, got %r" % line[:200])
        self.info = json.loads(line[5:])
        connect = {"verbose": False, "pedantic": False, "lang": "python-test",
                   "version": "0", "protocol": 1, "name": name}
        self._send(b"CONNECT " + json.dumps(connect).encode() + b"\r\n")
        self.flush(timeout)

    # -- sending ---------------------------------------------------------------------

    def _send(self, data):
        self.sock.sendall(data)

    def pub(self, subject, data=b"", reply=None):
        if isinstance(data, str):
            data = data.encode()
        head = "PUB %s %s%d\r\n" % (subject, reply + " " if reply else "", len(data))
        self._send(head.encode() + data + b"\r\n")

    def sub(self, subject, sid=None, queue=None):
        """Subscribes; returns the sid. Call flush() to know the server has it."""
        sid = next(self._sids) if sid is None else sid
        self._send(("SUB %s %s%s\r\n" % (subject, queue + " " if queue else "", sid)).encode())
        return sid

    def unsub(self, sid, max_msgs=None):
        self._send(("UNSUB %s%s\r\n" % (sid, " %d" % max_msgs if max_msgs else "")).encode())

    def flush(self, timeout=5.0):
        """PING, and wait for the PONG: everything sent before is processed by then."""
        self._send(b"PING\r\n")
        deadline = time.monotonic() + timeout
        while True:
            if self._read_one(deadline) == "PONG":
                return

    def request(self, subject, data=b"", timeout=5.0):
        """Publishes with a fresh reply subject and returns the first reply's Msg."""
        inbox = "_INBOX.natsproto.%d.%d" % (id(self), next(self._inbox_ids))
        sid = self.sub(inbox)
        self.unsub(sid, 1)
        self.pub(subject, data, reply=inbox)
        return self.next_msg(timeout, sid=sid)

    # -- receiving -------------------------------------------------------------------

    def next_msg(self, timeout=5.0, sid=None):
        """The next MSG (of subscription sid, if given; others are kept for later).
        Raises TimeoutError when none comes in time."""
        deadline = time.monotonic() + timeout
        while True:
            for i, msg in enumerate(self.msgs):
                if sid is None or msg.sid == sid:
                    del self.msgs[i]
                    return msg
            self._read_one(deadline)

    def _read_one(self, deadline):
        """Reads one protocol message; returns its verb. MSGs are queued in self.msgs."""
        line = self._read_line(deadline)
        verb, _, rest = line.partition(b" ")
        verb = verb.upper()
        if verb == b"MSG":
            args = rest.split()
            if len(args) == 3:
                subject, sid, size = args
                reply = None
            elif len(args) == 4:
                subject, sid, reply, size = args
                reply = reply.decode()
            else:
                raise NatsProtocolError("bad MSG line %r" % line)
            data = self._read_exact(int(size) + 2, deadline)[:-2]
            self.msgs.append(Msg(subject.decode(), int(sid), reply, data))
        elif verb == b"PING":
            self._send(b"PONG\r\n")
        elif verb == b"-ERR":
            raise NatsProtocolError("server: %s" % rest.decode(errors="replace"))
        elif verb not in (b"PONG", b"+OK", b"INFO"):
            raise NatsProtocolError("unexpected %r" % line[:200])
        return verb.decode()

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("natsproto: nothing from the server in time")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("natsproto: nothing from the server in time") from None
        if not chunk:
            raise ConnectionError("natsproto: the server closed the connection")
        self.buf += chunk

    def _read_line(self, deadline):
        while b"\r\n" not in self.buf:
            self._fill(deadline)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read_exact(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
