"""The C library through ctypes: where it is found, and the prototypes of the part of
mailbox.h the binding uses. Nothing here is public; the structures mirror mailbox.h
field for field (tests/test_native.py checks their sizes against the library's own
behaviour)."""
import ctypes
import ctypes.util
import os
import sys

NAME_MAX = 63
TOPIC_MAX = 127


def _candidates():
    """Where libmailbox may be, in order: $MBX_LIBRARY (a file), the path recorded at
    install time (relative to this package), then the system's search."""
    env = os.environ.get("MBX_LIBRARY")
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    recorded = os.path.join(here, "_libpath.txt")
    if os.path.exists(recorded):
        with open(recorded, encoding="utf-8") as f:
            rel = f.read().strip()
        if rel:
            yield os.path.normpath(os.path.join(here, rel))
    if sys.platform == "win32":
        yield "libmailbox.dll"
        yield "mailbox.dll"
    else:
        yield "libmailbox.so.0"
        found = ctypes.util.find_library("mailbox")
        if found:
            yield found


def _load():
    errors = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            errors.append(f"{path}: {e}")
    raise ImportError("mailbox_ipc: cannot load libmailbox (set MBX_LIBRARY to its path): "
                      + "; ".join(errors))


lib = _load()

c_client_p = ctypes.c_void_p
c_message_p = ctypes.c_void_p
if sys.platform == "win32":
    c_handle = ctypes.c_void_p
else:
    c_handle = ctypes.c_int


class ConnectOptions(ctypes.Structure):
    _fields_ = [("namespace_name", ctypes.c_char_p), ("client_name", ctypes.c_char_p),
                ("timeout_ms", ctypes.c_int), ("linger_ms", ctypes.c_int),
                ("group", ctypes.c_int), ("send_only", ctypes.c_int),
                ("signals", ctypes.c_int), ("monitor", ctypes.c_int),
                ("reserved_", ctypes.c_uint64 * 7)]


class SendOptions(ctypes.Structure):
    # node and from_: mailbox-bridge's (docs/bridge.md); NULL here.
    _fields_ = [("timeout_ms", ctypes.c_int), ("trusted", ctypes.c_int),
                ("wait_ms", ctypes.c_int), ("reserved32_", ctypes.c_int),
                ("node", ctypes.c_char_p), ("from_", ctypes.c_char_p),
                ("once", ctypes.c_uint64), ("reserved_", ctypes.c_uint64 * 5)]


class SubscribeOptions(ctypes.Structure):
    _fields_ = [("policy", ctypes.c_int), ("reserved_", ctypes.c_uint64 * 8)]


class PublishResult(ctypes.Structure):
    _fields_ = [("delivered", ctypes.c_uint32), ("dropped", ctypes.c_uint32),
                ("full", ctypes.c_char * (NAME_MAX + 1)), ("reserved_", ctypes.c_uint64 * 8)]


class PublishOptions(ctypes.Structure):
    _fields_ = [("timeout_ms", ctypes.c_int), ("trusted", ctypes.c_int),
                ("retain", ctypes.c_int), ("result", ctypes.POINTER(PublishResult)), ("reserved_", ctypes.c_uint64 * 8)]


class NamespaceInfo(ctypes.Structure):
    _fields_ = [("namespace_name", ctypes.c_char * (NAME_MAX + 1)),
                ("broker_pid", ctypes.c_int64), ("uptime_s", ctypes.c_int64),
                ("epoch", ctypes.c_uint64), ("slots", ctypes.c_uint32),
                ("depth", ctypes.c_uint32), ("max_message", ctypes.c_uint32),
                ("clients", ctypes.c_uint32), ("segment_bytes", ctypes.c_uint64),
                ("discarded", ctypes.c_uint64), ("max_subscriptions", ctypes.c_uint32),
                ("subscriptions", ctypes.c_uint32), ("max_retained", ctypes.c_uint32),
                ("retained", ctypes.c_uint32), ("total_sent", ctypes.c_uint64),
                ("total_received", ctypes.c_uint64), ("total_refused_full", ctypes.c_uint64),
                ("clients_seen", ctypes.c_uint64), ("mailbox_bytes", ctypes.c_uint32),
                ("reserved32_", ctypes.c_uint32), ("reserved_", ctypes.c_uint64 * 7)]


class ClientInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * (NAME_MAX + 1)), ("slot", ctypes.c_uint32),
                ("pid", ctypes.c_int64), ("waiting", ctypes.c_uint64),
                ("sent", ctypes.c_uint64), ("received", ctypes.c_uint64),
                ("refused_full", ctypes.c_uint64), ("lingering", ctypes.c_int),
                ("late_replies", ctypes.c_uint64), ("group", ctypes.c_int),
                ("subscriptions", ctypes.c_uint32), ("dropped", ctypes.c_uint64),
                ("senders_waiting", ctypes.c_uint32)]


class SubscriptionInfo(ctypes.Structure):
    _fields_ = [("client", ctypes.c_char * (NAME_MAX + 1)), ("slot", ctypes.c_uint32),
                ("pattern", ctypes.c_char * (TOPIC_MAX + 1)), ("policy", ctypes.c_int)]


class MessageFields(ctypes.Structure):
    # body as c_char_p: the library guarantees it holds no NUL byte.
    _fields_ = [("body", ctypes.c_char_p), ("len", ctypes.c_size_t),
                ("sender", ctypes.c_char_p), ("to", ctypes.c_char_p),
                ("seq", ctypes.c_uint64), ("ts_us", ctypes.c_int64), ("kind", ctypes.c_int),
                ("correlation", ctypes.c_uint64), ("topic", ctypes.c_char_p),
                ("missed", ctypes.c_uint64), ("node", ctypes.c_char_p),
                ("reserved_", ctypes.c_uint64 * 7)]


CLIENT_VISITOR = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ClientInfo), ctypes.c_void_p)
SUBSCRIPTION_VISITOR = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(SubscriptionInfo),
                                        ctypes.c_void_p)


def _proto(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


_int, _size, _u64, _i64 = ctypes.c_int, ctypes.c_size_t, ctypes.c_uint64, ctypes.c_int64
_str = ctypes.c_char_p

strerror = _proto("mbx_strerror", _str, _int)
version = _proto("mbx_version", _str)
default_namespace = _proto("mbx_default_namespace", _str)
check_name = _proto("mbx_check_name", _int, _str)
check_topic = _proto("mbx_check_topic", _int, _str)
check_pattern = _proto("mbx_check_pattern", _int, _str)
connect_options_init = _proto("mbx_connect_options_init", None, ctypes.POINTER(ConnectOptions))
connect = _proto("mbx_connect", _int, ctypes.POINTER(ConnectOptions),
                 ctypes.POINTER(c_client_p))
close = _proto("mbx_close", None, c_client_p)
client_name = _proto("mbx_client_name", _str, c_client_p)
max_message = _proto("mbx_max_message", _size, c_client_p)
send_options_init = _proto("mbx_send_options_init", None, ctypes.POINTER(SendOptions))
send_ex = _proto("mbx_send_ex", _int, c_client_p, _str, ctypes.c_char_p, _size,
                 ctypes.POINTER(SendOptions))
wait_for = _proto("mbx_wait_for", _int, _str, _str, _int)
message_new = _proto("mbx_message_new", c_message_p)
message_free = _proto("mbx_message_free", None, c_message_p)
recv = _proto("mbx_recv", _int, c_client_p, c_message_p, _int)
recv_batch = _proto("mbx_recv_batch", _int, c_client_p, ctypes.POINTER(c_message_p), _size,
                    ctypes.POINTER(_size), _int)
request = _proto("mbx_request", _int, c_client_p, _str, ctypes.c_char_p, _size, c_message_p,
                 _int)
request_send = _proto("mbx_request_send", _int, c_client_p, _str, ctypes.c_char_p, _size, _int,
                      ctypes.POINTER(_u64))
recv_reply = _proto("mbx_recv_reply", _int, c_client_p, _u64, c_message_p, _int)
request_cancel = _proto("mbx_request_cancel", _int, c_client_p, _u64)
reply = _proto("mbx_reply", _int, c_client_p, c_message_p, ctypes.c_char_p, _size, _int)
message_fields_get = _proto("mbx_message_fields_get", None, c_message_p,
                            ctypes.POINTER(MessageFields))
message_kind = _proto("mbx_message_kind", _int, c_message_p)
message_correlation = _proto("mbx_message_correlation", _u64, c_message_p)
message_body = _proto("mbx_message_body", ctypes.c_void_p, c_message_p, ctypes.POINTER(_size))
message_from = _proto("mbx_message_from", _str, c_message_p)
message_to = _proto("mbx_message_to", _str, c_message_p)
message_seq = _proto("mbx_message_seq", _u64, c_message_p)
message_ts_us = _proto("mbx_message_ts_us", _i64, c_message_p)
message_topic = _proto("mbx_message_topic", _str, c_message_p)
message_missed = _proto("mbx_message_missed", _u64, c_message_p)
wait_handle = _proto("mbx_wait_handle", _int, c_client_p, ctypes.POINTER(c_handle))
interrupt = _proto("mbx_interrupt", _int, c_client_p)
subscribe_options_init = _proto("mbx_subscribe_options_init", None,
                                ctypes.POINTER(SubscribeOptions))
subscribe = _proto("mbx_subscribe", _int, c_client_p, _str, ctypes.POINTER(SubscribeOptions))
unsubscribe = _proto("mbx_unsubscribe", _int, c_client_p, _str)
publish_options_init = _proto("mbx_publish_options_init", None, ctypes.POINTER(PublishOptions))
publish = _proto("mbx_publish", _int, c_client_p, _str, ctypes.c_char_p, _size,
                 ctypes.POINTER(PublishOptions))
inspect = _proto("mbx_inspect", _int, _str, ctypes.POINTER(NamespaceInfo), CLIENT_VISITOR,
                 ctypes.c_void_p)
where = _proto("mbx_where", _int, _str, ctypes.c_char_p, _size)
inspect_subscriptions = _proto("mbx_inspect_subscriptions", _int, _str, SUBSCRIPTION_VISITOR,
                               ctypes.c_void_p)
