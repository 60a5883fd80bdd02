#!/usr/bin/env python3
"""End-to-end tests of mbx and mailboxd as a shell user runs them.

Every program runs as a real process with a timeout. Brokers run in the foreground,
report readiness over NOTIFY_SOCKET and die with this test process (PR_SET_PDEATHSIG);
tearDown stops them and removes their namespace's segment even when a test fails.
Output is checked against the JSON Schemas in schemas/ with a real validator.
"""
import ctypes
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import jsonschema

MBX = os.environ["MBX_BIN"]
MAILBOXD = os.environ["MAILBOXD_BIN"]
SCHEMAS = os.environ["MBX_SCHEMAS"]
TIMEOUT = 20  # seconds, for any one program run

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def load_schema(name):
    with open(os.path.join(SCHEMAS, name), encoding="utf-8") as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


ENVELOPE = load_schema("envelope.schema.json")
BENCH = load_schema("bench.schema.json")
LIST = load_schema("list.schema.json")
NAMESPACES = load_schema("namespaces.schema.json")

_counter = 0


def new_namespace(tag):
    global _counter
    _counter += 1
    run_tag = os.environ.get("MBX_TEST_TAG", "local")[:8]
    return f"mbxtest-{run_tag}-{tag}-{os.getpid()}-{_counter}"


def run(*args, stdin=None, env=None, timeout=TIMEOUT):
    return subprocess.run(list(args), input=stdin, capture_output=True, text=True,
                          timeout=timeout, env=env, preexec_fn=_die_with_parent)


def run_bytes(*args, stdin=b""):
    return subprocess.run(list(args), input=stdin, capture_output=True, timeout=TIMEOUT,
                          preexec_fn=_die_with_parent)


def start(*args, env=None):
    return subprocess.Popen(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, preexec_fn=_die_with_parent)


def runtime_dir():
    """The runtime directory of docs/architecture.md, for this user."""
    if os.environ.get("MBX_RUNTIME_DIR"):
        return os.environ["MBX_RUNTIME_DIR"]
    if os.geteuid() == 0:
        return "/run/mailbox"
    if os.environ.get("XDG_RUNTIME_DIR", "").startswith("/"):
        return os.environ["XDG_RUNTIME_DIR"] + "/mailbox"
    return f"/tmp/mailbox-{os.geteuid()}"


def runtime_files(ns):
    return [f"{runtime_dir()}/{ns}.sock", f"{runtime_dir()}/{ns}.lock",
            f"{runtime_dir()}/{ns}.keep", f"{runtime_dir()}/{ns}.wake"]


def remove_runtime_file(path):
    """A socket or lock file, or the wake directory with what is in it."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def keeper_pid(ns):
    """The pid of the keeper holding ns's segment while no broker runs, or 0."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        s.connect(runtime_files(ns)[2])
        cred = s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        return int.from_bytes(cred[:4], "little")
    except OSError:
        return 0
    finally:
        s.close()


class Namespace:
    """A foreground broker for one test, ready when the constructor returns."""

    def __init__(self, name, *extra, preexec=_die_with_parent):
        self.name = name
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify = f"@mbxtest-notify-{name}-{time.monotonic_ns()}"
        sock.bind("\0" + notify[1:])
        sock.settimeout(10)
        env = dict(os.environ, NOTIFY_SOCKET=notify)
        self.proc = subprocess.Popen([MAILBOXD, "-N", self.name, *extra], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, preexec_fn=preexec)
        try:
            msg = sock.recv(256).decode()
        except socket.timeout:
            msg = ""
        finally:
            sock.close()
        if "READY=1" not in msg:
            self.stop()
            raise AssertionError(f"broker for {self.name} did not get ready")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stderr.close()
        # What a killed broker leaves: its keeper, its socket, lock and keeper's socket.
        keeper = keeper_pid(self.name)
        if keeper > 0:
            try:
                os.kill(keeper, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for path in runtime_files(self.name):
            remove_runtime_file(path)


class CliTest(unittest.TestCase):
    def setUp(self):
        self.namespaces = []
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.communicate()
        for ns in self.namespaces:
            ns.stop()

    def broker(self, *extra):
        tag = self.id().rsplit(".", 1)[-1][5:15].replace("_", "-")
        ns = Namespace(new_namespace(tag), *extra)
        self.namespaces.append(ns)
        return ns.name

    def background(self, *args):
        p = start(*args)
        self.procs.append(p)
        return p

    def wait_for_client(self, ns, name):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = run(MBX, "list", "-N", ns, "--json")
            if r.returncode == 0 and any(c["name"] == name
                                         for c in json.loads(r.stdout)["clients"]):
                return
            time.sleep(0.02)
        self.fail(f"client {name} never showed up in {ns}")

    def assert_one_line_error(self, r, code, *needles):
        self.assertEqual(r.returncode, code, r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        for n in needles:
            self.assertIn(n, lines[0])

    # ---- help, version and usage ------------------------------------------------------

    def test_help_and_version(self):
        for args in ([MBX, "--help"], [MBX, "send", "--help"], [MBX, "recv", "--help"],
                     [MBX, "list", "--help"], [MBX, "pub", "--help"], [MBX, "sub", "--help"],
                     [MAILBOXD, "--help"]):
            r = run(*args)
            self.assertEqual(r.returncode, 0, args)
            self.assertIn("Usage:", r.stdout)
        self.assertRegex(run(MBX, "--version").stdout, r"^mbx \d+\.\d+\.\d+\n$")
        self.assertRegex(run(MAILBOXD, "--version").stdout, r"^mailboxd \d+\.\d+\.\d+\n$")

    def test_usage_errors_exit_2_with_one_line(self):
        cases = [
            [MBX, "bogus"],
            [MBX, "send"],
            [MBX, "send", "a", "{}", "extra"],
            [MBX, "send", "-t", "abc", "a", "{}"],
            [MBX, "send", "-t", "-5", "a", "{}"],
            [MBX, "send", "bad/name", "{}"],
            [MBX, "send", "--from", "..", "a", "{}"],
            [MBX, "recv", "-c", "x", "a"],
            [MBX, "recv", "-c", "-1", "a"],
            [MBX, "recv", "-t", "99999999999", "a"],
            [MBX, "recv", ""],
            [MBX, "recv", "a", "b"],
            [MBX, "recv", "--nope", "a"],
            [MBX, "list", "-N", "a/b"],
            [MBX, "list", "-N"],
            [MAILBOXD, "--slots", "0"],
            [MAILBOXD, "--slots", "-1"],
            [MAILBOXD, "--slots", "99999999999999999999"],
            [MAILBOXD, "--depth", "abc"],
            [MAILBOXD, "--depth", ""],
            [MAILBOXD, "--max-message", "15"],
            [MAILBOXD, "--mailbox-bytes", "0"],
            [MAILBOXD, "--mailbox-bytes", "1073741825"],
            [MAILBOXD, "--mailbox-bytes", "8192", "--max-message", "8192"],
            [MAILBOXD, "--mode", "0644x"],
            [MAILBOXD, "--mode", "0400"],
            [MAILBOXD, "-N", "../etc"],
            [MAILBOXD, "-N", "x" * 64],
            [MAILBOXD, "--slots", "16384", "--depth", "1048576"],
            [MAILBOXD, "stray"],
        ]
        for args in cases:
            with self.subTest(args=args[1:]):
                self.assert_one_line_error(run(*args), 2)

    # ---- sending and receiving --------------------------------------------------------

    def test_options_anywhere_and_double_dash(self):
        """Options may follow the arguments (GNU order), each command as the issue saw it
        misread; "--" ends the options, for an argument that starts with '-'."""
        ns = self.broker()
        # Subscribes to 'a.>' alone (not to '-c', '1', ...): ends at its 200 ms.
        r = run(MBX, "sub", "-N", ns, "a.>", "-c", "1", "-t", "200")
        self.assertEqual(r.returncode, 4, r.stderr)
        r = run(MBX, "wait", "-N", ns, "worker", "-t", "200")
        self.assert_one_line_error(r, 4, "worker")
        rx = self.background(MBX, "recv", "worker", "-N", ns, "-c", "2", "-t", "15000")
        self.wait_for_client(ns, "worker")
        r = run(MBX, "send", "worker", "{}", "-N", ns)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run(MBX, "send", "-N", ns, "worker", "--", "-1")
        self.assertEqual(r.returncode, 0, r.stderr)
        out, err = rx.communicate(timeout=TIMEOUT)
        self.assertEqual(rx.returncode, 0, err)
        self.assertEqual(out.splitlines(), ["{}", "-1"])
        # Without "--", a negative number is an option: refused, with the way out.
        r = run(MBX, "send", "-N", ns, "worker", "-1")
        self.assert_one_line_error(r, 2, "unknown option '-1'", "--")

    def test_sizes_take_suffixes(self):
        """Sizes take K, M and G wherever one is given: mailboxd --max-message 1M."""
        ns = self.broker("--max-message", "1M", "--mailbox-bytes", "4M")
        r = run(MBX, "list", "-N", ns, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["geometry"]["max_message"], 1 << 20)
        r = run(MAILBOXD, "-N", ns + "x", "--max-message", "1X")
        self.assert_one_line_error(r, 2, "--max-message", "'1X'", "K, M, G")

    def test_bad_messages_say_where_and_why(self):
        """Invalid JSON says at which byte and what was wrong there (a hint for single
        quotes and bare words); an empty standard input says nothing was sent; a message
        over the limit names mailboxd --max-message."""
        ns = self.broker("--max-message", "64")
        self.background(MBX, "recv", "-N", ns, "-t", "15000", "x")
        self.wait_for_client(ns, "x")
        r = run(MBX, "send", "-N", ns, "x", "{'a': 1}")
        self.assert_one_line_error(r, 6, "x: invalid JSON at byte 1",
                                   "expected a string in double quotes")
        r = run(MBX, "send", "-N", ns, "x", "hello")
        self.assert_one_line_error(r, 6, "invalid JSON at byte 0", "'\"hello\"'")
        r = run(MBX, "send", "-N", ns, "x", '{"a": [1, 2}')
        self.assert_one_line_error(r, 6, "invalid JSON at byte 11", "unexpected '}'")
        r = run(MBX, "send", "-N", ns, "x", "[1, 2")
        self.assert_one_line_error(r, 6, "invalid JSON at byte 5", "ended inside a value")
        r = run(MBX, "send", "-N", ns, "x", '{"a":"b')
        self.assert_one_line_error(r, 6, "at byte 7", "string that starts at byte 5")
        r = run(MBX, "send", "-N", ns, "x", "{a:1}")
        self.assert_one_line_error(r, 6, "invalid JSON at byte 1: unexpected 'a'")
        r = run(MBX, "send", "-N", ns, "x", '{"a": 1} 2')
        self.assert_one_line_error(r, 6, "at byte 9", "more after the value")
        r = run(MBX, "send", "-N", ns, "x", stdin='{"ok": 1}\n{"a": \n')
        self.assert_one_line_error(r, 6, "line 2: invalid JSON at byte")
        r = run(MBX, "pub", "-N", ns, "t.a", "{'a': 1}")
        self.assert_one_line_error(r, 6, "t.a: invalid JSON at byte 1")
        r = run(MBX, "send", "-N", ns, "x", stdin="")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("nothing sent", r.stderr)
        r = run(MBX, "send", "-N", ns, "x", '"%s"' % ("y" * 100))
        self.assert_one_line_error(r, 6, "102 bytes", "limit of 64", "mailboxd --max-message")
        r = run(MBX, "send", "-N", ns, "x", stdin='"%s"\n' % ("y" * 100))
        self.assert_one_line_error(r, 6, "line 1", "mailboxd --max-message")

    def test_no_broker_is_said_so_with_where_it_looked(self):
        """A namespace nobody serves is exit 3 and says so, with where the client looked,
        also after a --wait (not "not there", exit 5) and from mbx wait (not a timeout)."""
        ns = new_namespace("typo")
        r = run(MBX, "send", "-N", ns, "--wait", "1000", "x", "1")
        self.assert_one_line_error(r, 3, f"{ns}: no broker serves this namespace", "looked for",
                                   f"{ns}.sock", "MBX_RUNTIME_DIR")
        r = run(MBX, "wait", "-N", ns, "x", "-t", "200")
        self.assert_one_line_error(r, 3, "no broker serves this namespace")
        r = run(MBX, "request", "-N", ns, "--wait", "200", "x", "1")
        self.assert_one_line_error(r, 3, "no broker serves this namespace")
        elsewhere = tempfile.mkdtemp()
        try:
            r = run(MBX, "send", "-N", ns, "x", "1",
                    env=dict(os.environ, MBX_RUNTIME_DIR=elsewhere))
            self.assert_one_line_error(r, 3, f"looked for {elsewhere}/{ns}.sock")
        finally:
            os.rmdir(elsewhere)

    def test_from_refuses_a_live_clients_name(self):
        """--from is a label, not authenticated; but a label that is another client's name
        is refused (exit 2, one line): nobody impersonates by accident."""
        ns = self.broker()
        self.background(MBX, "recv", "-N", ns, "-t", "15000", "realsvc")
        victim = self.background(MBX, "recv", "-N", ns, "-t", "15000", "-c", "1", "victim")
        self.wait_for_client(ns, "realsvc")
        self.wait_for_client(ns, "victim")
        r = run(MBX, "send", "--from", "realsvc", "-N", ns, "victim", "{}")
        self.assert_one_line_error(r, 2, "--from realsvc", "another client's")
        r = run(MBX, "pub", "--from", "victim", "-N", ns, "t.a", "{}")
        self.assert_one_line_error(r, 2, "--from victim")
        # A name taken says which name (not the namespace's), from every command.
        r = run(MBX, "sub", "-N", ns, "--name", "realsvc", "-t", "100", "a")
        self.assert_one_line_error(r, 9, "realsvc: name already taken")
        r = run(MBX, "send", "--from", "alice", "-N", ns, "victim", '{"ok":1}')
        self.assertEqual(r.returncode, 0, r.stderr)
        out, err = victim.communicate(timeout=TIMEOUT)
        self.assertEqual(out.splitlines(), ['{"ok":1}'])

    def test_list_format_prometheus(self):
        """mbx list --format prometheus: the text exposition format node_exporter's
        textfile collector reads, totals and per-client counters; mbx_up 0 (exit 3) with
        no broker."""
        ns = self.broker()
        rx = self.background(MBX, "recv", "-N", ns, "-t", "15000", "-c", "99", "w")
        self.wait_for_client(ns, "w")
        rx.send_signal(signal.SIGSTOP)  # holds what comes: three messages waiting
        try:
            for i in range(3):
                r = run(MBX, "send", "-N", ns, "w", str(i))
                self.assertEqual(r.returncode, 0, r.stderr)
            r = run(MBX, "list", "-N", ns, "--format", "prometheus")
        finally:
            rx.send_signal(signal.SIGCONT)
        self.assertEqual(r.returncode, 0, r.stderr)
        sample = re.compile(r'^([a-z_]+)\{((?:[a-z_]+="[^"\\\n]*",?)+)\} (\d+)$')
        values, typed = {}, set()
        for line in r.stdout.splitlines():
            if line.startswith("# TYPE "):
                name, kind = line.split()[2:4]
                self.assertIn(kind, ("gauge", "counter"), line)
                typed.add(name)
                continue
            if line.startswith("# HELP "):
                continue
            m = sample.match(line)
            self.assertIsNotNone(m, "not a sample line: %r" % line)
            self.assertIn(m.group(1), typed, "sample before its TYPE: %r" % line)
            labels = dict(kv.split("=", 1) for kv in m.group(2).rstrip(",").split('",'))
            labels = {k: v.strip('"') for k, v in labels.items()}
            self.assertEqual(labels["namespace"], ns)
            values[(m.group(1), labels.get("client"))] = int(m.group(3))
        self.assertEqual(values[("mbx_up", None)], 1)
        self.assertGreaterEqual(values[("mbx_messages_sent_total", None)], 3)
        self.assertEqual(values[("mbx_client_waiting_messages", "w")], 3)
        r = run(MBX, "list", "-N", new_namespace("gone"), "--format", "prometheus")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertRegex(r.stdout, r'(?m)^mbx_up\{namespace="[^"]+"\} 0$')
        r = run(MBX, "list", "-N", ns, "--format", "yaml")
        self.assert_one_line_error(r, 2, "--format", "prometheus")

    def test_completion_offers_a_group_name_once(self):
        """bash completion's client names: a group of two members is one name."""
        ns = self.broker()
        for _ in range(2):
            self.background(MBX, "reply", "-N", ns, "--group", "echo", "--echo")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            clients = json.loads(run(MBX, "list", "-N", ns, "--json").stdout)["clients"]
            if sum(c["name"] == "echo" for c in clients) == 2:
                break
            time.sleep(0.02)
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools",
                              "completion", "mbx.bash")
        bindir = os.path.dirname(MBX)
        r = run("bash", "-c", f'PATH="{bindir}:$PATH"; source "{script}"; _mbx_clients "{ns}"')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.split(), ["echo"])
        # The commands come from mbx itself: every one it has, the newest too.
        r = run("bash", "-c", f'PATH="{bindir}:$PATH"; source "{script}"; COMP_WORDS=(mbx "");'
                              ' COMP_CWORD=1; _mbx; echo "${COMPREPLY[@]}"')
        offered = r.stdout.split()
        listed = {line.split()[0] for line in run(MBX, "options").stdout.splitlines()}
        self.assertTrue(listed <= set(offered), offered)
        self.assertIn("monitor", offered)

    def assert_namespace_gone(self, ns):
        left = [p for p in runtime_files(ns) if os.path.exists(p)]
        self.assertEqual(left, [], "mbx run left files behind")
        procs = subprocess.run(["pgrep", "-f", f"mailboxd.* -N {ns} "], capture_output=True,
                               text=True).stdout.split()
        self.assertEqual(procs, [], "mbx run left a broker behind")

    def test_run_gives_a_command_a_private_namespace(self):
        """mbx run -- CMD: a fresh namespace for CMD (MBX_NAMESPACE), CMD's exit status,
        nothing left behind."""
        script = (f'echo "$MBX_NAMESPACE"; "{MBX}" recv -t 10000 -c 1 x & '
                  f'"{MBX}" send --wait 10000 x \'{{"hi":1}}\'; wait; exit 7')
        r = run(MBX, "run", "--slots", "8", "--", "sh", "-c", script)
        self.assertEqual(r.returncode, 7, r.stderr)
        ns, got = r.stdout.splitlines()
        self.assertRegex(ns, r"^run-\d+-[0-9a-f]{4}$")
        self.assertEqual(got, '{"hi":1}')
        self.assert_namespace_gone(ns)
        # Options before CMD are mbx run's; CMD's own come after it, untouched.
        r = run(MBX, "run", "sh", "-c", 'exit 3', "-x")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assert_one_line_error(run(MBX, "run"), 2, "expected CMD")
        r = run(MBX, "run", "--slots", "0", "--", "true")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("did not start", r.stderr)
        r = run(MBX, "run", "--", "/nonexistent/cmd")
        self.assertEqual(r.returncode, 127, r.stderr)

    def test_run_stops_the_broker_on_sigterm(self):
        """SIGTERM to mbx run reaches CMD; the broker is stopped; exit 128+15."""
        p = self.background(MBX, "run", "--", "sh", "-c", 'echo "$MBX_NAMESPACE"; exec sleep 30')
        ns = p.stdout.readline().strip()
        self.assertTrue(ns.startswith("run-"), ns)
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=TIMEOUT)
        self.assertEqual(p.returncode, 128 + signal.SIGTERM, err)
        self.assert_namespace_gone(ns)

    def test_round_trip_with_envelopes(self):
        ns = self.broker()
        rx = self.background(MBX, "recv", "-N", ns, "-c", "3", "-t", "15000", "--envelope", "bob")
        self.wait_for_client(ns, "bob")
        r = run(MBX, "send", "-N", ns, "--from", "alice", "bob",
                stdin='{"n": 1}\n\n[1, 2,  3]\r\n"three"\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        out, err = rx.communicate(timeout=TIMEOUT)
        self.assertEqual(rx.returncode, 0, err)
        lines = out.splitlines()
        self.assertEqual(len(lines), 3)
        bodies = []
        for seq, line in enumerate(lines, start=1):
            env = json.loads(line)
            ENVELOPE.validate(env)
            self.assertEqual(env["from"], "alice")
            self.assertEqual(env["to"], "bob")
            self.assertEqual(env["seq"], seq)
            self.assertGreater(env["ts"], 1_600_000_000_000_000)
            bodies.append(env["body"])
        self.assertEqual(bodies, [{"n": 1}, [1, 2, 3], "three"])

    def test_plain_recv_prints_compact_json_lines(self):
        ns = self.broker()
        rx = self.background(MBX, "recv", "-N", ns, "-c", "2", "-t", "15000", "sink")
        self.wait_for_client(ns, "sink")
        self.assertEqual(run(MBX, "send", "-N", ns, "sink", '{ "a" : [ 1, 2 ] }').returncode, 0)
        self.assertEqual(run(MBX, "send", "-N", ns, "sink", '"x y"').returncode, 0)
        out, _ = rx.communicate(timeout=TIMEOUT)
        self.assertEqual(out, '{"a":[1,2]}\n"x y"\n')
        self.assertEqual(rx.returncode, 0)

    def test_namespace_from_environment(self):
        ns = self.broker()
        env = dict(os.environ, MBX_NAMESPACE=ns)
        rx = start(MBX, "recv", "-c", "1", "-t", "15000", "envrx", env=env)
        self.procs.append(rx)
        self.wait_for_client(ns, "envrx")
        self.assertEqual(run(MBX, "send", "envrx", "1", env=env).returncode, 0)
        out, _ = rx.communicate(timeout=TIMEOUT)
        self.assertEqual(out, "1\n")
        self.assertEqual(rx.returncode, 0)

    def test_invalid_line_stops_and_names_the_line(self):
        ns = self.broker()
        rx = self.background(MBX, "recv", "-N", ns, "-t", "1500", "sink")
        self.wait_for_client(ns, "sink")
        r = run(MBX, "send", "-N", ns, "sink", stdin='1\n2\n{"bad"\n4\n')
        self.assert_one_line_error(r, 6, "line 3", "invalid JSON")
        out, _ = rx.communicate(timeout=TIMEOUT)
        self.assertEqual(out, "1\n2\n")  # what came before was delivered, nothing after
        self.assertEqual(rx.returncode, 0)  # no count asked: the time limit ends it

    def test_line_over_the_limit(self):
        ns = self.broker("--max-message", "32")
        rx = self.background(MBX, "recv", "-N", ns, "-t", "1500", "sink")
        self.wait_for_client(ns, "sink")
        exact = '"' + "a" * 30 + '"'
        r = run(MBX, "send", "-N", ns, "sink", stdin=exact + "\n" + exact + "b\n")
        self.assert_one_line_error(r, 6, "line 2", "32")
        r = run(MBX, "send", "-N", ns, "sink", exact + "b")
        self.assert_one_line_error(r, 6, "33 bytes", "larger", "limit of 32 bytes",
                                   "mailboxd --max-message")
        r = run(MBX, "send", "-N", ns, "sink", stdin=exact + "\r\n")  # CRLF is not content
        self.assertEqual(r.returncode, 0, r.stderr)
        out, _ = rx.communicate(timeout=TIMEOUT)
        self.assertEqual(out, exact + "\n" + exact + "\n")

    def test_json_argument_errors(self):
        ns = self.broker()
        self.background(MBX, "recv", "-N", ns, "-t", "10000", "sink")
        self.wait_for_client(ns, "sink")
        for bad in ("", "{", "01", "[1,]", "{} {}", "\"\x01\""):
            with self.subTest(json=bad):
                self.assert_one_line_error(run(MBX, "send", "-N", ns, "sink", bad), 6,
                                           "invalid JSON")

    def test_bad_bytes_on_standard_input(self):
        ns = self.broker()
        rx = self.background(MBX, "recv", "-N", ns, "-t", "1500", "sink")
        self.wait_for_client(ns, "sink")
        cases = [b'{"a":"\x00"}\n', b'"\xc3\x28"\n', b'"\xed\xa0\x80"\n', b'"\xc0\xaf"\n',
                 b'{"a":1}\x00\n']
        for bad in cases:
            with self.subTest(stdin=bad):
                r = run_bytes(MBX, "send", "-N", ns, "sink", stdin=b'"ok"\n' + bad)
                self.assertEqual(r.returncode, 6, r.stderr)
                self.assertIn(b"line 2: invalid JSON", r.stderr)
        out, _ = rx.communicate(timeout=TIMEOUT)
        self.assertEqual(out, '"ok"\n' * len(cases))  # only the good line each time

    def test_deep_nesting_is_refused(self):
        ns = self.broker("--max-message", "262144", "--slots", "2", "--depth", "2")
        self.background(MBX, "recv", "-N", ns, "-t", "10000", "sink")
        self.wait_for_client(ns, "sink")
        deep = "[" * 100000 + "]" * 100000
        r = run(MBX, "send", "-N", ns, "sink", stdin=deep + "\n")
        self.assert_one_line_error(r, 6, "line 1", "invalid JSON")

    def test_unknown_recipient_and_name_taken(self):
        ns = self.broker()
        self.assert_one_line_error(run(MBX, "send", "-N", ns, "ghost", "{}"), 5,
                                   "ghost", "no such recipient")
        self.background(MBX, "recv", "-N", ns, "-t", "10000", "taken")
        self.wait_for_client(ns, "taken")
        self.assert_one_line_error(run(MBX, "recv", "-N", ns, "-t", "100", "taken"), 9,
                                   "taken: name already taken")
        # Taken by a service group: the line says how to join it.
        self.background(MBX, "reply", "-N", ns, "--group", "--echo", "pool")
        self.wait_for_client(ns, "pool")
        self.assert_one_line_error(run(MBX, "recv", "-N", ns, "-t", "100", "pool"), 9,
                                   "pool: name already taken by a service group",
                                   "--group")

    def test_linger_keeps_messages_for_the_next_recv(self):
        ns = self.broker()
        r = run(MBX, "recv", "-N", ns, "--linger", "30", "-t", "50", "durable")
        self.assertEqual(r.returncode, 0, r.stderr)  # gone, but its mailbox stays
        for n in (1, 2, 3):
            self.assertEqual(run(MBX, "send", "-N", ns, "durable", f"[{n}]").returncode, 0)
        doc = json.loads(run(MBX, "list", "-N", ns, "--json").stdout)
        LIST.validate(doc)
        [entry] = doc["clients"]
        self.assertEqual((entry["name"], entry["lingering"], entry["pid"], entry["waiting"]),
                         ("durable", True, 0, 3))
        r = run(MBX, "recv", "-N", ns, "-c", "3", "-t", "5000", "durable")
        self.assertEqual((r.returncode, r.stdout), (0, "[1]\n[2]\n[3]\n"), r.stderr)
        for bad in ("-1", "86401", "x"):
            self.assert_one_line_error(run(MBX, "recv", "-N", ns, "--linger", bad, "d"), 2)

    def test_recv_timeout_exit_4(self):
        ns = self.broker()
        r = run(MBX, "recv", "-N", ns, "-c", "1", "-t", "200", "waiter")
        self.assert_one_line_error(r, 4, "timed out")

    def test_no_broker_exit_3(self):
        ns = new_namespace("nobroker")
        for args in (["send", "-N", ns, "x", "{}"], ["recv", "-N", ns, "-t", "100", "x"],
                     ["list", "-N", ns], ["list", "-N", ns, "--json"]):
            with self.subTest(args=args):
                self.assert_one_line_error(run(MBX, *args), 3, "no broker")

    # ---- bench --------------------------------------------------------------------------

    def test_bench_runs_and_matches_schema(self):
        ns = self.broker("--slots", "8", "--depth", "16", "--max-message", "256")
        cases = [["--mode", "pingpong", "--count", "300"],
                 ["--mode", "pingpong", "--count", "300", "--pin", "same", "--no-validate"],
                 ["--mode", "throughput", "--count", "3000", "--senders", "3"],
                 ["--mode", "throughput", "--count", "3000", "--pin", "split", "--size", "200"],
                 ["--mode", "pingpong", "--count", "300", "--poll"],
                 ["--mode", "pingpong", "--count", "300", "--poll", "--busy-poll", "30"],
                 ["--mode", "request", "--count", "300"],
                 ["--mode", "request", "--count", "600", "--senders", "3"],
                 ["--mode", "request", "--count", "600", "--senders", "3", "--responders", "2"],
                 ["--mode", "throughput", "--count", "3000", "--senders", "2", "--poll"],
                 ["--mode", "fanout", "--count", "3000", "--subscribers", "3"]]
        for args in cases:
            with self.subTest(args=args):
                r = run(MBX, "bench", "-N", ns, "--json", *args)
                self.assertEqual(r.returncode, 0, r.stderr)
                doc = json.loads(r.stdout)
                BENCH.validate(doc)
                self.assertEqual(doc["mode"], args[1])
                self.assertEqual(doc["poll"], "--poll" in args)
                self.assertEqual(doc["busy_poll_us"], 30 if "--busy-poll" in args else 0)
        human = run(MBX, "bench", "-N", ns, "--count", "100")
        self.assertEqual(human.returncode, 0, human.stderr)
        self.assertIn("RTT p50", human.stdout)
        # The benchmark's processes are gone and gave their slots back.
        self.assertEqual(json.loads(run(MBX, "list", "-N", ns, "--json").stdout)["clients"], [])
        for bad in (["--mode", "x"], ["--senders", "0"], ["--pin", "left"], ["--size", "1"],
                    ["--size", "257"], ["--mode", "pingpong", "--senders", "2"],
                    ["--busy-poll", "30"], ["--poll", "--busy-poll", "0"],
                    ["--mode", "fanout", "--subscribers", "0"],
                    ["--mode", "fanout", "--subscribers", "65"],
                    ["--poll", "--busy-poll", "10001"]):
            with self.subTest(bad=bad):
                self.assert_one_line_error(run(MBX, "bench", "-N", ns, *bad), 2)

    # ---- list ---------------------------------------------------------------------------

    def test_list_json_matches_schema(self):
        ns = self.broker("--slots", "8", "--depth", "4", "--max-message", "128")
        self.background(MBX, "recv", "-N", ns, "-t", "10000", "one")
        self.background(MBX, "recv", "-N", ns, "-t", "10000", "two")
        self.wait_for_client(ns, "one")
        self.wait_for_client(ns, "two")
        self.assertEqual(run(MBX, "send", "-N", ns, "--from", "three", "one", "{}").returncode, 0)
        r = run(MBX, "list", "-N", ns, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        LIST.validate(doc)
        self.assertEqual(doc["namespace"], ns)
        self.assertEqual(doc["broker"]["pid"], self.namespaces[0].proc.pid)
        self.assertEqual(doc["geometry"]["slots"], 8)
        self.assertEqual(doc["geometry"]["depth"], 4)
        self.assertEqual(doc["geometry"]["max_message"], 128)
        names = sorted(c["name"] for c in doc["clients"])
        self.assertEqual(names, ["one", "two"])

    def test_list_table(self):
        ns = self.broker()
        r = run(MBX, "list", "-N", ns)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"namespace  {ns}", r.stdout)
        self.assertIn(f"pid {self.namespaces[0].proc.pid}", r.stdout)
        self.assertIn("64 slots x 64 messages x 4096 bytes in 32768-byte mailboxes", r.stdout)

    def test_mailbox_bytes(self):
        # Rounded up to a power of two; a mailbox is full at its bytes before its depth.
        ns = self.broker("--mailbox-bytes", "5000", "--max-message", "1024")
        r = run(MBX, "list", "-N", ns, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["geometry"]["mailbox_bytes"], 8192)
        rx = self.background(MBX, "recv", "-N", ns, "-t", "60000", "-c", "1", "--linger", "30",
                             "full")
        self.wait_for_client(ns, "full")
        rx.kill()
        rx.wait(timeout=TIMEOUT)
        self.wait_until_lingering(ns, "full")
        body = '"' + "x" * 1000 + '"'
        r = run(MBX, "send", "-N", ns, "-t", "0", "full", stdin=(body + "\n") * 10)
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn("line 8:", r.stderr)  # 7 records of 1,088 bytes fill 8,192
        r = run(MBX, "recv", "-N", ns, "-t", "100", "full")
        self.assertEqual(r.stdout.splitlines(), [body] * 7, r.stderr)

    # ---- permissions ---------------------------------------------------------------------

    def as_nobody(self, *args, groups=None):
        """Runs a program as user nobody, with only the given supplementary groups."""
        drop = ["setpriv", "--reuid=nobody", "--regid=nogroup"]
        drop += [f"--groups={groups}"] if groups is not None else ["--clear-groups"]
        return run(*drop, *args)

    def test_default_mode_keeps_other_users_out(self):
        ns = self.broker()
        self.background(MBX, "recv", "-N", ns, "-t", "10000", "owner")
        self.wait_for_client(ns, "owner")
        for args in (["send", "-N", ns, "owner", "{}"], ["recv", "-N", ns, "-t", "100", "x"],
                     ["list", "-N", ns]):
            with self.subTest(args=args):
                # Why, and what to do: the socket's owner and mode, and the option.
                self.assert_one_line_error(self.as_nobody(MBX, *args), 8, "permission denied",
                                           f"{ns}.sock belongs to root, mode 0600",
                                           "mailboxd --mode 0660 and a group of yours")

    def test_broker_of_another_user_is_named(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to act as another user")
        # nobody's broker, in nobody's own runtime directory: a place only nobody's clients
        # look. Another user's client finds no broker, and is told whose it is and where.
        ns = new_namespace("elsewhere")
        home = "/tmp/mailbox-65534"
        made_home = not os.path.exists(home)
        env = {k: v for k, v in os.environ.items() if k not in ("MBX_RUNTIME_DIR",
                                                                 "XDG_RUNTIME_DIR")}
        broker = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup",
                                   "--clear-groups", MAILBOXD, "-N", ns, "--log", "/dev/null"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  preexec_fn=_die_with_parent)
        try:
            deadline = time.monotonic() + 10
            while not os.path.exists(f"{home}/{ns}.sock") and time.monotonic() < deadline:
                time.sleep(0.02)
            r = run(MBX, "send", "-N", ns, "x", "{}")
            self.assert_one_line_error(r, 3, "no broker serves this namespace",
                                       f"a broker of user nobody serves it in {home}",
                                       "mailboxd@NS")
        finally:
            broker.terminate()
            try:
                broker.wait(timeout=5)
            except subprocess.TimeoutExpired:
                broker.kill()
                broker.wait()
                subprocess.run(["pkill", "-KILL", "-f", f"-N {ns}"], check=False)
            for suffix in ("sock", "lock", "keep"):
                remove_runtime_file(f"{home}/{ns}.{suffix}")
            remove_runtime_file(f"{home}/{ns}.wake")
            if made_home:
                shutil.rmtree(home, ignore_errors=True)

    def test_group_mode_lets_members_in(self):
        ns = self.broker("--mode", "0660")
        gid = os.getegid()  # the namespace's group: the broker's
        self.assertEqual(os.stat(runtime_files(ns)[0]).st_mode & 0o777, 0o660)
        rx = self.background(MBX, "recv", "-N", ns, "-c", "1", "-t", "10000", "owner")
        self.wait_for_client(ns, "owner")
        member = self.as_nobody(MBX, "send", "-N", ns, "--from", "member", "owner", "[1]",
                                groups=str(gid))
        self.assertEqual(member.returncode, 0, member.stderr)
        out, _ = rx.communicate(timeout=TIMEOUT)
        self.assertEqual(out, "[1]\n")
        stranger = self.as_nobody(MBX, "send", "-N", ns, "owner", "[2]")
        self.assert_one_line_error(stranger, 8, "permission denied")

    def test_refusal_after_connect_reads_as_permission_denied(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to act as another user")
        # 0602: the socket lets others connect (w), the broker admits only 0006 (rw), so
        # it answers "permission denied" and closes at once, often before the client's
        # request is out. The answer, not the closed channel, is what the client reports.
        ns = self.broker("--mode", "0602")
        for _ in range(10):
            for args in (["send", "-N", ns, "x", "{}"], ["recv", "-N", ns, "-t", "100", "x"],
                         ["list", "-N", ns]):
                with self.subTest(args=args):
                    self.assert_one_line_error(self.as_nobody(MBX, *args), 8,
                                               "permission denied")

    FLOOD = """
import socket, sys, time
socks = []
for _ in range(300):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        s.connect(sys.argv[1])
    except OSError as e:
        print("refused", e.errno, flush=True)
        break
    socks.append(s)
print("open", len(socks), flush=True)
time.sleep(float(sys.argv[2]))
"""

    def socket_path(self, ns):
        return runtime_files(ns)[0]

    def test_other_users_cannot_flood_or_squat(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to act as another user")
        # A 0600 namespace: another user cannot even connect (the socket's mode).
        ns = self.broker()
        r = self.as_nobody("/usr/bin/python3", "-c", self.FLOOD, self.socket_path(ns), "0")
        self.assertIn("refused 13", r.stdout)  # EACCES
        # Nor take the name first: the runtime directory is root's.
        self.assertEqual((os.stat("/run/mailbox").st_uid, os.stat("/run/mailbox").st_mode & 0o777),
                         (0, 0o711))
        r = self.as_nobody("/usr/bin/python3", "-c",
                           "import socket,sys; socket.socket(socket.AF_UNIX, "
                           "socket.SOCK_SEQPACKET).bind(sys.argv[1])", "/run/mailbox/squat.sock")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Permission denied", r.stderr)

    def test_open_namespace_survives_a_flood_of_silent_connections(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to act as another user")
        log = os.path.join(tempfile.mkdtemp(), "broker.log")
        ns = self.broker("--mode", "0666", "--log", log)
        flood = subprocess.Popen(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                  "/usr/bin/python3", "-c", self.FLOOD, self.socket_path(ns), "8"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 preexec_fn=_die_with_parent)
        self.procs.append(flood)
        self.assertIn("open", flood.stdout.readline())
        # The owner's clients still get in, at once.
        self.background(MBX, "recv", "-N", ns, "-c", "1", "-t", "10000", "owner")
        self.wait_for_client(ns, "owner")
        r = run(MBX, "send", "-N", ns, "owner", "[1]")
        self.assertEqual(r.returncode, 0, r.stderr)
        flood.kill()
        flood.communicate()
        with open(log, encoding="utf-8") as f:
            refusals = [line for line in f if "refusing more" in line]
        # One user's excess is refused, and said so at most about once a second.
        self.assertGreaterEqual(len(refusals), 1)
        self.assertLessEqual(len(refusals), 12)

    def test_broker_refuses_an_unsafe_runtime_directory(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to make a directory of another user")
        d = tempfile.mkdtemp()
        os.chown(d, 65534, 65534)
        env = dict(os.environ, MBX_RUNTIME_DIR=d)
        r = run(MAILBOXD, "-N", new_namespace("unsafe"), env=env)
        self.assert_one_line_error(r, 1, "permission denied", d)
        os.chown(d, 0, 0)
        os.chmod(d, 0o777)
        r = run(MAILBOXD, "-N", new_namespace("unsafe"), env=env)
        self.assert_one_line_error(r, 1, "permission denied", d)
        os.rmdir(d)

    def test_service_users_directory_is_trusted_only_where_root_made_it(self):
        # A broker of a service user (systemd's User= with RuntimeDirectory=): its
        # directory is trusted in /run (only root can make one there), not in /tmp.
        if os.geteuid() != 0:
            self.skipTest("needs root to act as another user")
        for parent, trusted in (("/run", True), ("/tmp", False)):
            with self.subTest(parent=parent):
                d = tempfile.mkdtemp(prefix="mbxtest-svc-", dir=parent)
                os.chown(d, 65534, 65534)
                os.chmod(d, 0o755)
                env = dict(os.environ, MBX_RUNTIME_DIR=d)
                ns = new_namespace("svc")
                r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup",
                                    "--clear-groups", MAILBOXD, "-N", ns, "-d", "--log",
                                    os.path.join(d, "log")], env=env, capture_output=True,
                                   text=True, timeout=TIMEOUT)
                self.assertEqual(r.returncode, 0, r.stderr)
                pid = int(r.stdout)
                try:
                    sent = run(MBX, "send", "-N", ns, "--wait", "100", "nobody-here", "{}",
                               env=env)
                    if trusted:
                        self.assert_one_line_error(sent, 5)  # reached it: no such recipient
                    else:
                        self.assert_one_line_error(sent, 8, "permission denied")
                finally:
                    os.kill(pid, signal.SIGTERM)
                    deadline = time.monotonic() + 10
                    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
                        time.sleep(0.02)
                    shutil.rmtree(d, ignore_errors=True)

    def test_client_insists_on_the_broker_uid(self):
        ns = self.broker()
        env = dict(os.environ, MBX_BROKER_UID=str(os.geteuid() + 12345))
        self.assert_one_line_error(run(MBX, "send", "-N", ns, "x", "{}", env=env), 8,
                                   "permission denied")
        env["MBX_BROKER_UID"] = str(os.geteuid())
        self.assert_one_line_error(run(MBX, "send", "-N", ns, "x", "{}", env=env), 5)

    def test_removed_endpoint_is_made_again(self):
        if os.geteuid() != 0:
            self.skipTest("the runtime directory of a non-root user depends on its session")
        log = os.path.join(tempfile.mkdtemp(), "broker.log")
        ns = self.broker("--log", log)
        os.unlink(self.socket_path(ns))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not os.path.exists(self.socket_path(ns)):
            time.sleep(0.05)
        self.background(MBX, "recv", "-N", ns, "-c", "1", "-t", "10000", "back")
        self.wait_for_client(ns, "back")
        self.assertEqual(run(MBX, "send", "-N", ns, "back", "[1]").returncode, 0)
        with open(log, encoding="utf-8") as f:
            self.assertIn("was removed; made it again", f.read())

    def second_broker(self, ns):
        """Runs a second mailboxd on ns; one that serves instead of exiting is stopped."""
        p = self.background(MAILBOXD, "-N", ns)
        try:
            _, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
            self.fail(f"a second broker served {ns}: {err}")
        return subprocess.CompletedProcess(p.args, p.returncode, "", err)

    def wait_lock_held_by(self, ns, pid):
        """Waits until ns's lock file names pid and is locked (by that broker)."""
        lock = runtime_files(ns)[1]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with open(lock, encoding="utf-8") as f:
                    named = f.read() == f"{pid}\n"
                    try:
                        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        fcntl.flock(f, fcntl.LOCK_UN)
                        held = False
                    except BlockingIOError:
                        held = True
                if named and held:
                    return
            except FileNotFoundError:
                pass
            time.sleep(0.05)
        self.fail(f"{lock} was never taken again by pid {pid}")

    def test_removed_or_replaced_lock_is_taken_again(self):
        if os.geteuid() != 0:
            self.skipTest("the runtime directory of a non-root user depends on its session")
        log = os.path.join(tempfile.mkdtemp(), "broker.log")
        ns = self.broker("--log", log)
        pid = self.namespaces[0].proc.pid
        lock = runtime_files(ns)[1]
        for how in ("removed", "replaced", "removed with the socket"):
            with self.subTest(how=how):
                os.unlink(lock)
                if how == "replaced":
                    with open(lock, "w", encoding="utf-8") as f:
                        f.write("1\n")  # a pid that lives, and holds no lock
                if how == "removed with the socket":
                    os.unlink(self.socket_path(ns))
                # Before the broker takes it again (its socket, else its mark in the
                # directory, says it serves) and after.
                self.assert_one_line_error(self.second_broker(ns), 3, f"pid {pid}")
                self.wait_lock_held_by(ns, pid)
                self.assert_one_line_error(self.second_broker(ns), 3, f"pid {pid}")
        r = run(MBX, "send", "-N", ns, "--wait", "100", "nobody-here", "{}")
        self.assert_one_line_error(r, 5)  # still served, by the first broker
        with open(log, encoding="utf-8") as f:
            self.assertIn("was removed or replaced; took it again", f.read())

    # ---- the broker ---------------------------------------------------------------------

    def test_second_broker_is_refused_naming_the_first(self):
        ns = self.broker()
        r = run(MAILBOXD, "-N", ns)
        self.assert_one_line_error(r, 3, f"pid {self.namespaces[0].proc.pid}")

    def test_losers_of_a_start_race_name_the_winner(self):
        # 30 brokers started at once on a new namespace, five times: one serves, and
        # every other is refused naming it, however early in its start it lost.
        gate = os.path.join(tempfile.mkdtemp(), "gate")
        os.mkfifo(gate)
        for _ in range(5):
            ns = new_namespace("race")
            # Each waits at a gate (opening a FIFO returns to all at once when a writer
            # opens it), then becomes mailboxd: the starts really are simultaneous.
            brokers = [self.background("/bin/sh", "-c", ': < "$0"; exec "$@"', gate, MAILBOXD,
                                       "-N", ns) for _ in range(30)]
            try:
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not all(
                        self.waits_at_gate(p.pid) for p in brokers):
                    time.sleep(0.01)
                os.close(os.open(gate, os.O_WRONLY))
                refused = {}
                deadline = time.monotonic() + 15
                while len(refused) < len(brokers) - 1 and time.monotonic() < deadline:
                    for p in brokers:
                        if p.pid not in refused and p.poll() is not None:
                            refused[p.pid] = (p.returncode, p.stderr.read())
                    time.sleep(0.02)
                serving = [p for p in brokers if p.pid not in refused]
                self.assertEqual(len(serving), 1, refused)
                winner = serving[0].pid
                for pid, (code, err) in refused.items():
                    self.assertEqual(code, 3, err)
                    self.assertIn(f"served by mailboxd pid {winner}", err)
                    self.assertEqual(len(err.strip().splitlines()), 1, err)
            finally:
                for p in brokers:
                    if p.poll() is None:
                        p.send_signal(signal.SIGTERM)
                        try:
                            p.wait(timeout=5)
                        except subprocess.TimeoutExpired:
                            p.kill()
                            p.wait()
                for path in runtime_files(ns):
                    if os.path.exists(path):
                        os.unlink(path)
        shutil.rmtree(os.path.dirname(gate))

    @staticmethod
    def waits_at_gate(pid):
        try:
            with open(f"/proc/{pid}/wchan", encoding="utf-8") as f:
                return f.read() == "wait_for_partner"
        except OSError:
            return False

    def test_daemon_returns_when_ready_with_pid_and_pidfile(self):
        ns = new_namespace("daemon")
        with tempfile.TemporaryDirectory() as tmp:
            pidfile = os.path.join(tmp, "broker.pid")
            r = run(MAILBOXD, "-N", ns, "-d", "--pidfile", pidfile)
            pid = int(r.stdout.strip()) if r.returncode == 0 else 0
            try:
                self.assertEqual(r.returncode, 0, r.stderr)
                with open(pidfile, encoding="ascii") as f:
                    self.assertEqual(int(f.read()), pid)
                # Ready means ready: a client connects at once, no retry.
                r2 = run(MBX, "recv", "-N", ns, "-t", "50", "first")
                self.assertEqual(r2.returncode, 0, r2.stderr)
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 5
                while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
                    time.sleep(0.01)
                self.assertFalse(os.path.exists(f"/proc/{pid}"))
                self.assertFalse(os.path.exists(pidfile))
                self.assertFalse(os.path.exists(f"/dev/shm/mailbox.{ns}"))
            finally:
                if pid > 0 and os.path.exists(f"/proc/{pid}"):
                    os.kill(pid, signal.SIGKILL)
                if os.path.exists(f"/dev/shm/mailbox.{ns}"):
                    os.unlink(f"/dev/shm/mailbox.{ns}")

    def test_sigterm_ends_blocked_receiver_with_shutdown(self):
        ns = self.broker()
        rx = self.background(MBX, "recv", "-N", ns, "-c", "1", "waiter")
        self.wait_for_client(ns, "waiter")
        self.namespaces[0].proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.namespaces[0].proc.wait(timeout=5), 0)
        _, err = rx.communicate(timeout=5)
        self.assertEqual(rx.returncode, 7)
        self.assertIn("shut down", err)

    def test_control_characters_in_names_are_escaped(self):
        ns = self.broker()
        for args in (["send", "-N", ns, "a\nb\x1b[31m", "{}"], ["recv", "-N", ns, "x\ty"],
                     ["list", "-N", "bad\nns"], ["no\x1bcommand"]):
            r = run(MBX, *args)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertEqual(len(r.stderr.splitlines()), 1, repr(r.stderr))
            self.assertNotIn("\x1b", r.stderr)
            self.assertNotIn("\t", r.stderr)
        self.assertIn("\\n", run(MBX, "send", "-N", ns, "a\nb", "{}").stderr)
        r = run(MAILBOXD, "-N", "evil\x1b]0;title\x07")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(len(r.stderr.splitlines()), 1, repr(r.stderr))
        self.assertNotIn("\x1b", r.stderr)
        self.assertNotIn("\x07", r.stderr)

    def test_bench_fails_fast_without_enough_slots(self):
        ns = self.broker("--slots", "2")
        r = run(MBX, "bench", "-N", ns, "--mode", "throughput", "--senders", "4", "-c", "100")
        self.assert_one_line_error(r, 9, "free slots", "needs 5")
        r = run(MBX, "bench", "-N", ns, "--size", "100000", "-c", "10")
        self.assert_one_line_error(r, 2, "--size")

    def test_bench_peer_namespace_needs_a_bridge(self):
        # Two namespaces nobody bridges: the receiving side's name never appears in the
        # sending side's namespace, so bench stops everything and says why (exit 5). The
        # wait is shortened for the test (the command's own is 15 s).
        ns, peer = self.broker(), self.broker()
        env = dict(os.environ, MBX_TEST_BENCH_PEER_WAIT_MS="300")
        for mode in ("pingpong", "throughput", "request"):
            with self.subTest(mode=mode):
                r = run(MBX, "bench", "-N", ns, "--peer-namespace", peer, "--mode", mode,
                        "-c", "100", "--json", env=env)
                self.assert_one_line_error(r, 5, "did not appear", "mailbox-bridge",
                                           f"'{ns}'", f"'{peer}'")
                self.assertEqual(r.stdout, "")
        for n in (ns, peer):
            self.assertEqual(json.loads(run(MBX, "list", "-N", n, "--json").stdout)["clients"],
                             [])
        for bad in (["--peer-namespace", ns], ["--peer-namespace", "..x"],
                    ["--peer-namespace", peer, "--mode", "fanout"]):
            with self.subTest(bad=bad):
                self.assert_one_line_error(run(MBX, "bench", "-N", ns, *bad), 2,
                                           "--peer-namespace")

    def test_bench_processes_die_with_the_command(self):
        ns = self.broker()
        bench = self.background(MBX, "bench", "-N", ns, "--mode", "throughput", "--senders",
                                "2", "-c", "100000000")
        deadline = time.monotonic() + 10
        names = []
        while time.monotonic() < deadline and len(names) < 3:
            r = run(MBX, "list", "-N", ns, "--json")
            names = [c["name"] for c in json.loads(r.stdout)["clients"]]
            time.sleep(0.02)
        self.assertEqual(len(names), 3, names)
        bench.kill()
        bench.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and names:
            r = run(MBX, "list", "-N", ns, "--json")
            names = [c["name"] for c in json.loads(r.stdout)["clients"]]
            time.sleep(0.05)
        self.assertEqual(names, [])

    def test_segment_cannot_be_resized(self):
        # Any member can get at the segment (here: through the broker's /proc entry, as
        # its own user may) but nobody can change its size: a truncation would kill every
        # process that maps it with SIGBUS.
        ns = self.broker()
        broker = self.namespaces[0].proc
        self.assertFalse(os.path.exists(f"/dev/shm/mailbox.{ns}"))  # no name to open
        fds = [f"/proc/{broker.pid}/fd/{n}" for n in os.listdir(f"/proc/{broker.pid}/fd")]
        segment = [p for p in fds if os.readlink(p).startswith(f"/memfd:mailbox.{ns}")]
        self.assertEqual(len(segment), 1, [os.readlink(p) for p in fds])
        fd = os.open(segment[0], os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            for new_size in (4096, 0, size * 2):
                with self.assertRaises(PermissionError):
                    os.ftruncate(fd, new_size)
            self.assertEqual(os.fstat(fd).st_size, size)
        finally:
            os.close(fd)
        rx = self.background(MBX, "recv", "-N", ns, "-c", "1", "-t", "10000", "alive")
        self.wait_for_client(ns, "alive")
        self.assertEqual(run(MBX, "send", "-N", ns, "alive", "[1]").returncode, 0)
        out, _ = rx.communicate(timeout=TIMEOUT)
        self.assertEqual(out, "[1]\n")
        self.assertIsNone(broker.poll())

    def test_wait_send_wait_and_ready_in_any_order(self):
        # The broker, the receiver and the sender, started in every order the tools allow
        # (a receiver needs its broker): nothing polls, nothing races, nothing is lost.
        for order in (("broker", "recv", "send"), ("broker", "send", "recv"),
                      ("send", "broker", "recv"), ("wait", "send", "broker", "recv")):
            with self.subTest(order=order):
                ns = new_namespace("order")
                procs = {}
                broker = None
                for step in order:
                    if step == "broker":
                        broker = Namespace(ns)
                        self.namespaces.append(broker)
                    elif step == "wait":
                        procs["wait"] = self.background(MBX, "wait", "-N", ns, "-t", "15000", "w")
                    elif step == "send":
                        procs["send"] = self.background(MBX, "send", "-N", ns, "--wait", "15000",
                                                        "w", '{"n":1}')
                    else:
                        procs["recv"] = self.background(MBX, "recv", "-N", ns, "--ready", "-c",
                                                        "1", "-t", "15000", "w")
                    time.sleep(0.1)  # not needed for correctness: lets each one start first
                out, err = procs["recv"].communicate(timeout=TIMEOUT)
                self.assertEqual((procs["recv"].returncode, out), (0, '{"n":1}\n'), err)
                self.assertEqual(err.splitlines()[0], "ready w")
                for name in ("send", "wait"):
                    if name in procs:
                        _, err = procs[name].communicate(timeout=TIMEOUT)
                        self.assertEqual(procs[name].returncode, 0, err)

    # ---- logs and the service manager ---------------------------------------------------

    def test_log_lines_levels_and_sighup_reopen(self):
        d = tempfile.mkdtemp()
        log = os.path.join(d, "broker.log")
        ns = self.broker("--log", log, "--log-level", "debug")
        self.assertEqual(run(MBX, "send", "-N", ns, "--wait", "100", "nobody", "1").returncode, 5)
        with open(log, encoding="utf-8") as f:
            first = f.readline()
        # RFC 3339 with milliseconds and the zone, then program[pid], namespace, level.
        self.assertRegex(first, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d "
                                r"mailboxd\[\d+\] " + ns.replace(".", r"\.") + r" info: ")
        # Rotation: move the file away, SIGHUP, and the broker writes a new one.
        os.rename(log, log + ".1")
        broker = self.namespaces[-1].proc
        broker.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while not os.path.exists(log) and time.monotonic() < deadline:
            time.sleep(0.02)
        with open(log, encoding="utf-8") as f:
            self.assertIn("log file reopened", f.read())
        self.assertIsNone(broker.poll())  # SIGHUP does not stop it
        # A log that cannot be opened stops the start, in one line (never logs nowhere).
        self.assert_one_line_error(run(MAILBOXD, "-N", new_namespace("nolog"), "--log",
                                       os.path.join(d, "none", "x.log")), 1, "cannot open log")
        self.assert_one_line_error(run(MAILBOXD, "--log-level", "loud"), 2, "--log-level")

    def test_daemon_logs_somewhere_it_names(self):
        ns = new_namespace("dlog")
        r = run(MAILBOXD, "-N", ns, "-d")
        self.assertEqual(r.returncode, 0, r.stderr)
        pid = int(r.stdout)
        try:
            if os.path.exists("/dev/log"):
                self.assertEqual(r.stderr, "")  # syslog
            else:
                self.assertIn("no system log (/dev/log); logging to ", r.stderr)
                path = r.stderr.strip().rsplit(" ", 1)[1]
                with open(path, encoding="utf-8") as f:
                    self.assertIn(f" {ns} info: namespace '{ns}' ready", f.read())
                os.unlink(path)
        finally:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
                time.sleep(0.02)

    def test_service_manager_hears_status_watchdog_and_stopping(self):
        ns = new_namespace("notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        name = f"mbxtest-notify-{ns}"
        sock.bind("\0" + name)
        sock.settimeout(10)
        env = dict(os.environ, NOTIFY_SOCKET="@" + name, WATCHDOG_USEC="200000")
        broker = subprocess.Popen([MAILBOXD, "-N", ns], env=env, stderr=subprocess.DEVNULL,
                                  preexec_fn=_die_with_parent)
        seen = []
        try:
            def until(pred):
                while not pred():
                    seen.append(sock.recv(512).decode())
            until(lambda: any("READY=1" in m for m in seen))
            ready = [m for m in seen if "READY=1" in m][0]
            self.assertIn(f"MAINPID={broker.pid}", ready)
            self.assertIn(f"STATUS=serving namespace '{ns}'", ready)
            until(lambda: sum(m == "WATCHDOG=1" for m in seen) >= 2)  # every 100 ms
            rx = self.background(MBX, "recv", "-N", ns, "--ready", "x")
            self.wait_ready(rx)
            until(lambda: any("1 clients" in m for m in seen))
            broker.send_signal(signal.SIGTERM)
            until(lambda: any("STOPPING=1" in m for m in seen))
            self.assertEqual(broker.wait(timeout=10), 0)
        finally:
            sock.close()
            if broker.poll() is None:
                broker.kill()
                broker.wait()

    # ---- watching and cleaning up ------------------------------------------------------------

    def test_list_totals_long_names_and_watch(self):
        ns = self.broker()
        long_name = "a-client-with-a-name-much-longer-than-twenty-four"
        rx = self.background(MBX, "recv", "-N", ns, "--ready", "-c", "3", "-t", "15000",
                             long_name)
        self.wait_ready(rx)
        for i in range(3):  # three short-lived senders: their counts stay in the totals
            self.assertEqual(run(MBX, "send", "-N", ns, long_name, str(i)).returncode, 0)
        rx.communicate(timeout=TIMEOUT)
        doc = json.loads(run(MBX, "list", "-N", ns, "--json").stdout)
        LIST.validate(doc)
        # mbx send takes no slot (send-only): its messages count, it is not a client seen.
        self.assertEqual(doc["totals"], {"sent": 3, "received": 3, "refused_full": 0,
                                         "discarded": 0, "clients_seen": 1})
        keep = self.background(MBX, "recv", "-N", ns, "--ready", long_name)
        self.wait_ready(keep)
        table = run(MBX, "list", "-N", ns).stdout
        self.assertIn("totals     3 sent, 3 received, 0 refused as full", table)
        rows = [line for line in table.splitlines() if line.startswith(long_name)]
        self.assertEqual(len(rows), 1)
        header = [line for line in table.splitlines() if line.startswith("NAME")][0]
        # The columns line up under their headings, whatever the name's length.
        at = header.index("SLOT")
        self.assertTrue(rows[0][at:at + 4].strip().isdigit(), (header, rows[0]))
        # --watch: one JSON object per interval, until SIGINT (exit 0).
        w = self.background(MBX, "list", "-N", ns, "--watch", "-i", "0.1", "--json")
        lines = [w.stdout.readline() for _ in range(3)]
        w.send_signal(signal.SIGINT)
        w.communicate(timeout=TIMEOUT)
        self.assertEqual(w.returncode, 0)
        for line in lines:
            LIST.validate(json.loads(line))
        self.assert_one_line_error(run(MBX, "list", "-N", ns, "--watch", "-i", "0"), 2)

    def test_namespaces_and_clean(self):
        served = self.broker()
        dead = Namespace(new_namespace("dead"))
        self.namespaces.append(dead)
        lingering = run(MBX, "recv", "-N", dead.name, "--linger", "60", "-t", "100", "w")
        self.assertEqual(lingering.returncode, 0, lingering.stderr)
        dead.proc.kill()  # its keeper keeps the lingering mailbox for the next broker
        dead.proc.wait()
        doc = json.loads(run(MBX, "namespaces", "--json").stdout)
        NAMESPACES.validate(doc)
        states = {e["name"]: e for e in doc["namespaces"]}
        self.assertEqual(states[served]["state"], "served")
        self.assertEqual(states[dead.name]["state"], "orphaned")
        self.assertEqual(states[dead.name]["broker_pid"], dead.proc.pid)
        self.assertIn(dead.name, run(MBX, "namespaces").stdout)
        self.assert_one_line_error(run(MBX, "clean", served), 12, "a broker serves it")
        r = run(MBX, "clean", dead.name)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("keeper let the segment go", r.stdout)
        self.assertEqual(keeper_pid(dead.name), 0)
        for path in runtime_files(dead.name):
            self.assertFalse(os.path.exists(path), path)
        self.assertNotIn(dead.name, run(MBX, "namespaces").stdout)
        self.assertEqual(run(MBX, "clean", dead.name).stdout.strip(),
                         f"{dead.name}: nothing to clean")
        self.assert_one_line_error(run(MBX, "clean"), 2)
        self.assert_one_line_error(run(MBX, "clean", "../x"), 2)

    def test_a_thousand_shell_senders_at_once(self):
        # mbx send takes no slot: a thousand of them at once on a namespace of 64 slots.
        ns = self.broker("--depth", "1100", "--max-message", "64")
        # The receiver's time limit covers the whole run: a thousand processes start slowly
        # under the sanitizers on a loaded machine (62 s once, with load average 45).
        rx = self.background(MBX, "recv", "-N", ns, "--ready", "-c", "1000", "-t", "150000", "x")
        self.wait_ready(rx)
        # One file for all their error lines: a thousand pipes could exceed the fd limit.
        errors = tempfile.TemporaryFile(mode="w+")
        senders = [subprocess.Popen([MBX, "send", "-N", ns, "-t", "30000", "x", str(i)],
                                    stdout=subprocess.DEVNULL, stderr=errors,
                                    preexec_fn=_die_with_parent)
                   for i in range(1000)]
        codes = [p.wait(timeout=120) for p in senders]
        errors.seek(0)
        self.assertEqual([c for c in codes if c != 0], [], errors.read())
        out, err = rx.communicate(timeout=TIMEOUT)
        self.assertEqual(rx.returncode, 0, err)
        self.assertEqual(sorted(int(line) for line in out.split()), list(range(1000)))
        doc = json.loads(run(MBX, "list", "-N", ns, "--json").stdout)
        self.assertEqual(doc["totals"]["sent"], 1000)

    # ---- shell habits ---------------------------------------------------------------------

    def test_send_whole_input_or_file(self):
        ns = self.broker("--max-message", "64")
        rx = self.background(MBX, "recv", "-N", ns, "--ready", "-c", "3", "-t", "15000", "x")
        self.wait_ready(rx)
        pretty = '{\n  "a": [\n    1,\n    2\n  ]\n}\n'  # as jq . prints it
        self.assertEqual(run(MBX, "send", "-N", ns, "--whole", "x", stdin=pretty).returncode, 0)
        path = os.path.join(tempfile.mkdtemp(), "msg.json")
        with open(path, "w", encoding="utf-8") as f:
            f.write('{"from": "file"}')
        self.assertEqual(run(MBX, "send", "-N", ns, "-f", path, "x").returncode, 0)
        self.assertEqual(run(MBX, "send", "-N", ns, "--file", "-", "x", stdin="[3]").returncode,
                         0)
        out, err = rx.communicate(timeout=TIMEOUT)
        self.assertEqual((rx.returncode, out), (0, '{"a":[1,2]}\n{"from":"file"}\n[3]\n'), err)
        self.assert_one_line_error(run(MBX, "send", "-N", ns, "-f", path + ".none", "x"), 2,
                                   "cannot open")
        self.assert_one_line_error(run(MBX, "send", "-N", ns, "--whole", "x", "{}"), 2)
        self.assert_one_line_error(run(MBX, "send", "-N", ns, "--whole", "-f", path, "x"), 2)
        self.assert_one_line_error(run(MBX, "send", "-N", ns, "--whole", "x",
                                       stdin="[" + "1," * 40 + "1]"), 6, "limit of 64 bytes")

    def test_recv_and_sub_end_cleanly_on_sigint_and_sigterm(self):
        ns = self.broker()
        for cmd, sig in ((["recv", "-N", ns, "--ready", "x"], signal.SIGINT),
                         (["sub", "-N", ns, "--ready", "--name", "x", "t.*"], signal.SIGTERM)):
            with self.subTest(cmd=cmd[0]):
                p = self.background(MBX, *cmd)
                self.wait_ready(p)
                send = ["send", "-N", ns, "x", "[1]"] if cmd[0] == "recv" else \
                    ["pub", "-N", ns, "t.a", "[1]"]
                self.assertEqual(run(MBX, *send).returncode, 0)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:  # until it has written the message out
                    if json.loads(run(MBX, "list", "-N", ns, "--json").stdout)["clients"][0][
                            "received"] == 1:
                        break
                    time.sleep(0.02)
                p.send_signal(sig)
                out, err = p.communicate(timeout=TIMEOUT)
                self.assertEqual((p.returncode, out), (0, "[1]\n"), err)

    def test_send_from_a_terminal_says_what_it_waits_for(self):
        import pty
        ns = self.broker()
        rx = self.background(MBX, "recv", "-N", ns, "--ready", "-c", "1", "-t", "15000", "x")
        self.wait_ready(rx)
        master, slave = pty.openpty()
        p = subprocess.Popen([MBX, "send", "-N", ns, "x"], stdin=slave, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, preexec_fn=_die_with_parent)
        self.procs.append(p)
        os.close(slave)
        os.write(master, b'{"typed": true}\n\x04')
        out, err = p.communicate(timeout=TIMEOUT)
        os.close(master)
        self.assertEqual(p.returncode, 0, err)
        self.assertIn("reading messages from the terminal", err)
        self.assertEqual(rx.communicate(timeout=TIMEOUT)[0], '{"typed":true}\n')

    # ---- topics -------------------------------------------------------------------------

    def wait_ready(self, p):
        """Waits for the 'ready NAME' line a --ready command prints on stderr."""
        import select
        ready, _, _ = select.select([p.stderr], [], [], 10)
        self.assertTrue(ready, "no ready line in 10 s")
        line = p.stderr.readline()
        self.assertTrue(line.startswith("ready "), line)
        return line.split()[1]

    def test_pub_sub_wildcards_retain_and_list(self):
        ns = self.broker()
        # Each subscriber, its patterns, and the topics below it must print, in order.
        topics = ["a", "a.b", "a.b.c", "a.c", "b.b"]
        table = [(["a.*"], ["a.b", "a.c"]), ([">"], topics), (["*.b"], ["a.b", "b.b"]),
                 (["a", "a.>"], ["a", "a.b", "a.b.c", "a.c"]), (["x.*"], [])]
        subs = []
        for patterns, want in table:
            # The one that must get nothing waits for a publication that never comes.
            n, t = (str(len(want)), "15000") if want else ("1", "1500")
            p = self.background(MBX, "sub", "-N", ns, "--ready", "--envelope", "-c", n, "-t", t,
                                *patterns)
            self.wait_ready(p)
            subs.append((p, want))
        for i, topic in enumerate(topics):
            r = run(MBX, "pub", "-N", ns, topic, f'{{"i": {i}}}')
            self.assertEqual(r.returncode, 0, r.stderr)
        for p, want in subs:
            out, err = p.communicate(timeout=TIMEOUT)
            if not want:
                self.assertEqual(p.returncode, 4, err)  # nothing came: timed out
                continue
            self.assertEqual(p.returncode, 0, err)
            got = [json.loads(line) for line in out.splitlines()]
            for env in got:
                ENVELOPE.validate(env)
            self.assertEqual([e["topic"] for e in got], want)
            self.assertEqual([e["body"]["i"] for e in got], [topics.index(t) for t in want])

        # Standard input, one publication a line; a retained one for a late subscriber.
        sub = self.background(MBX, "sub", "-N", ns, "--ready", "-c", "3", "-t", "15000",
                              "--name", "lines", "in.*")
        self.wait_ready(sub)
        r = run(MBX, "pub", "-N", ns, "in.x", stdin='[1]\n\n[2]\n{"three": 3}\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        out, err = sub.communicate(timeout=TIMEOUT)
        self.assertEqual((sub.returncode, out), (0, '[1]\n[2]\n{"three":3}\n'), err)
        self.assertEqual(run(MBX, "pub", "-N", ns, "--retain", "cfg.mode",
                             '"fast"').returncode, 0)
        r = run(MBX, "sub", "-N", ns, "-c", "1", "-t", "5000", "cfg.*")
        self.assertEqual((r.returncode, r.stdout), (0, '"fast"\n'), r.stderr)

        # mbx list: the subscriptions, their policies, and the tables' use.
        keep = self.background(MBX, "sub", "-N", ns, "--ready", "--name", "keeper", "--block",
                               "k.>", "$mbx.client.*")
        self.wait_ready(keep)
        doc = json.loads(run(MBX, "list", "-N", ns, "--json").stdout)
        LIST.validate(doc)
        self.assertEqual(doc["topics"]["retained"], 1)
        self.assertEqual(doc["topics"]["subscriptions"], 2)
        mine = [c for c in doc["clients"] if c["name"] == "keeper"][0]
        self.assertEqual(mine["subscriptions"], [{"pattern": "k.>", "policy": "block"},
                                                 {"pattern": "$mbx.client.*", "policy": "block"}])
        table = run(MBX, "list", "-N", ns).stdout
        self.assertIn("k.>", table)
        self.assertIn("2 of 1024 subscriptions, 1 of 64 retained messages", table)

    def test_sub_v_prints_the_topic(self):
        """mbx sub -v/--topic prints 'TOPIC BODY' per line, as mosquitto_sub -v does: the
        topic a wildcard matched is not lost without --envelope."""
        ns = self.broker()
        p = self.background(MBX, "sub", "-N", ns, "--ready", "-v", "-c", "2", "-t", "15000",
                            "a.>")
        self.wait_ready(p)
        for topic, body in (("a.b", '{"x": 1}'), ("a.c.d", '"two words"')):
            r = run(MBX, "pub", "-N", ns, topic, body)
            self.assertEqual(r.returncode, 0, r.stderr)
        out, err = p.communicate(timeout=TIMEOUT)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(out.splitlines(), ['a.b {"x":1}', 'a.c.d "two words"'])
        r = run(MBX, "sub", "-N", ns, "-v", "--envelope", "a.>")
        self.assert_one_line_error(r, 2, "exclude")

    # ---- mbx monitor ----------------------------------------------------------------------

    def test_monitor_shows_every_kind_once(self):
        """mbx monitor --json: a send, a request, its reply and a retained publication, each
        once, valid against schemas/monitor.schema.json, the request and reply paired."""
        ns = self.broker()
        schema = load_schema("monitor.schema.json")
        mon = self.background(MBX, "monitor", "-N", ns, "--json", "--ready", "-c", "4",
                              "-t", "15000")
        self.wait_ready(mon)
        rx = self.background(MBX, "recv", "-N", ns, "-c", "1", "-t", "15000", "--ready", "bob")
        self.wait_ready(rx)
        self.assertEqual(run(MBX, "send", "-N", ns, "--from", "alice", "bob",
                             '{"n": 1}').returncode, 0)
        echo = self.background(MBX, "reply", "-N", ns, "-c", "1", "calc", "--echo")
        self.wait_for_client(ns, "calc")
        r = run(MBX, "request", "-N", ns, "calc", '{"x":2}')
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run(MBX, "pub", "-N", ns, "--retain", "sensors.t", '{"t":21}')
        self.assertEqual(r.returncode, 0, r.stderr)
        out, err = mon.communicate(timeout=TIMEOUT)
        self.assertEqual(mon.returncode, 0, err)
        records = [json.loads(line) for line in out.splitlines()]
        for rec in records:
            schema.validate(rec)
        # Each sender's copies in its order; a reply's copy may come before its request's
        # (the responder copies its reply as soon as it has sent it).
        self.assertEqual(sorted(r["kind"] for r in records),
                         ["publish", "reply", "request", "send"])
        send, request, reply, publication = (next(r for r in records if r["kind"] == k)
                                             for k in ("send", "request", "reply", "publish"))
        self.assertLess(records.index(send), records.index(publication))
        self.assertEqual((send["from"], send["to"], send["body"], send["size"]),
                         ("alice", "bob", {"n": 1}, 7))
        self.assertEqual((request["to"], reply["from"]), ("calc", "calc"))
        self.assertEqual(reply["to"], request["from"])
        self.assertEqual(request["corr"], reply["corr"])
        self.assertEqual((publication["topic"], publication["retained"], publication["body"]),
                         ("sensors.t", True, {"t": 21}))
        self.assertNotIn("to", publication)
        rx.communicate(timeout=TIMEOUT)
        echo.communicate(timeout=TIMEOUT)

    def test_monitor_text_filters_and_no_body(self):
        """Arguments select messages from or to a name, or on a topic; --no-body leaves the
        body out; the text line says kind, sender, recipient or topic and size."""
        ns = self.broker()
        mon = self.background(MBX, "monitor", "-N", ns, "--ready", "--no-body", "-c", "2",
                              "-t", "15000", "bob", "sensors.>")
        self.wait_ready(mon)
        # A send that fails (bob is not there yet) is no traffic: not shown.
        self.assertEqual(run(MBX, "send", "-N", ns, "--from", "alice", "bob", "[0]").returncode,
                         5)
        rx = self.background(MBX, "recv", "-N", ns, "-c", "1", "-t", "15000", "--ready", "bob")
        self.wait_ready(rx)
        for args in (["send", "--from", "alice", "carol", "[1]"],
                     ["send", "--from", "alice", "bob", "[2]"],
                     ["pub", "other.t", "[3]"], ["pub", "--from", "probe", "sensors.a.b", "[4]"]):
            run(MBX, *args[:1], "-N", ns, *args[1:])  # carol is not there; other.t not selected
        out, err = mon.communicate(timeout=TIMEOUT)
        self.assertEqual(mon.returncode, 0, err)
        lines = out.splitlines()
        self.assertEqual(len(lines), 2, out)
        self.assertRegex(lines[0], r"^\d\d:\d\d:\d\d\.\d{6} send    alice -> bob 3 B$")
        self.assertRegex(lines[1], r"^\d\d:\d\d:\d\d\.\d{6} publish probe on sensors\.a\.b 3 B$")
        rx.communicate(timeout=TIMEOUT)

    def test_monitor_timeout_holds_under_traffic(self):
        """-t ends the monitor however much keeps coming (and however much its filter
        hides): it is a time limit in all, not a quiet spell. Deep mailboxes: the monitor
        never catches up with the flood."""
        ns = self.broker("--slots", "8", "--depth", "65536", "--mailbox-bytes", "8M")
        flood = self.background(MBX, "bench", "-N", ns, "-m", "throughput", "-c", "100000000")
        self.wait_for_client(ns, f"bench.{flood.pid}.sink")
        for extra in ([], ["nobody-at-all"]):
            with self.subTest(extra=extra):
                r = run(MBX, "monitor", "-N", ns, "--no-body", "-t", "300", *extra, timeout=30)
                self.assertEqual(r.returncode, 0, r.stderr)
        flood.kill()

    def test_monitor_usage_limits_and_owner(self):
        ns = self.broker("--mode", "0666")
        self.assert_one_line_error(run(MBX, "monitor", "-N", ns, "a/b"), 2,
                                   "neither a client name nor a topic pattern")
        mons = [self.background(MBX, "monitor", "-N", ns, "--ready", "-t", "15000")
                for _ in range(4)]
        for m in mons:
            self.wait_ready(m)
        self.assert_one_line_error(run(MBX, "monitor", "-N", ns, "-t", "100"), 9,
                                   "at most 4 monitors")
        for m in mons:
            m.send_signal(signal.SIGINT)  # a clean end: exit 0
            m.communicate(timeout=TIMEOUT)
            self.assertEqual(m.returncode, 0)
        r = run(MBX, "monitor", "-N", ns, "-t", "100")
        self.assertEqual(r.returncode, 0, r.stderr)
        if os.geteuid() == 0:
            # The mode lets anyone send; only the owner (and root) may watch.
            self.assertEqual(self.as_nobody(MBX, "send", "-N", ns, "x", "1").returncode, 5)
            self.assert_one_line_error(self.as_nobody(MBX, "monitor", "-N", ns, "-t", "100"), 8,
                                       "only the namespace's owner")

    def test_pub_sub_errors_and_block_policy(self):
        ns = self.broker("--depth", "2")
        for args in (["pub", "-N", ns, "a..b", "1"], ["pub", "-N", ns, "$mbx.client.up", "1"],
                     ["pub", "-N", ns], ["sub", "-N", ns, "a.>.b"], ["sub", "-N", ns],
                     ["pub", "-N", ns, "-t", "x", "a", "1"]):
            with self.subTest(args=args):
                self.assert_one_line_error(run(MBX, *args), 2)
        self.assert_one_line_error(run(MBX, "pub", "-N", ns, "a", "[1"), 6, "invalid JSON")
        # A --block subscriber that does not read: the publisher waits, then names it.
        slow = self.background(MBX, "sub", "-N", ns, "--ready", "--block", "--name", "slowpoke",
                               "-c", "100", "full.*")
        self.wait_ready(slow)
        slow.send_signal(signal.SIGSTOP)
        try:
            for i in range(2):
                self.assertEqual(run(MBX, "pub", "-N", ns, "full.x", str(i)).returncode, 0)
            self.assert_one_line_error(run(MBX, "pub", "-N", ns, "-t", "100", "full.x", "9"), 4,
                                       "slowpoke")
        finally:
            slow.send_signal(signal.SIGCONT)

    def test_wait_and_send_wait_time_out(self):
        ns = self.broker()
        self.assert_one_line_error(run(MBX, "wait", "-N", ns, "-t", "100", "ghost"), 4, "ghost")
        self.assert_one_line_error(run(MBX, "send", "-N", ns, "--wait", "100", "ghost", "{}"), 5,
                                   "ghost")
        # No broker at all by the timeout: said so, exit 3 (issue 24: not a timeout).
        self.assert_one_line_error(run(MBX, "wait", "-N", new_namespace("none"), "-t", "100",
                                       "ghost"), 3, "no broker serves")
        self.assert_one_line_error(run(MBX, "wait", "-N", ns), 2)
        self.assert_one_line_error(run(MBX, "send", "-N", ns, "--wait", "x", "a", "{}"), 2)

    def test_example_event_loop_serves_mailbox_timer_and_socket(self):
        example = os.environ.get("EVENT_LOOP_BIN")
        if not example:
            self.skipTest("EVENT_LOOP_BIN not set (run through ctest)")
        ns = self.broker()
        path = os.path.join(tempfile.mkdtemp(), "loop.sock")
        loop = self.background(example, "-N", ns, "looper", path)
        self.assertEqual(run(MBX, "wait", "-N", ns, "-t", "10000", "looper").returncode, 0)
        self.assertEqual(run(MBX, "send", "-N", ns, "--from", "shell", "looper",
                             '{"hello":1}').returncode, 0)
        deadline = time.monotonic() + 10
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.01)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(path)
            s.sendall(b'{"via":"socket"}\n')
        # Its lines as they come (it prints line by line), until the socket's line and a
        # tick (every 200 ms) are out: then the quit, which must come last.
        import select
        seen = []
        deadline = time.monotonic() + 10
        while not ('mailbox looper {"via":"socket"}' in seen and
                   any(line.startswith("tick ") for line in seen)):
            left = deadline - time.monotonic()
            self.assertGreater(left, 0, f"no socket line and tick in 10 s: {seen}")
            if select.select([loop.stdout], [], [], left)[0]:
                line = loop.stdout.readline()
                self.assertTrue(line, f"the loop ended early: {seen}")
                seen.append(line.rstrip("\n"))
        self.assertEqual(run(MBX, "send", "-N", ns, "looper", '{"quit":true}').returncode, 0)
        out, err = loop.communicate(timeout=TIMEOUT)
        self.assertEqual(loop.returncode, 0, err)
        lines = seen + out.splitlines()
        self.assertIn('mailbox shell {"hello":1}', lines)
        self.assertIn('mailbox looper {"via":"socket"}', lines)
        self.assertTrue(any(line.startswith("tick ") for line in lines), out)
        self.assertTrue(lines[-1].endswith('{"quit":true}'), out)

    def test_request_and_reply_from_the_shell(self):
        ns = self.broker()
        cmd = ('/usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); '
               'sys.exit(3) if d == \'fail\' else print(\'not json\') if d == \'junk\' '
               'else print(json.dumps(sum(d)))"')
        server = self.background(MBX, "reply", "-N", ns, "-c", "4", "adder", "--exec", cmd)
        self.assertEqual(run(MBX, "wait", "-N", ns, "-t", "10000", "adder").returncode, 0)
        r = run(MBX, "request", "-N", ns, "adder", "[1,2,3]")
        self.assertEqual((r.returncode, r.stdout), (0, "6\n"), r.stderr)
        r = run(MBX, "request", "-N", ns, "--envelope", "adder", "[4,5]")
        self.assertEqual(r.returncode, 0, r.stderr)
        env = json.loads(r.stdout)
        ENVELOPE.validate(env)
        self.assertEqual((env["kind"], env["body"]), ("reply", 9))
        # A command that fails, and one that prints something that is not JSON: an error
        # reply each, and the server goes on.
        r = run(MBX, "request", "-N", ns, "adder", '"fail"')
        self.assertEqual(json.loads(r.stdout), {"error": "the command failed", "status": 3})
        r = run(MBX, "request", "-N", ns, "adder", '"junk"')
        self.assertEqual(json.loads(r.stdout), {"error": "the command's output is not JSON"})
        _, err = server.communicate(timeout=TIMEOUT)
        self.assertEqual(server.returncode, 0, err)
        # Nobody serves it, or nobody answers in time.
        self.assert_one_line_error(run(MBX, "request", "-N", ns, "nobody", "1"), 5, "nobody")
        hang = self.background(MBX, "reply", "-N", ns, "-c", "1", "slow", "--exec", "sleep 3; echo 1")
        self.assertEqual(run(MBX, "wait", "-N", ns, "-t", "10000", "slow").returncode, 0)
        self.assert_one_line_error(run(MBX, "request", "-N", ns, "-t", "300", "slow", "1"), 4,
                                   "no reply")
        _, err = hang.communicate(timeout=TIMEOUT)  # it answers, late: dropped, and counted
        self.assertEqual(hang.returncode, 0, err)
        self.assert_one_line_error(run(MBX, "reply", "-N", ns, "x"), 2)
        self.assert_one_line_error(run(MBX, "reply", "-N", ns, "x", "--echo", "1"), 2)
        echo = self.background(MBX, "reply", "-N", ns, "-c", "1", "echo", "--echo")
        r = run(MBX, "request", "-N", ns, "--wait", "10000", "echo", '{"same": "body"}')
        self.assertEqual(r.stdout, '{"same":"body"}\n', r.stderr)
        echo.communicate(timeout=TIMEOUT)

    def test_reply_exec_output_with_a_nul_is_not_json(self):
        # A NUL byte does not end a command's output: what follows it is output too, so
        # '{"a":1}<NUL> not json' is junk, not {"a":1}; a NUL inside a string is no JSON
        # either. A clean answer afterwards shows the server went on.
        ns = self.broker()
        cmd = ("read -r x; case $x in 1) printf '{\"a\":1}\\0 not json';; "
               "2) printf '{\"a\":\"x\\0y\"}';; 3) printf '\\0';; *) echo '{\"b\":2}';; esac")
        server = self.background(MBX, "reply", "-N", ns, "-c", "4", "nul", "--exec", cmd)
        self.assertEqual(run(MBX, "wait", "-N", ns, "-t", "10000", "nul").returncode, 0)
        for request in ("1", "2", "3"):
            r = run(MBX, "request", "-N", ns, "nul", request)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(json.loads(r.stdout), {"error": "the command's output is not JSON"},
                             f"request {request}")
        r = run(MBX, "request", "-N", ns, "nul", "4")
        self.assertEqual((r.returncode, r.stdout), (0, '{"b":2}\n'), r.stderr)
        _, err = server.communicate(timeout=TIMEOUT)
        self.assertEqual(server.returncode, 0, err)

    def test_example_service_group(self):
        example = os.environ.get("SERVICE_BIN")
        if not example:
            self.skipTest("SERVICE_BIN not set (run through ctest)")
        ns = self.broker()
        servers = [self.background(example, "serve", "-N", ns, "2") for _ in range(2)]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = run(MBX, "list", "-N", ns, "--json")
            if sum(c["name"] == "adder" for c in json.loads(r.stdout)["clients"]) == 2:
                break
            time.sleep(0.02)
        answers = [run(example, "ask", "-N", ns, f"[{i},{i},0.5]") for i in range(4)]
        self.assertEqual([(a.returncode, a.stdout) for a in answers],
                         [(0, f"{2 * i + 0.5:g}\n") for i in range(4)])
        for s in servers:  # each serves two, then leaves the group
            s.communicate(timeout=TIMEOUT)
            self.assertEqual(s.returncode, 0)

    def wait_until_lingering(self, ns, name):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = run(MBX, "list", "-N", ns, "--json")
            if r.returncode == 0 and any(c["name"] == name and c["lingering"]
                                         for c in json.loads(r.stdout)["clients"]):
                return
            time.sleep(0.02)
        self.fail(f"{name} never lingered")

    def test_recv_keeps_a_message_it_cannot_write_out(self):
        ns = self.broker()
        # Standard output a full device, then a pipe whose reader has gone: one line on
        # stderr, exit 11, and the message is still there for the next 'mbx recv'.
        with open("/dev/full", "w") as full:
            rx = subprocess.Popen([MBX, "recv", "-N", ns, "--linger", "30", "-c", "1", "keep"],
                                  stdout=full, stderr=subprocess.PIPE, text=True,
                                  preexec_fn=_die_with_parent)
            self.procs.append(rx)
            self.wait_for_client(ns, "keep")
            self.assertEqual(run(MBX, "send", "-N", ns, "keep", '{"n":1}').returncode, 0)
            _, err = rx.communicate(timeout=TIMEOUT)
        self.assertEqual(rx.returncode, 11, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn("stays in the mailbox", err)
        self.wait_until_lingering(ns, "keep")
        # A pipe whose reader is gone before the receiver starts (closing it after the
        # start raced the receiver, which takes the lingering message at once).
        r_end, w_end = os.pipe()
        os.close(r_end)
        try:
            rx = subprocess.Popen([MBX, "recv", "-N", ns, "--linger", "30", "-c", "1", "keep"],
                                  stdout=w_end, stderr=subprocess.PIPE, text=True,
                                  preexec_fn=_die_with_parent)
        finally:
            os.close(w_end)
        self.procs.append(rx)
        _, err = rx.communicate(timeout=TIMEOUT)
        self.assertEqual(rx.returncode, 11, err)
        self.wait_until_lingering(ns, "keep")
        r = run(MBX, "recv", "-N", ns, "-c", "1", "-t", "5000", "keep")
        self.assertEqual((r.returncode, r.stdout), (0, '{"n":1}\n'), r.stderr)

    def test_recv_killed_while_its_output_blocks_loses_nothing(self):
        # What the pipe cannot take waits in the mailbox: room for 100 lines of 1 KB.
        ns = self.broker("--mailbox-bytes", "131072", "--depth", "128")
        total = 100
        rx = subprocess.Popen([MBX, "recv", "-N", ns, "--linger", "30", "blocked"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              preexec_fn=_die_with_parent)
        self.procs.append(rx)
        self.wait_for_client(ns, "blocked")
        pad = "x" * 1000  # a line is one write below PIPE_BUF: never torn
        lines = "".join(f'{{"n":{i},"pad":"{pad}"}}\n' for i in range(total))
        r = run(MBX, "send", "-N", ns, "-t", "10000", "blocked", stdin=lines)
        self.assertEqual(r.returncode, 0, r.stderr)
        # The pipe (64 KiB) is full and nobody reads it: the receiver is blocked writing.
        rx.send_signal(signal.SIGTERM)
        out, _ = rx.communicate(timeout=TIMEOUT)
        self.wait_until_lingering(ns, "blocked")
        r = run(MBX, "recv", "-N", ns, "-t", "2000", "blocked")
        self.assertEqual(r.returncode, 0, r.stderr)
        seen = [json.loads(line)["n"] for line in out.decode().splitlines() + r.stdout.splitlines()]
        # Every message, in order; at most one written twice (killed between its write and
        # its acknowledgement).
        self.assertEqual(sorted(set(seen)), list(range(total)))
        self.assertLessEqual(len(seen), total + 1)
        self.assertEqual(seen, sorted(seen))

    def epoch(self, ns):
        r = run(MBX, "list", "-N", ns, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)["broker"]["epoch"]

    def test_restart_adopts_and_fresh_starts_over(self):
        ns = self.broker()
        first = self.namespaces[0]
        self.assertEqual(self.epoch(ns), 0)
        # A mailbox that lingers: something a broker to come would adopt (a namespace with
        # nothing worth keeping goes with its broker).
        r = run(MBX, "recv", "-N", ns, "--linger", "60", "-t", "50", "durable")
        self.assertEqual(r.returncode, 0, r.stderr)
        first.proc.kill()
        first.proc.wait()
        # Clients are told there is no broker, and which broker left the namespace.
        for args in (["send", "-N", ns, "x", "{}"], ["list", "-N", ns]):
            self.assert_one_line_error(run(MBX, *args), 3, "no broker", f"pid {first.proc.pid}")
        second = Namespace(ns)
        self.namespaces.append(second)
        self.assertEqual(self.epoch(ns), 1)
        second.proc.kill()
        second.proc.wait()
        self.namespaces.append(Namespace(ns))
        self.assertEqual(self.epoch(ns), 2)
        self.namespaces[-1].stop()
        self.namespaces.append(Namespace(ns))  # a clean stop removed it: a new namespace
        self.assertEqual(self.epoch(ns), 0)
        r = run(MBX, "recv", "-N", ns, "--linger", "60", "-t", "50", "durable")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.namespaces[-1].proc.kill()
        self.namespaces[-1].proc.wait()
        self.namespaces.append(Namespace(ns, "--fresh"))
        self.assertEqual(self.epoch(ns), 0)
        self.namespaces[-1].stop()
        # Killed with nothing in it worth keeping, a namespace goes with its broker.
        self.namespaces.append(Namespace(ns))
        self.namespaces[-1].proc.kill()
        self.namespaces[-1].proc.wait()
        self.assert_one_line_error(run(MBX, "list", "-N", ns), 3, "no broker")
        self.assertNotIn("pid", run(MBX, "list", "-N", ns).stderr)

    def memory_cgroup(self, limit):
        """A new child of this process's memory cgroup (v1, or v2 where the memory
        controller is enabled for children), limited to `limit` bytes and removed at the
        end; None when none can be made here."""
        with open("/proc/self/cgroup", encoding="utf-8") as f:
            lines = [line.rstrip("\n").split(":", 2) for line in f]
        mounts = {}
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            for line in f:
                fields, _, tail = line.partition(" - ")
                fields, tail = fields.split(), tail.split()
                if tail[0] == "cgroup2":
                    mounts["v2"] = (fields[3], fields[4])
                elif tail[0] == "cgroup" and "memory" in tail[2].split(","):
                    mounts["v1"] = (fields[3], fields[4])
        for _, controllers, path in lines:
            if "memory" in controllers.split(",") and "v1" in mounts:
                kind, limit_file = "v1", "memory.limit_in_bytes"
            elif controllers == "" and "v2" in mounts:
                kind, limit_file = "v2", "memory.max"
            else:
                continue
            root, mnt = mounts[kind]
            if root != "/" and path.startswith(root):
                path = path[len(root):]
            parent = mnt + path.rstrip("/")
            if kind == "v2":
                try:
                    with open(f"{parent}/cgroup.subtree_control", encoding="utf-8") as f:
                        if "memory" not in f.read().split():
                            continue
                except OSError:
                    continue
            group = f"{parent}/mbxtest-{os.getpid()}-{time.monotonic_ns()}"
            try:
                os.mkdir(group)
            except OSError:
                continue
            self.addCleanup(self.remove_cgroup, group)
            with open(f"{group}/{limit_file}", "w", encoding="utf-8") as f:
                f.write(str(limit))
            return group
        return None

    @staticmethod
    def remove_cgroup(group):
        deadline = time.monotonic() + 10
        while True:  # its processes may still be on their way out
            try:
                os.rmdir(group)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def test_memory_cgroup_too_small_is_refused_at_start(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to make a memory cgroup")
        group = self.memory_cgroup(24 * 1024 * 1024)
        if group is None:
            self.skipTest("no memory cgroup can be made here")

        def enter():
            _die_with_parent()
            with open(f"{group}/cgroup.procs", "w", encoding="utf-8") as f:
                f.write(str(os.getpid()))

        # 1024 slots need about 34.5 MB: refused with the reason, before anything is
        # reserved (no OOM kill, nothing left behind).
        ns = new_namespace("cgroup")
        self.addCleanup(lambda: [os.unlink(p) for p in runtime_files(ns) if os.path.exists(p)])
        r = subprocess.run([MAILBOXD, "-N", ns, "--slots", "1024"], capture_output=True,
                           text=True, timeout=TIMEOUT, preexec_fn=enter)
        self.assert_one_line_error(r, 1, "cannot reserve", "memory cgroup", group)
        self.assertEqual([p for p in runtime_files(ns) if os.path.exists(p)], [])
        # What fits starts there.
        small = Namespace(new_namespace("cgroup"), preexec=enter)
        self.namespaces.append(small)
        self.assertEqual(run(MBX, "list", "-N", small.name).returncode, 0)

    def test_segment_of_another_version_is_refused(self):
        # A keeper (here a stand-in) holds a segment of another layout version.
        ns = new_namespace("version")
        os.makedirs(runtime_dir(), mode=0o711, exist_ok=True)
        keep_path = f"{runtime_dir()}/{ns}.keep"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        listener.bind(keep_path)
        listener.listen(4)
        listener.settimeout(10)
        fd = os.memfd_create("stand-in", os.MFD_ALLOW_SEALING)
        os.write(fd, b"MAILBOX1" + (99).to_bytes(4, "little") + bytes(4096 - 12))
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)

        def serve(times):
            for _ in range(times):
                conn, _ = listener.accept()
                if conn.recv(1) == b"A":
                    socket.send_fds(conn, [b"A"], [fd])
                    conn.recv(1)  # until the broker lets go (bye, or its exit)
                conn.close()

        server = threading.Thread(target=serve, args=(2,), daemon=True)
        server.start()
        try:
            self.assert_one_line_error(run(MAILBOXD, "-N", ns), 4, "layout version", "--fresh")
            fresh = run(MAILBOXD, "-N", ns, "--fresh", "-d")
            self.assertEqual(fresh.returncode, 0, fresh.stderr)
            self.assertEqual(self.epoch(ns), 0)
            os.kill(int(fresh.stdout), signal.SIGTERM)
            server.join(timeout=10)
            self.assertFalse(server.is_alive())
        finally:
            listener.close()
            os.close(fd)
            for path in (keep_path, *runtime_files(ns)):
                remove_runtime_file(path)  # unless the broker or its keeper did on the way out

if __name__ == "__main__":
    result = unittest.main(verbosity=2, exit=False).result
    failed = len(result.failures) + len(result.errors)
    print(f"{result.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed or result.testsRun == 0 else 0)
