"""Real NATS servers on loopback for the bridge tests (Python 3 standard library only).

    with NatsCluster(n=3, workdir=tmp_path) as cluster:
        url = cluster.urls()          # "nats://127.0.0.1:P0,nats://127.0.0.1:P1,..."
        cluster.kill(1)               # SIGKILL, as a crashed host would be
        cluster.restart(1)            # same ports, same JetStream store

Each server gets free ports (client, cluster, HTTP monitoring), its own JetStream store
and its own log file under workdir, and nothing else is written anywhere. Start-up and
restart return only once the server answers its health check (and, while a majority of
a JetStream cluster is up, once there is a meta leader: before that, streams cannot be
created) and has its routes to the other running servers, so a test can publish at once.

Nothing outlives a test run: every server runs in a process group of its own, is stopped
by stop() (idempotent, also called at interpreter exit), and, on Linux, is killed by the
kernel when the thread that started it dies (PR_SET_PDEATHSIG), which covers a test
process that is itself SIGKILLed. Because of that last point, create a NatsCluster from a
thread that lives as long as the cluster (the main thread, in pytest).

The binary: $NATS_SERVER, else nats-server on PATH, else /usr/sbin/nats-server (Debian).
"""

import atexit
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

START_TIMEOUT = 15.0  # seconds for a server to become ready before we give up
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL in stop()

_ports_given = set()


def free_port():
    """A TCP port free on 127.0.0.1 now, never one this process handed out before.

    The port is only free at the time of the call (another process could take it before
    the server binds it); remembering what we gave out at least keeps the servers of one
    test run from being handed the same port twice, which the kernel would otherwise do
    readily once a port has been closed again."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port
    raise RuntimeError("free_port: no new free port after 100 tries")


def find_nats_server():
    """The nats-server binary: $NATS_SERVER, then PATH, then Debian's location."""
    candidates = [os.environ.get("NATS_SERVER"), shutil.which("nats-server"), "/usr/sbin/nats-server"]
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise FileNotFoundError("nats-server not found (set NATS_SERVER, or install Debian's nats-server)")


def _die_with_parent_preexec():
    """preexec_fn: on Linux, have the kernel SIGKILL the server when its parent dies."""
    parent = os.getpid()  # us: the child's parent
    if not sys.platform.startswith("linux"):
        return None

    def preexec():
        PR_SET_PDEATHSIG = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The parent may have died between fork and prctl: then nobody would kill us.
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def _http_get(port, path, timeout=1.0):
    """(status, body) of GET http://127.0.0.1:port/path. http.client rather than urllib:
    urllib would honour an http_proxy from the environment, even for loopback."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class NatsServerError(RuntimeError):
    pass


class _Server:
    """One server of the cluster: its ports, folder and, while it runs, its process."""

    def __init__(self, index, folder):
        self.index = index
        self.name = "n%d" % index
        self.client_port = free_port()
        self.cluster_port = free_port()
        self.http_port = free_port()
        self.folder = folder
        self.store = os.path.join(folder, "store")
        self.log = os.path.join(folder, "server.log")
        self.proc = None

    def running(self):
        return self.proc is not None and self.proc.poll() is None


class NatsCluster:
    def __init__(self, n=3, jetstream=True, workdir=None, cluster_name="mbxtest",
                 start_timeout=START_TIMEOUT, extra_args=()):
        if n < 1:
            raise ValueError("n must be at least 1")
        self.binary = find_nats_server()
        self.n = n
        self.jetstream = jetstream
        self.cluster_name = cluster_name
        self.start_timeout = start_timeout
        self.extra_args = list(extra_args)
        self._own_workdir = workdir is None
        self.workdir = str(workdir) if workdir is not None else tempfile.mkdtemp(prefix="natscluster-")
        self.servers = []
        for i in range(n):
            folder = os.path.join(self.workdir, "server-%d" % i)
            os.makedirs(folder, exist_ok=True)
            self.servers.append(_Server(i, folder))
        self._stopped = False
        atexit.register(self.stop)
        try:
            for server in self.servers:
                self._spawn(server)
            for server in self.servers:
                self._wait_ready(server)
        except BaseException:
            self.stop()
            raise

    # -- addresses -------------------------------------------------------------------

    def url(self, i):
        return "nats://127.0.0.1:%d" % self.servers[i].client_port

    def urls(self):
        return ",".join(self.url(i) for i in range(self.n))

    def pid(self, i):
        """The running server's pid, or None."""
        server = self.servers[i]
        return server.proc.pid if server.running() else None

    def monitor(self, i, path, timeout=1.0):
        """A monitoring endpoint's JSON ("/varz", "/jsz", "/routez", ...) of server i."""
        status, body = _http_get(self.servers[i].http_port, path, timeout)
        if status != 200:
            raise NatsServerError("%s %s: HTTP %d %r" % (self.servers[i].name, path, status, body[:200]))
        return json.loads(body)

    def log_tail(self, i, lines=30):
        try:
            with open(self.servers[i].log, "r", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError as e:
            return "(no log: %s)" % e

    # -- life cycle ------------------------------------------------------------------

    def _command(self, server):
        cmd = [self.binary, "-a", "127.0.0.1", "-p", str(server.client_port),
               "-m", str(server.http_port), "--server_name", server.name]
        if self.jetstream:
            cmd += ["-js", "-sd", server.store]
        if self.n > 1:
            routes = ",".join("nats://127.0.0.1:%d" % other.cluster_port
                              for other in self.servers if other is not server)
            cmd += ["--cluster", "nats://127.0.0.1:%d" % server.cluster_port,
                    "--routes", routes, "--cluster_name", self.cluster_name]
        return cmd + self.extra_args

    def _spawn(self, server):
        # The server logs to stderr; both streams go to its log file, appended to across
        # restarts, so that errors printed before logging starts are kept too.
        with open(server.log, "ab") as log:
            log.write(b"--- natscluster: starting %s\n" % server.name.encode())
            log.flush()
            server.proc = subprocess.Popen(
                self._command(server), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                cwd=server.folder, start_new_session=True,
                preexec_fn=_die_with_parent_preexec(), close_fds=True)

    def _running_count(self):
        return sum(1 for s in self.servers if s.running())

    def _readiness(self, server):
        """None when the server is ready, else why not (for the timeout message)."""
        try:
            # The full /healthz also requires a JetStream meta leader (2.9 answers 503
            # "JetStream has not established contact with a meta leader" until then);
            # without a quorum there is none to wait for, so only JetStream being on.
            quorum = self._running_count() > self.n // 2
            path = "/healthz" if (not self.jetstream or quorum) else "/healthz?js-enabled-only=true"
            status, body = _http_get(server.http_port, path)
            if status != 200:
                return "%s: HTTP %d %s" % (path, status, body[:200].decode(errors="replace"))
            if self.jetstream and self.n > 1 and quorum:
                meta = self.monitor(server.index, "/jsz").get("meta_cluster") or {}
                if not meta.get("leader"):
                    return "/jsz: no meta leader yet"
            if self.n > 1:
                want = self._running_count() - 1
                routes = self.monitor(server.index, "/routez").get("num_routes", 0)
                if routes < want:
                    return "/routez: %d routes of %d" % (routes, want)
            return None
        except (OSError, http.client.HTTPException, ValueError) as e:
            return "monitoring port: %s" % e

    def _wait_ready(self, server):
        deadline = time.monotonic() + self.start_timeout
        why = "not polled yet"
        while time.monotonic() < deadline:
            if not server.running():
                code = server.proc.returncode if server.proc else None
                raise NatsServerError("nats-server %s exited (status %s) while starting; log:\n%s"
                                      % (server.name, code, self.log_tail(server.index)))
            why = self._readiness(server)
            if why is None:
                return
            time.sleep(0.05)
        raise NatsServerError("nats-server %s not ready after %.0f s (%s); log:\n%s"
                              % (server.name, self.start_timeout, why, self.log_tail(server.index)))

    def kill(self, i):
        """SIGKILL server i (its whole process group) and reap it."""
        server = self.servers[i]
        if not server.running():
            return
        _signal_group(server.proc, signal.SIGKILL)
        server.proc.wait(timeout=STOP_GRACE)

    def restart(self, i):
        """Start server i again, with the same ports and store; returns once it is ready."""
        server = self.servers[i]
        if self._stopped:
            raise NatsServerError("restart after stop()")
        if server.running():
            raise NatsServerError("server %d is running; kill(%d) first" % (i, i))
        self._spawn(server)
        self._wait_ready(server)

    def stop(self):
        """Terminate every server, SIGKILL what is left after a grace period. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        for server in self.servers:
            if server.running():
                _signal_group(server.proc, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for server in self.servers:
            if server.proc is None:
                continue
            try:
                server.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(server.proc, signal.SIGKILL)
                server.proc.wait(timeout=STOP_GRACE)
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        return False


def _signal_group(proc, sig):
    """Signal the process group the server leads (start_new_session made it leader).
    Only called on a server not yet reaped, so its pid cannot have been reused."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
