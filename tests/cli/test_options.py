#!/usr/bin/env python3
"""The option table is the one source of what each mbx command takes (tools/cli_commands.c):
`mbx options` prints it from the parser's own tables, and every place that lists a
command's options must agree with it, both ways. Fails on any option missing from
`mbx CMD --help`, from the command's line in `mbx --help`, from its synopsis in mbx(1) or
from its section of docs/cli.md, and on any option one of them names that the parser does
not take. (The bash completion offers what `mbx options` prints.)"""
import os
import re
import subprocess
import unittest

MBX = os.environ["MBX_BIN"]
TOP = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
TIMEOUT = 30

# A word like --max-message after one of these names another program's option.
OTHER_PROGRAMS = ("mailboxd", "mailbox-bridge")


def run(*args):
    return subprocess.run([MBX, *args], capture_output=True, text=True, timeout=TIMEOUT)


def table():
    """{command: {"--long": "-s" or None}} from `mbx options`."""
    r = run("options")
    assert r.returncode == 0, r.stderr
    out = {}
    for line in r.stdout.splitlines():
        words = line.split()
        out.setdefault(words[0], {})[words[1]] = words[2] if len(words) > 2 else None
    return out


def long_options_in(text):
    """The --words of text that are not another program's (mailboxd --depth)."""
    found = set()
    for m in re.finditer(r"(?<![\w-])(--[a-z][a-z-]*)", text):
        before = text[max(0, m.start() - 20):m.start()].replace("*", "").split()
        if before and before[-1] in OTHER_PROGRAMS:
            continue
        if len(before) >= 2 and before[-2] == "mbx":  # "mbx sub --block": that command's
            continue
        found.add(m.group(1))
    return found


class OptionTableTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.options = table()
        with open(os.path.join(TOP, "docs", "man", "mbx.1.scd"), encoding="utf-8") as f:
            cls.man = f.read()
        with open(os.path.join(TOP, "docs", "cli.md"), encoding="utf-8") as f:
            cls.cli_md = f.read()
        cls.general = run("--help").stdout

    def documented(self, cmd):
        """What the parser takes, less --help (said once for every command)."""
        return {o for o in self.options[cmd] if o != "--help"}

    def check(self, cmd, where, text):
        named = long_options_in(text) - {"--help", "--version"}
        # An option with a short name may be named by it (a synopsis says "-t MS").
        missing = {o for o in self.documented(cmd) - named
                   if self.options[cmd][o] is None or
                   not re.search(rf"(?<![\w-]){self.options[cmd][o]}\b", text)}
        self.assertEqual(sorted(missing), [],
                         f"mbx {cmd}: options the parser takes that {where} does not name")
        self.assertEqual(sorted(named - set(self.options[cmd])), [],
                         f"mbx {cmd}: options {where} names that the parser does not take")

    def test_every_command_has_a_table(self):
        for cmd in ("send", "recv", "request", "reply", "pub", "sub", "wait", "list",
                    "namespaces", "clean", "run", "bench"):
            self.assertIn(cmd, self.options)
            self.assertIn("--help", self.options[cmd])

    def test_command_help(self):
        for cmd in self.options:
            with self.subTest(cmd=cmd):
                r = run(cmd, "--help")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(run("help", cmd).stdout, r.stdout, "mbx help CMD")
                # Its usage lines and option lines (prose may name other commands' options).
                usage = r.stdout.split("\n\n")[0]
                listed = "\n".join(line for line in r.stdout.splitlines()
                                   if re.match(r"\s+-", line))
                self.check(cmd, "its --help", usage + "\n" + listed)
                for long, short in self.options[cmd].items():
                    if short is not None:
                        self.assertRegex(r.stdout, rf"(?<![\w-]){short}, {long}\b",
                                         f"{short} and {long} are not said together")

    def test_general_help(self):
        # Each command's part of `mbx --help`: from its line to the next command's.
        starts = [(m.start(), m.group(1))
                  for m in re.finditer(r"^  ([a-z]+)\b", self.general, re.M)]
        starts = [(i, c) for i, c in starts if c in self.options]
        self.assertEqual(sorted(c for _, c in starts), sorted(self.options))
        for k, (i, cmd) in enumerate(starts):
            end = starts[k + 1][0] if k + 1 < len(starts) else self.general.index("\n\n", i)
            with self.subTest(cmd=cmd):
                self.check(cmd, "mbx --help", self.general[i:end])

    def test_man_page_synopsis(self):
        synopsis = self.man[self.man.index("# SYNOPSIS"):self.man.index("# DESCRIPTION")]
        for cmd in self.options:
            with self.subTest(cmd=cmd):
                m = re.search(rf"^\*mbx {cmd}\*(.*)$", synopsis, re.M)
                self.assertIsNotNone(m, f"mbx(1) has no synopsis of mbx {cmd}")
                self.check(cmd, "mbx(1)'s synopsis", m.group(1))

    def test_cli_reference(self):
        # docs/cli.md: the command's synopsis (the block under "## mbx", continuation lines
        # indented) and the option rows of its section's table.
        block = re.search(r"^## mbx\n\n```\n(.*?)```", self.cli_md, re.M | re.S).group(1)
        for cmd in self.options:
            with self.subTest(cmd=cmd):
                m = re.search(rf"^mbx {cmd}\b.*\n(?:[ ]+.*\n)*", block, re.M)
                self.assertIsNotNone(m, f"docs/cli.md's synopsis lacks mbx {cmd}")
                s = re.search(rf"^### mbx {cmd}\n(.*?)(?=^### |^## )", self.cli_md, re.M | re.S)
                self.assertIsNotNone(s, f"docs/cli.md has no section for mbx {cmd}")
                rows = "\n".join(line.split("|")[1] for line in s.group(1).splitlines()
                                 if line.startswith("| `-"))
                self.check(cmd, "docs/cli.md", m.group(0) + rows)


if __name__ == "__main__":
    unittest.main(verbosity=1)
