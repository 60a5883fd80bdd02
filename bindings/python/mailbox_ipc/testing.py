"""Running a namespace for tests and benchmarks: MailboxNamespace starts a real mailboxd
on a namespace of its own, makes clients, spawns client processes and, when closed,
reports anything the namespace left behind. The pytest plugin (pytest_plugin.py) wraps
it in the mailbox_ns fixture; it needs no pytest itself."""
from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Sequence, Union

from .client import Client

if TYPE_CHECKING:
    from .aio import AsyncClient


class SetupError(RuntimeError):
    """A program the namespace needs cannot be found."""


def _program(env_var: str, name: str) -> str:
    path = os.environ.get(env_var) or shutil.which(name)
    if not path:
        here = os.path.dirname(os.path.abspath(__file__))
        rec = os.path.join(here, "_bindir.txt")
        if os.path.exists(rec):
            with open(rec, encoding="utf-8") as f:
                path = os.path.normpath(os.path.join(here, f.read().strip(), name))
    if not path or not os.path.exists(path):
        raise SetupError(f"mailbox_ipc: cannot find {name} (set ${env_var})")
    return path


def runtime_dir() -> str:
    """The broker's runtime directory for this user (docs/architecture.md)."""
    if os.environ.get("MBX_RUNTIME_DIR"):
        return os.environ["MBX_RUNTIME_DIR"]
    if os.geteuid() == 0:
        return "/run/mailbox"
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg.startswith("/"):
        return xdg + "/mailbox"
    return f"/tmp/mailbox-{os.geteuid()}"


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _run_target(target: Callable[..., Any], ns: str, args: tuple) -> None:
    _die_with_parent()
    os.environ["MBX_NAMESPACE"] = ns
    rc = target(ns, *args)
    os._exit(rc if isinstance(rc, int) else 0)


class Spawned:
    """A client process started by MailboxNamespace.spawn()."""

    def __init__(self, proc: Union[subprocess.Popen, multiprocessing.Process],
                 timeout_s: float) -> None:
        self.proc = proc
        self._timer = threading.Timer(timeout_s, self.kill)
        self._timer.daemon = True
        self._timer.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait(self, timeout_s: float = 30) -> int:
        """Its exit code (negative: killed by that signal); kills it after timeout_s."""
        if isinstance(self.proc, subprocess.Popen):
            try:
                rc = self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
                rc = self.proc.wait()
        else:
            self.proc.join(timeout_s)
            if self.proc.is_alive():
                self.kill()
                self.proc.join()
            rc = self.proc.exitcode
        self._timer.cancel()
        return rc

    def alive(self) -> bool:
        if isinstance(self.proc, subprocess.Popen):
            return self.proc.poll() is None
        return self.proc.is_alive()

    def kill(self) -> None:
        try:
            os.kill(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, TypeError):
            pass


class MailboxNamespace:
    """A namespace served by a broker of its own, for one test."""

    def __init__(self, name: str, broker_args: Sequence[str] = ()) -> None:
        self.name = name
        self.mailboxd = _program("MAILBOXD", "mailboxd")
        self._clients: List[Any] = []
        self._spawned: List[Spawned] = []
        self.broker = self._start(list(broker_args))

    def _start(self, args: List[str]) -> subprocess.Popen:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify = f"mbx-pytest-{self.name}-{time.monotonic_ns()}"
        sock.bind("\0" + notify)
        sock.settimeout(10)
        env = dict(os.environ, NOTIFY_SOCKET="@" + notify)
        proc = subprocess.Popen([self.mailboxd, "-N", self.name, *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                preexec_fn=_die_with_parent)
        try:
            ready = b"READY=1" in sock.recv(256)
        except socket.timeout:
            ready = False
        finally:
            sock.close()
        if not ready:
            proc.kill()
            _, err = proc.communicate()
            raise RuntimeError(f"mailboxd for {self.name} did not get ready: {err.strip()}")
        return proc

    # ---- what a test uses -----------------------------------------------------------------

    def client(self, name: Optional[str] = None, **kwargs: Any) -> Client:
        """A Client of this namespace, closed at teardown if the test did not."""
        c = Client(namespace=self.name, name=name, **kwargs)
        self._clients.append(c)
        return c

    def aclient(self, name: Optional[str] = None, **kwargs: Any) -> AsyncClient:
        """An asyncio AsyncClient of this namespace, closed at teardown."""
        from .aio import AsyncClient
        c = AsyncClient(namespace=self.name, name=name, **kwargs)
        self._clients.append(c)
        return c

    def spawn(self, target: Union[Callable[..., Any], Sequence[str]], *args: Any,
              timeout_s: float = 60) -> Spawned:
        """Starts a client process: target(namespace_name, *args) in a forked Python
        process (its return value, an int, is the exit code), or a command (a list of
        strings, with $MBX_NAMESPACE set). Killed after timeout_s, and at teardown."""
        if callable(target):
            ctx = multiprocessing.get_context("fork")
            proc = ctx.Process(target=_run_target, args=(target, self.name, args), daemon=True)
            proc.start()
        else:
            env = dict(os.environ, MBX_NAMESPACE=self.name)
            proc = subprocess.Popen(list(target) + [str(a) for a in args], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    preexec_fn=_die_with_parent)
        s = Spawned(proc, timeout_s)
        self._spawned.append(s)
        return s

    def mbx(self, *args: str, timeout_s: float = 30,
            stdin: Optional[str] = None) -> subprocess.CompletedProcess[str]:
        """Runs `mbx ARGS -N <namespace>`; returns the CompletedProcess."""
        mbx = _program("MBX_BIN", "mbx")
        return subprocess.run([mbx, args[0], "-N", self.name, *args[1:]], input=stdin,
                              capture_output=True, text=True, timeout=timeout_s,
                              preexec_fn=_die_with_parent)

    def wait_for(self, name: str, timeout_ms: int = 10000) -> None:
        from .client import wait_for
        wait_for(name, timeout_ms, namespace=self.name)

    # ---- teardown ---------------------------------------------------------------------------

    def _processes(self) -> List[str]:
        """Processes (other than us) whose command line names this namespace."""
        found = []
        me = os.getpid()
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or int(pid) == me:
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if any(a.decode(errors="replace").startswith(self.name) for a in argv[1:]):
                found.append(f"pid {pid} ({' '.join(a.decode(errors='replace') for a in argv if a)})")
        return found

    def _files(self) -> List[str]:
        d = runtime_dir()
        left = []
        # The runtime directory's entries start with the namespace's name; a segment in
        # /dev/shm (none is made on Linux, where it is a memfd) would be mailbox.<name>.
        for where, prefixes in ((d, (self.name,)),
                                ("/dev/shm", (self.name, "mailbox." + self.name))):
            try:
                left += [os.path.join(where, f) for f in os.listdir(where)
                         if f.startswith(prefixes)]
            except OSError:
                pass
        return left

    def close(self) -> List[str]:
        """Stops everything; returns what was left behind (and has now been removed)."""
        for c in self._clients:
            c.close()
        for s in self._spawned:
            s.kill()
            s.wait(5)
        problems = []
        if self.broker.poll() is None:
            self.broker.send_signal(signal.SIGTERM)
            try:
                self.broker.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.broker.kill()
                self.broker.wait()
                problems.append("the broker did not stop within 5 s of SIGTERM")
        self.broker.stderr.close()
        deadline = time.monotonic() + 3  # a keeper or a client may take a moment to go
        while (self._processes() or self._files()) and time.monotonic() < deadline:
            time.sleep(0.05)
        for p in self._processes():
            problems.append("process " + p)
            try:
                os.kill(int(p.split()[1]), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        for f in self._files():
            problems.append("file " + f)
            try:
                if os.path.isdir(f) and not os.path.islink(f):
                    shutil.rmtree(f, ignore_errors=True)  # a wake directory
                else:
                    os.unlink(f)
            except OSError:
                pass
        return problems


