"""The child of test_signals.py: one blocking call of the binding in a loop, in its main
thread, while the parent sends it SIGINT. Every KeyboardInterrupt is reported on stdout
("K"), and the loop goes on; at the end (a message {"end": true}, or the count reached)
it prints what it got as one JSON line: {"got": [...], ...}.

Loops that run until told stop at SIGUSR1.

Usage: sigint_child.py MODE [COUNT] (environment: MBX_NAMESPACE, and the binding's own).
"""
import faulthandler
import json
import os
import signal
import sys

import mailbox_ipc as m

signal.alarm(120)  # this child's own time limit: SIGALRM kills it
faulthandler.register(signal.SIGUSR2)  # the parent's "where are you stuck?"
ns, mode = os.environ["MBX_NAMESPACE"], sys.argv[1]
c = m.Client(namespace=ns, name="child")


def say(*words):
    print(*words, flush=True)


def ended(body):
    return isinstance(body, dict) and body.get("end")


got, interrupts = [], 0
stop = False


def on_usr1(*_):
    global stop
    stop = True


signal.signal(signal.SIGUSR1, on_usr1)  # the parent's "that is enough": loops end


def report(**extra):
    say(json.dumps(dict(got=got, interrupts=interrupts, **extra)))


# SIGINT raises KeyboardInterrupt, as Python's own handler does, except while this script
# reports one: a loaded machine may deschedule the child there long enough for the
# parent's next SIGINT to land, and that one is raised as soon as the loop goes on.
armed, deferred = True, 0


def on_sigint(*_):
    global deferred
    if armed:
        raise KeyboardInterrupt
    deferred += 1


def drive(step, on_interrupt=lambda: None):
    """Calls step() until it says it is done, counting the KeyboardInterrupts. The loop
    and its back edge (where Python also looks for signals) are inside the try."""
    global interrupts, armed, deferred
    while True:
        try:
            armed = True
            if deferred:
                deferred -= 1
                raise KeyboardInterrupt
            while not step():
                pass
            return
        except KeyboardInterrupt:
            armed = False  # no call before this store: no handler runs in between
            interrupts += 1
            say("K")
            on_interrupt()


if mode != "handler":
    signal.signal(signal.SIGINT, on_sigint)
say("ready")
# A KeyboardInterrupt may also land in this script's own lines, between two calls: what
# a call returned is kept in a global until it is recorded, so that the count is the
# binding's, not this script's. Python looks for signals after calls and at loop back
# edges, never between plain stores.
pending, done, it, n, rid, r, wrong = None, False, iter(c), 0, None, None, []


def receive():
    global pending, done
    if done:
        return True
    if pending is None:
        if mode == "recv":
            pending = [c.recv()]
        elif mode == "batch":
            pending = c.recv_batch(16)
        else:
            # As a user's loop does: `for` stores the message with no look for signals
            # in between (next(it) would: it is a call).
            for msg in it:
                pending = [msg]
                break
    bodies = [msg.body for msg in pending]
    rest = [b for b in bodies if not ended(b)]
    end_seen = len(rest) != len(bodies)
    pending = None
    done = end_seen
    got.extend(rest)
    return done


def new_iterator():
    global it
    it = iter(c)  # the interrupted generator is finished: a new one


def request():
    # Requests to the parent's responder "svc", each answered with its own body. One
    # interrupted is given up, and its answer must never come out of recv().
    global r, n
    if stop and r is None:
        return True
    if r is None:
        try:
            r = c.request("svc", {"n": n}, timeout_ms=None)
        except m.Signalled:  # SIGUSR1's handler returned: the request was given up
            n += 1
            return stop
    right = r.body == {"n": n}
    r, n = None, n + 1
    if not right:
        wrong.append(n - 1)
    return False


def request_send_then_reply():
    # Every request gets its own answer, however many times its wait is interrupted (one
    # interrupted while it was being sent is given up, and sent again).
    global rid, r, n
    if stop and rid is None:
        return True
    if rid is None:
        rid = c.request_send("svc", {"n": n})
    if r is None:
        r = c.recv_reply(rid)
    right = r.body == {"n": n}
    rid, r, n = None, None, n + 1
    got.append(n - 1)
    if not right:
        wrong.append(n - 1)
    return False


def interrupted_give_up():
    global n
    if r is None:
        n += 1  # that request was given up


def stray():
    try:
        return c.recv(timeout_ms=300).raw
    except m.Timeout:
        return None


def count(call):
    """A step that makes one blocking call, COUNT times in all."""
    def step():
        global n
        if n >= int(sys.argv[2]):
            return True
        n += 1
        call()
        return False
    return step


if mode in ("recv", "batch", "iter"):
    drive(receive, new_iterator if mode == "iter" else lambda: None)
    report()
elif mode == "request":
    drive(request, interrupted_give_up)
    report(wrong=wrong, stray=stray())
elif mode == "recv_reply":
    drive(request_send_then_reply)
    report(wrong=wrong, stray=stray())
elif mode == "wait_for":
    drive(count(lambda: m.wait_for("nobody-comes", timeout_ms=None, namespace=ns)))
    report()
elif mode == "publish":
    # The parent's subscriber "full" (block policy) never reads: each publish waits.
    drive(count(lambda: c.publish("t.x", 1, timeout_ms=None)))
    report()
elif mode == "handler":
    # A Python handler that calls interrupt(): the blocked recv() raises Interrupted,
    # never KeyboardInterrupt.
    signal.signal(signal.SIGINT, lambda *_: c.interrupt())
    for _ in range(int(sys.argv[2])):
        try:
            c.recv()
            got.append("message")  # none is sent: this must not happen
        except m.Interrupted:
            interrupts += 1
            say("K")
    report()
c.close()
