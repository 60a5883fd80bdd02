"""The pytest plugin itself, run on inner test files (pytester): the documented example
passes as written, a leaked broker fails its test, spawned processes die even when
their test fails, and tests under pytest-xdist do not collide."""
import os
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))))
PLUGIN = ["-p", "mailbox_ipc.pytest_plugin"]


def test_the_documented_example_passes_as_written(pytester):
    with open(os.path.join(TOP, "examples", "python", "test_workers.py"), encoding="utf-8") as f:
        pytester.makepyfile(test_workers=f.read())
    r = pytester.runpytest_subprocess(*PLUGIN)
    r.assert_outcomes(passed=3)


def test_the_python_example_runs(mailbox_ns):
    p = mailbox_ns.spawn([sys.executable, os.path.join(TOP, "examples", "python",
                                                       "worker_pool.py")], timeout_s=60)
    assert p.wait(60) == 0, p.proc.stderr.read()
    out = p.proc.stdout.read()
    assert "11^2 = 121" in out


def test_a_leaked_broker_fails_its_test(pytester):
    pytester.makepyfile(test_leak="""
        import os, subprocess, time
        def test_leaks_a_broker(mailbox_ns):
            subprocess.Popen([os.environ["MAILBOXD"], "-N", mailbox_ns.name + ".extra"])
            time.sleep(0.5)
    """)
    r = pytester.runpytest_subprocess(*PLUGIN)
    r.assert_outcomes(passed=1, errors=1)
    r.stdout.fnmatch_lines(["*left behind: process pid * (*mailboxd -N *.extra)*"])


def test_spawned_processes_die_even_when_the_test_fails(pytester, tmp_path):
    pids = tmp_path / "pids"
    pytester.makepyfile(test_fails=f"""
        import time
        def sleeper(ns):
            time.sleep(60)
        def test_fails(mailbox_ns):
            a = mailbox_ns.spawn(["sleep", "60"])
            b = mailbox_ns.spawn(sleeper)
            open({str(pids)!r}, "w").write(f"{{a.pid}} {{b.pid}}")
            assert False, "fails on purpose"
    """)
    r = pytester.runpytest_subprocess(*PLUGIN)
    r.assert_outcomes(failed=1)
    for pid in map(int, pids.read_text().split()):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                    if f.read().split(") ")[1].startswith("Z"):
                        break  # dead, not reaped yet
            except FileNotFoundError:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"spawned process {pid} outlived its test")


def test_xdist_workers_do_not_collide(pytester):
    pytester.makepyfile(test_many="""
        import pytest
        @pytest.mark.parametrize("i", range(6))
        def test_same_names_everywhere(mailbox_ns, i):
            a, b = mailbox_ns.client("a"), mailbox_ns.client("b")
            a.send("b", {"i": i})
            assert b.recv(timeout_ms=1000).body == {"i": i}
    """)
    r = pytester.runpytest_subprocess(*PLUGIN, "-n", "3")
    r.assert_outcomes(passed=6)
