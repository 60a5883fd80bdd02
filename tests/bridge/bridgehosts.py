"""Hosts for the mailbox-bridge tests: one Host stands for one machine (Python 3 standard
library only).

    host = Host("A", namespace, workdir, nats_urls="nats://127.0.0.1:P", cluster="c1")
    host.start()                       # mailboxd, then mailbox-bridge (bridge=True)
    host.mbx("send", "worker", "{}")   # CompletedProcess, with this host's environment
    rx = host.spawn("recv", "worker", "-c", "1", "--ready")   # a background mbx
    rx.wait_ready(); rx.wait(); rx.lines()
    host.close()                       # everything stopped; returns what was left behind

A host has its own MBX_RUNTIME_DIR (mode 0700, a short folder in the temporary directory:
socket paths are limited to 108 bytes; logs and outputs go under workdir), its own `mailboxd -N NS`
(ready once its --pidfile is written) and, when asked, a `mailbox-bridge -N NS --node NODE
--nats URLS --cluster C` whose standard error goes to a log file (log_tail() for failure
messages). Hosts of one test share the namespace's name but not its runtime directory, so
they are separate namespaces joined only by their bridges, as on separate machines.

Programs: $MBX_BIN (mbx), $MAILBOXD (mailboxd), $MBX_BRIDGE (mailbox-bridge); ctest sets
them. Every child runs in a process group of its own, dies with the thread that started it
(PR_SET_PDEATHSIG) and has a time limit; close() stops them all, then checks that no
process of the host's runtime directory lives on, that the runtime directory is empty once
the broker stopped (then removes it) and that no /dev/shm entry (segment or semaphore)
names the namespace: the segment is a memfd, so there should be none.
"""

import atexit
import ctypes
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

BROKER_START_TIMEOUT = 10.0
BRIDGE_START_TIMEOUT = 20.0
STOP_GRACE = 5.0
MBX_TIMEOUT = 30.0  # default limit of one foreground mbx command
SPAWN_TIMEOUT = 120.0  # default limit of one background process

_counter = itertools.count(1)


def program(env_var, default_name):
    """The path of a program from the environment (ctest sets it), else PATH; None when
    it is not found."""
    path = os.environ.get(env_var) or shutil.which(default_name)
    if path and os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    return None


def mbx_bin():
    return program("MBX_BIN", "mbx")


def mailboxd_bin():
    return program("MAILBOXD", "mailboxd")


def bridge_bin():
    return program("MBX_BRIDGE", "mailbox-bridge")


def unique_namespace():
    """A test namespace name the ctest leftovers check recognises (mbxtest-<tag>-...)."""
    tag = os.environ.get("MBX_TEST_TAG") or "local"
    return "mbxtest-%s-br%d-%d" % (tag, os.getpid(), next(_counter))


def unique_token(prefix="c"):
    """A short word usable as a NATS subject token and a mailbox name (cluster names)."""
    return "%s%dx%d" % (prefix, os.getpid(), next(_counter))


def _preexec():
    """preexec_fn: die with the starting thread (Linux), so nothing outlives a killed test."""
    parent = os.getpid()

    def preexec():
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
            if os.getppid() != parent:
                os._exit(1)

    return preexec


def _signal_group(proc, sig):
    """Signals the process group proc leads (it was started with a session of its own).
    Only while proc is not reaped, so the group id cannot have been reused."""
    if proc.poll() is not None:
        # Reaped: its own pid may be reused, but members of its group (children of an
        # --exec, say) may still live; the group id stays reserved while any does.
        pass
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _tail(path, lines=40):
    try:
        with open(path, "r", errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return "(no log: %s)\n" % e


class Background:
    """A background process (mbx recv/reply/sub, ...): its own process group, standard
    output and error in files, killed after its time limit and at the host's close()."""

    def __init__(self, argv, env, folder, label, timeout=SPAWN_TIMEOUT):
        self.argv = list(argv)
        self.label = label
        self.out_path = os.path.join(folder, label + ".out")
        self.err_path = os.path.join(folder, label + ".err")
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(self.argv, env=env, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, start_new_session=True,
                                         preexec_fn=_preexec(), close_fds=True)
        self.timed_out = False
        self.logs = None  # a function giving the hosts' logs, for failure messages
        self._timer = threading.Timer(timeout, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self):
        self.timed_out = True
        self.kill()

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc.poll() is None

    def stdout(self):
        with open(self.out_path, "r", errors="replace") as f:
            return f.read()

    def stderr(self):
        with open(self.err_path, "r", errors="replace") as f:
            return f.read()

    def lines(self):
        """Complete lines of standard output so far."""
        text = self.stdout()
        return text.split("\n")[:-1]

    def json_lines(self):
        return [json.loads(line) for line in self.lines()]

    def describe(self):
        rc = self.proc.poll()
        return ("%s (pid %d, %s)\n  argv: %s\n  stdout: %s\n  stderr: %s"
                % (self.label, self.pid, "running" if rc is None else "exit %s" % rc,
                   " ".join(self.argv), self.stdout()[-2000:], self.stderr()[-2000:]))

    def wait_ready(self, timeout=10.0):
        """Waits for the "ready NAME" line of --ready on standard error."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "ready " in self.stderr():
                return
            if not self.running():
                raise AssertionError("exited before it was ready: " + self.describe())
            time.sleep(0.02)
        raise AssertionError("not ready after %.0f s: %s" % (timeout, self.describe()))

    def wait_lines(self, n, timeout=15.0):
        """Waits until standard output holds at least n lines; returns them all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self.lines()
            if len(lines) >= n:
                return lines
            if not self.running():
                lines = self.lines()
                if len(lines) >= n:
                    return lines
                raise AssertionError("exited with %d of %d lines: %s" % (len(lines), n, self.describe()))
            time.sleep(0.02)
        raise AssertionError("%d of %d lines after %.0f s: %s\n%s"
                             % (len(self.lines()), n, timeout, self.describe(),
                                self.logs() if self.logs else ""))

    def wait(self, timeout=30.0):
        """Its exit status (negative: a signal); killed if it has not ended in time."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait(timeout=STOP_GRACE)
            raise AssertionError("did not end within %.0f s: %s\n%s"
                                 % (timeout, self.describe(), self.logs() if self.logs else ""))
        self._timer.cancel()
        return rc

    def signal(self, sig):
        """Sends sig to the whole process group (an --exec child included)."""
        _signal_group(self.proc, sig)

    def terminate(self, timeout=STOP_GRACE):
        """SIGTERM, then SIGKILL after timeout; returns the exit status."""
        if self.running():
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        return self.proc.wait(timeout=STOP_GRACE)

    def kill(self):
        _signal_group(self.proc, signal.SIGKILL)

    def close(self):
        self._timer.cancel()
        self.kill()  # the group: children of --exec too
        try:
            self.proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            pass


class Host:
    """One machine: a runtime directory, a broker, a bridge, and the mbx commands run
    there. broker_args go to mailboxd (e.g. ["--depth", "4"]), bridge_args to the bridge."""

    def __init__(self, node, namespace, workdir, nats_urls=None, cluster=None,
                 broker_args=(), bridge_args=()):
        self.node = node
        self.namespace = namespace
        self.folder = os.path.join(str(workdir), "host-" + node)
        os.makedirs(self.folder, exist_ok=True)
        # Not under workdir: a control socket's path must fit in sun_path (108 bytes),
        # and pytest's tmp_path is long. mkdtemp makes it mode 0700.
        self.runtime_dir = tempfile.mkdtemp(prefix="mbxh-%s-" % node)
        os.chmod(self.runtime_dir, 0o700)
        self.nats_urls = nats_urls
        self.cluster = cluster
        self.broker_args = list(broker_args)
        self.bridge_args = list(bridge_args)
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("MBX_NAMESPACE", "MBX_BROKER_UID", "NATS_URL", "NATS_USER",
                                 "NATS_PASSWORD", "NATS_TOKEN", "NOTIFY_SOCKET", "WATCHDOG_USEC")}
        self.env["MBX_RUNTIME_DIR"] = self.runtime_dir
        self.broker = None
        self.broker_log = os.path.join(self.folder, "mailboxd.log")
        self.pidfile = os.path.join(self.folder, "mailboxd.pid")
        self.bridge = None
        self.bridge_log = os.path.join(self.folder, "bridge.log")
        self.bridge_exits = []  # exit status of every bridge process stopped so far
        self._spawned = []
        self._labels = itertools.count(1)
        self._closed = False
        self.peers = []  # the hosts of the test, this one included (Hosts sets it)
        atexit.register(self.close)  # whatever happens to the test, the folder goes

    def __repr__(self):
        return "Host(%s)" % self.node

    # -- broker ----------------------------------------------------------------------------

    def start_broker(self):
        binary = mailboxd_bin()
        if binary is None:
            raise RuntimeError("mailboxd not found (set $MAILBOXD)")
        if os.path.exists(self.pidfile):
            os.unlink(self.pidfile)
        argv = [binary, "-N", self.namespace, "--pidfile", self.pidfile, "--log", self.broker_log]
        argv += self.broker_args
        with open(self.broker_log + ".stderr", "ab") as err:
            self.broker = subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL,
                                           stdout=subprocess.DEVNULL, stderr=err,
                                           start_new_session=True, preexec_fn=_preexec(),
                                           close_fds=True)
        deadline = time.monotonic() + BROKER_START_TIMEOUT
        while time.monotonic() < deadline:
            if self.broker.poll() is not None:
                raise RuntimeError("mailboxd on %s exited (status %s) while starting:\n%s%s"
                                   % (self.node, self.broker.returncode, _tail(self.broker_log),
                                      _tail(self.broker_log + ".stderr")))
            try:
                with open(self.pidfile) as f:
                    if int(f.read().strip() or 0) == self.broker.pid:
                        return
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        raise RuntimeError("mailboxd on %s not ready after %.0f s:\n%s"
                           % (self.node, BROKER_START_TIMEOUT, _tail(self.broker_log)))

    def stop_broker(self, sig=signal.SIGTERM):
        """Stops the broker; returns its exit status (None if none ran)."""
        if self.broker is None:
            return None
        proc, self.broker = self.broker, None
        if proc.poll() is None:
            _signal_group(proc, sig)
            try:
                return proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
        return proc.wait(timeout=STOP_GRACE)

    # -- bridge ----------------------------------------------------------------------------

    def bridge_argv(self):
        binary = bridge_bin()
        if binary is None:
            raise RuntimeError("mailbox-bridge not found (set $MBX_BRIDGE)")
        argv = [binary, "-N", self.namespace, "--node", self.node, "--log-level", "debug"]
        if self.nats_urls:
            argv += ["--nats", self.nats_urls]
        if self.cluster:
            argv += ["--cluster", self.cluster]
        return argv + self.bridge_args

    def start_bridge(self, wait=True):
        """Starts mailbox-bridge; with wait, returns once it serves bridge.<node> here and
        (as far as its state answer tells) is connected to NATS."""
        if self.bridge is not None and self.bridge.poll() is None:
            raise RuntimeError("the bridge of %s runs already" % self.node)
        with open(self.bridge_log, "ab") as log:
            log.write(b"--- bridgehosts: starting %s\n" % " ".join(self.bridge_argv()).encode())
            log.flush()
            self.bridge = subprocess.Popen(self.bridge_argv(), env=self.env,
                                           stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                           start_new_session=True, preexec_fn=_preexec(),
                                           close_fds=True)
        if wait:
            self.wait_bridge_ready()
        return self.bridge

    def bridge_running(self):
        return self.bridge is not None and self.bridge.poll() is None

    def wait_bridge_ready(self, timeout=BRIDGE_START_TIMEOUT):
        deadline = time.monotonic() + timeout
        name = "bridge." + self.node
        while True:
            left = deadline - time.monotonic()
            if not self.bridge_running():
                raise RuntimeError("mailbox-bridge on %s exited (status %s) while starting:\n%s"
                                   % (self.node, self.bridge.poll() if self.bridge else None,
                                      self.log_tail()))
            if left <= 0:
                raise RuntimeError("mailbox-bridge on %s: %s not there after %.0f s:\n%s"
                                   % (self.node, name, timeout, self.log_tail()))
            if self.mbx("wait", "-t", "500", name, timeout=5).returncode == 0:
                break
        self.wait_nats_connected(max(1.0, deadline - time.monotonic()))

    def bridge_state(self, timeout_ms=2000):
        """The bridge's answer to {"state":true} (a dict), or None without one."""
        r = self.mbx("request", "-t", str(timeout_ms), "bridge." + self.node, '{"state":true}',
                     timeout=timeout_ms / 1000.0 + 10)
        if r.returncode != 0:
            return None
        try:
            state = json.loads(r.stdout)
        except ValueError:
            return None
        return state if isinstance(state, dict) else None

    def wait_nats_connected(self, timeout=BRIDGE_START_TIMEOUT):
        """Waits until the bridge's state says it is connected to NATS. A bridge that does
        not answer its state request in a usable form is not waited for (its own test,
        test_bridge_state, judges the answer): a few tries, then on."""
        deadline = time.monotonic() + timeout
        unusable = 0
        state = None
        while time.monotonic() < deadline:
            if not self.bridge_running():
                raise RuntimeError("mailbox-bridge on %s exited (status %s):\n%s"
                                   % (self.node, self.bridge.poll() if self.bridge else None,
                                      self.log_tail()))
            state = self.bridge_state()
            nats = state.get("nats") if state else None
            if not isinstance(nats, dict):
                unusable += 1
                if unusable >= 3:
                    return state
            elif nats.get("connected"):
                return state
            time.sleep(0.1)
        raise RuntimeError("mailbox-bridge on %s not connected to NATS after %.0f s (state %s):\n%s"
                           % (self.node, timeout, state, self.log_tail()))

    def stop_bridge(self, sig=signal.SIGTERM, timeout=10.0):
        """Stops the bridge with sig (SIGKILL: as a crash); returns its exit status."""
        if self.bridge is None:
            return None
        proc, self.bridge = self.bridge, None
        if proc.poll() is None:
            _signal_group(proc, sig)
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                rc = proc.wait(timeout=STOP_GRACE)
                rc = ("did not stop within %.0f s of signal %d (killed)" % (timeout, sig))
        else:
            rc = proc.returncode
        self.bridge_exits.append(rc)
        with open(self.bridge_log, "ab") as log:
            log.write(b"--- bridgehosts: bridge stopped: %s\n" % str(rc).encode())
        return rc

    def kill_bridge(self):
        return self.stop_bridge(signal.SIGKILL)

    def restart_bridge(self, wait=True):
        self.stop_bridge()
        return self.start_bridge(wait=wait)

    def all_logs(self):
        """The log tails of every host of the test (peers), with their bridges' state."""
        out = []
        for host in self.peers or [self]:
            state = host.bridge_state(timeout_ms=1000) if host.bridge_running() else None
            out.append(host.log_tail() + "--- %s bridge state: %s\n" % (host.node, state))
        return "".join(out)

    def log_tail(self, lines=40):
        return "--- %s bridge log (tail):\n%s--- %s broker log (tail):\n%s" % (
            self.node, _tail(self.bridge_log, lines), self.node, _tail(self.broker_log, 10))

    def start(self, bridge=True):
        self.start_broker()
        if bridge:
            self.start_bridge()
        return self

    # -- clients ---------------------------------------------------------------------------

    def mbx(self, command, *args, timeout=MBX_TIMEOUT, input=None):
        """Runs `mbx COMMAND -N NS ARGS` here; the CompletedProcess (text)."""
        binary = mbx_bin()
        if binary is None:
            raise RuntimeError("mbx not found (set $MBX_BIN)")
        argv = [binary, command, "-N", self.namespace] + [str(a) for a in args]
        return subprocess.run(argv, env=self.env, input=input, capture_output=True, text=True,
                              timeout=timeout, preexec_fn=_preexec(), start_new_session=True)

    def spawn(self, command, *args, timeout=SPAWN_TIMEOUT, argv=None):
        """Starts `mbx COMMAND -N NS ARGS` (or any argv) in the background here."""
        if argv is None:
            binary = mbx_bin()
            if binary is None:
                raise RuntimeError("mbx not found (set $MBX_BIN)")
            argv = [binary, command, "-N", self.namespace] + [str(a) for a in args]
        label = "%s-%s-%d" % (self.node, command, next(self._labels))
        proc = Background(argv, self.env, self.folder, label, timeout=timeout)
        proc.logs = self.all_logs
        self._spawned.append(proc)
        return proc

    def list_json(self):
        r = self.mbx("list", "--json", timeout=10)
        assert r.returncode == 0, "mbx list --json on %s: %s" % (self.node, r.stderr)
        return json.loads(r.stdout)

    def clients(self, name=None):
        """The clients of `mbx list --json` (those of one name)."""
        found = self.list_json()["clients"]
        return [c for c in found if name is None or c["name"] == name]

    def wait_name(self, name, timeout_ms=15000):
        """`mbx wait -t` for a name here; asserts that it came."""
        r = self.mbx("wait", "-t", str(timeout_ms), name, timeout=timeout_ms / 1000.0 + 10)
        assert r.returncode == 0, ("%s never appeared on %s (mbx wait: exit %d %s)\n%s"
                                   % (name, self.node, r.returncode, r.stderr.strip(),
                                      self.all_logs()))

    def wait_until(self, what, predicate, timeout=15.0, interval=0.05):
        """Polls predicate() until it returns a true value (returned) or the deadline."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(interval)
        raise AssertionError("on %s, after %.0f s: %s (last: %r)\n%s"
                             % (self.node, timeout, what, last, self.all_logs()))

    # -- the end ---------------------------------------------------------------------------

    def processes_here(self):
        """Live processes (not us) whose environment names this host's runtime directory."""
        needle = ("MBX_RUNTIME_DIR=" + self.runtime_dir).encode()
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open("/proc/%s/environ" % entry, "rb") as f:
                    env = f.read().split(b"\0")
                if needle not in env or not alive(int(entry)):
                    continue
                with open("/proc/%s/cmdline" % entry, "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            found.append((int(entry), cmd))
        return found

    def close(self):
        """Stops everything of this host; returns a list of what was left behind (empty
        when nothing was). Idempotent."""
        if self._closed:
            return []
        self._closed = True
        atexit.unregister(self.close)
        problems = []
        for proc in self._spawned:
            proc.close()
        self.stop_bridge()
        rc = self.stop_broker()
        if rc not in (None, 0):
            problems.append("%s: mailboxd exited %s on SIGTERM" % (self.node, rc))
        for pid, cmd in self.processes_here():
            problems.append("%s: process %d outlived the test: %s" % (self.node, pid, cmd))
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            left = sorted(os.listdir(self.runtime_dir))
        except OSError:
            left = []
        if left:
            problems.append("%s: runtime directory not empty after the broker stopped: %s"
                            % (self.node, left))
        shutil.rmtree(self.runtime_dir, ignore_errors=True)
        try:
            shm = [e for e in os.listdir("/dev/shm") if self.namespace in e]
        except OSError:
            shm = []
        for entry in shm:
            problems.append("%s: /dev/shm/%s left behind" % (self.node, entry))
            try:
                os.unlink(os.path.join("/dev/shm", entry))
            except OSError:
                pass
        return problems


class Hosts:
    """Several hosts of one namespace and one cluster name, closed together."""

    def __init__(self, workdir, nats_urls, nodes=("A", "B"), broker_args=None, bridge=True,
                 bridge_args=None):
        self.namespace = unique_namespace()
        self.cluster = unique_token("c")
        self.nats_urls = nats_urls
        self.hosts = {}
        self.peers = []
        broker_args = broker_args or {}
        bridge_args = bridge_args or {}
        try:
            for node in nodes:
                urls = nats_urls(node) if callable(nats_urls) else nats_urls
                host = Host(node, self.namespace, workdir, urls, self.cluster,
                            broker_args=broker_args.get(node, ()),
                            bridge_args=bridge_args.get(node, ()))
                self.hosts[node] = host
                host.peers = self.peers
                self.peers.append(host)
                host.start(bridge=bridge)
        except BaseException:
            self.close()
            raise

    def __getitem__(self, node):
        return self.hosts[node]

    def __iter__(self):
        return iter(self.hosts.values())

    def add(self, node, workdir, bridge=True, broker_args=(), bridge_args=()):
        urls = self.nats_urls(node) if callable(self.nats_urls) else self.nats_urls
        host = Host(node, self.namespace, workdir, urls, self.cluster, broker_args, bridge_args)
        self.hosts[node] = host
        host.peers = self.peers
        self.peers.append(host)
        host.start(bridge=bridge)
        return host

    def close(self):
        problems = []
        for host in reversed(list(self.hosts.values())):
            problems += host.close()
        return problems
