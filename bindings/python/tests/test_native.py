"""The ctypes mirrors of mailbox.h's structures have the C sizes: each _init function (and
mbx_inspect, which clears its info first) writes exactly sizeof(struct) bytes, so a
canary past the mirror's end stays as it was, and the reserved tail reads as zero."""
import ctypes

from mailbox_ipc import _native as N

CANARY = 0xA5


def written_by(fn, struct_type):
    """Calls fn on a buffer of struct_type's size plus 64 canary bytes; returns the buffer."""
    size = ctypes.sizeof(struct_type)
    buf = (ctypes.c_ubyte * (size + 64))(*([CANARY] * (size + 64)))
    fn(ctypes.cast(buf, ctypes.POINTER(struct_type)))
    return bytes(buf), size


def check(fn, struct_type):
    data, size = written_by(fn, struct_type)
    assert data[size:] == bytes([CANARY]) * 64, f"{struct_type.__name__}: C writes past the mirror"
    # The reserved tail is zeroed by C: a mirror that is too short would leave canary
    # bytes at its end (C's tail starting later than the mirror thinks).
    tail = struct_type.reserved_.offset
    assert data[tail:size] == bytes(size - tail), f"{struct_type.__name__}: tail not C's"


def test_option_structures_match_c():
    check(N.connect_options_init, N.ConnectOptions)
    check(N.send_options_init, N.SendOptions)
    check(N.subscribe_options_init, N.SubscribeOptions)
    check(N.publish_options_init, N.PublishOptions)


def test_namespace_info_matches_c(mailbox_ns):
    ns = mailbox_ns.name.encode()
    check(lambda p: N.inspect(ns, p, N.CLIENT_VISITOR(0), None), N.NamespaceInfo)
