"""mailbox_ipc: Python client of mailbox, the messaging broker for processes on one
machine (docs/python.md).

    import mailbox_ipc
    with mailbox_ipc.Client(name="worker") as c:
        msg = c.recv(timeout_ms=1000)
        print(msg.sender, msg.body)

Named mailbox_ipc because the standard library already has a module called mailbox.
"""
from . import _native
from .client import (Client, ClientInfo, Message, NamespaceInfo, PublishResult, inspect,
                     wait_for, where)
from .errors import (Corrupt, Exists, Full, Gone, InvalidArgument, InvalidJson, Interrupted,
                     MailboxError, NameTaken, NoBroker, NoRecipient, NoSlots, OutOfMemory,
                     PermissionDenied, Shutdown, Signalled, SystemFailure, Timeout,
                     TooLarge, VersionMismatch)

__all__ = ["Client", "ClientInfo", "Message", "NamespaceInfo", "PublishResult", "inspect",
           "wait_for", "where", "default_namespace", "library_version", "MailboxError", "NoBroker",
           "NameTaken", "NoRecipient", "Full", "TooLarge", "InvalidJson", "Timeout",
           "Shutdown", "PermissionDenied", "VersionMismatch", "Corrupt", "InvalidArgument",
           "NoSlots", "OutOfMemory", "Gone", "Exists", "SystemFailure", "Interrupted",
           "Signalled"]


def default_namespace() -> str:
    """$MBX_NAMESPACE if set and not empty, else "default"."""
    return _native.default_namespace().decode()


def library_version() -> str:
    """The version of the libmailbox in use."""
    return _native.version().decode()
