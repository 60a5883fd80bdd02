"""Errors: one exception class per libmailbox error code, under MailboxError."""
from . import _native


class MailboxError(Exception):
    """A libmailbox call failed. `code` is the mbx_err value (docs/api.md, "Errors")."""

    code = -1

    def __init__(self, message: str = "", code: int = -1) -> None:
        if code >= 0:
            self.code = code
        text = _native.strerror(self.code).decode()
        super().__init__(f"{message}: {text}" if message else text)


class NoBroker(MailboxError):
    """No broker serves the namespace (MBX_ENOBROKER)."""
    code = 1


class NameTaken(MailboxError):
    """Another live client already has that name (MBX_ENAMETAKEN)."""
    code = 2


class NoRecipient(MailboxError):
    """No client of that name is connected (MBX_ENORECIPIENT)."""
    code = 3


class Full(MailboxError):
    """The recipient's mailbox stayed full until the timeout (MBX_EFULL). For a
    publication, `subscriber` names the block-policy subscriber that stayed full."""
    code = 4
    subscriber = ""


class TooLarge(MailboxError, ValueError):
    """The message is longer than the namespace's limit (MBX_ETOOLARGE)."""
    code = 5


class InvalidJson(MailboxError, ValueError):
    """The message is not one valid UTF-8 JSON value (MBX_EINVALJSON)."""
    code = 6


class Timeout(MailboxError, TimeoutError):
    """Nothing arrived before the timeout (MBX_ETIMEDOUT)."""
    code = 7


class Shutdown(MailboxError):
    """The namespace is shutting down (MBX_ESHUTDOWN)."""
    code = 8


class PermissionDenied(MailboxError, PermissionError):
    """Permission denied (MBX_EPERM)."""
    code = 9


class VersionMismatch(MailboxError):
    """Segment or broker of another layout or protocol version (MBX_EVERSION)."""
    code = 10


class Corrupt(MailboxError):
    """Shared memory failed validation (MBX_ECORRUPT)."""
    code = 11


class InvalidArgument(MailboxError, ValueError):
    """Invalid argument: a bad name, topic or option value, or misuse (MBX_EINVAL)."""
    code = 12


class NoSlots(MailboxError):
    """Every slot (or subscription) of the namespace is taken (MBX_ENOSLOTS)."""
    code = 13


class OutOfMemory(MailboxError, MemoryError):
    """Out of memory (MBX_ENOMEM)."""
    code = 14


class Gone(MailboxError):
    """The recipient went away while the sender waited (MBX_EGONE)."""
    code = 15


class Exists(MailboxError):
    """The namespace already exists (MBX_EEXIST)."""
    code = 16


class SystemFailure(MailboxError, OSError):
    """An unexpected operating-system error (MBX_ESYSTEM)."""
    code = 17


class Interrupted(MailboxError):
    """A receive was interrupted by Client.interrupt() (MBX_EINTR)."""
    code = 18


class Signalled(Interrupted):
    """A signal whose handler returned ended a publication's wait for a block-policy
    subscriber (MBX_ESIGNAL): the subscribers with room had their copy, the full ones did
    not. Other calls wait on after such a signal (docs/python.md, "Signals")."""
    code = 19


BY_CODE = {cls.code: cls for cls in (NoBroker, NameTaken, NoRecipient, Full, TooLarge,
                                     InvalidJson, Timeout, Shutdown, PermissionDenied,
                                     VersionMismatch, Corrupt, InvalidArgument, NoSlots,
                                     OutOfMemory, Gone, Exists, SystemFailure, Interrupted,
                                     Signalled)}


def check(code: int, what: str = "") -> None:
    """Raises the exception of a non-zero mbx_err."""
    if code != 0:
        raise BY_CODE.get(code, MailboxError)(what, code)
