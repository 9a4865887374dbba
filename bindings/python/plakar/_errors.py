"""Exceptions raised by plakar, and the one table mapping the C ABI's codes to them.

Every exception derives from PlakarError, which carries the library's ``code`` and its
one-line message. Where a builtin exception has the same meaning, the plakar exception
derives from it too, so ``except KeyError`` or ``except PermissionError`` also work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from . import _plakar

if TYPE_CHECKING:
    from ._snapshot import Snapshot

__all__ = [
    "PlakarError",
    "NotFoundError",
    "AuthError",
    "CorruptError",
    "LockedError",
    "ExistsError",
    "InvalidArgumentError",
    "AmbiguousError",
    "CanceledError",
    "PartialError",
    "VersionError",
    "UnsupportedError",
]


class PlakarError(Exception):
    """Base class of the errors reported by libplakar.

    ``code`` is the C ABI's code (a negative ``PLAKAR_E*`` value), ``message`` the
    library's description of the failure (also ``str(error)``).
    """

    code: int = _plakar.CODES["ERROR"]

    def __init__(self, message: str = "", code: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __reduce__(self) -> Any:
        return (type(self), (self.message, self.code))

    def __str__(self) -> str:
        # KeyError (a base of NotFoundError) would quote the message: always the plain text.
        return self.message


class NotFoundError(PlakarError, KeyError):
    """The repository, snapshot or path does not exist."""

    code = _plakar.CODES["ENOTFOUND"]


class AuthError(PlakarError, PermissionError):
    """Wrong passphrase, or a passphrase is required."""

    code = _plakar.CODES["EAUTH"]


class CorruptError(PlakarError):
    """Data failed authentication or is malformed; it is never returned."""

    code = _plakar.CODES["ECORRUPT"]


class LockedError(PlakarError):
    """The repository is locked by another operation."""

    code = _plakar.CODES["ELOCKED"]


class ExistsError(PlakarError, FileExistsError):
    """A repository (or a non-empty directory) is already there."""

    code = _plakar.CODES["EEXISTS"]


class InvalidArgumentError(PlakarError, ValueError):
    """A bad argument: malformed URI, missing passphrase, NUL byte in a path, ..."""

    code = _plakar.CODES["EINVALID"]


class AmbiguousError(PlakarError, LookupError):
    """A snapshot prefix matches more than one snapshot."""

    code = _plakar.CODES["EAMBIGUOUS"]


class CanceledError(PlakarError):
    """The operation was canceled."""

    code = _plakar.CODES["ECANCELED"]


class PartialError(PlakarError):
    """The operation finished, but some items failed.

    After a push, ``snapshot`` is the committed Snapshot; its ``errors`` list the items
    that could not be read. After a pull, ``snapshot`` is None and the failed items were
    reported through the progress callback.
    """

    code = _plakar.CODES["EPARTIAL"]

    def __init__(self, message: str = "", code: Optional[int] = None,
                 snapshot: Optional[Snapshot] = None) -> None:
        super().__init__(message, code)
        self.snapshot = snapshot


class VersionError(PlakarError):
    """An object or repository of an unknown (newer) format version."""

    code = _plakar.CODES["EVERSION"]


class UnsupportedError(PlakarError):
    """The store or platform cannot do this."""

    code = _plakar.CODES["EUNSUPPORTED"]


# The one mapping from C ABI codes to exceptions; codes not listed raise PlakarError.
_MAPPED: tuple[type[PlakarError], ...] = (
    NotFoundError, AuthError, CorruptError, LockedError, ExistsError, InvalidArgumentError,
    AmbiguousError, CanceledError, PartialError, VersionError, UnsupportedError)
_BY_CODE: dict[int, type[PlakarError]] = {cls.code: cls for cls in _MAPPED}


def _from_code(code: int, message: bytes, snapshot: Any = None) -> PlakarError:
    """Builds the exception for a failed call (called by the extension module)."""
    text = message.decode("utf-8", "backslashreplace")
    cls = _BY_CODE.get(code, PlakarError)
    if cls is PartialError:
        snap = None
        if snapshot is not None:
            from ._snapshot import Snapshot
            snap = Snapshot._wrap(snapshot)
        return PartialError(text, code, snap)
    return cls(text, code)
