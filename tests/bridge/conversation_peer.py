"""One side of a conversation across a bridge, for test_bridge_core.py's conversation
test: real processes on the libmailbox Python binding (PYTHONPATH and MBX_LIBRARY as the
binding's own tests set them), each in its host's runtime directory.

  echo NAME COUNT        serve NAME: send every lone message back to its sender, reply to
                         every request with its body; COUNT of them in all, then exit
  ping NAME PEER COUNT   as NAME, send {"i":i} to PEER and wait for {"i":i} back, i = 0..
  ask NAME PEER COUNT    as NAME, request {"i":i} of PEER and check the reply's body

Prints "ready NAME" on standard error once it holds NAME (as mbx's --ready); ping and ask print one JSON line at the end: how many
exchanges were right, and the first wrong answer, if any. Exit 0 when all were right."""

import json
import sys

from mailbox_ipc import Client

TIMEOUT_MS = 20000


def main(argv):
    mode, name = argv[1], argv[2]
    ns = None
    if argv[-2] == "-N":
        ns = argv[-1]
        argv = argv[:-2]
    with Client(namespace=ns, name=name) as c:
        print("ready", name, file=sys.stderr, flush=True)
        if mode == "echo":
            for _ in range(int(argv[3])):
                m = c.recv(timeout_ms=TIMEOUT_MS)
                if m.kind == "request":
                    c.reply(m, m.body, timeout_ms=TIMEOUT_MS)
                else:
                    # The asker's name may not have crossed to this host yet.
                    c.send(m.sender, m.body, timeout_ms=TIMEOUT_MS, wait_ms=TIMEOUT_MS)
            return 0
        peer, count = argv[3], int(argv[4])
        c.wait_for(peer, timeout_ms=TIMEOUT_MS)
        right, wrong = 0, None
        for i in range(count):
            if mode == "ping":
                c.send(peer, {"i": i}, timeout_ms=TIMEOUT_MS)
                m = c.recv(timeout_ms=TIMEOUT_MS)
                ok = m.kind == "plain" and m.sender == peer and m.body == {"i": i}
            else:
                m = c.request(peer, {"i": i}, timeout_ms=TIMEOUT_MS)
                ok = m.body == {"i": i}
            if ok:
                right += 1
            elif wrong is None:
                wrong = {"i": i, "kind": m.kind, "from": m.sender, "body": m.body}
        print(json.dumps({"right": right, "wrong": wrong}), flush=True)
        return 0 if right == count else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
