"""Progress events passed to the callbacks of push and pull."""

from __future__ import annotations

import enum
import os
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional

from . import _plakar

__all__ = ["Event", "EventKind", "ProgressCallback"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _datetime_ns(ns: int) -> datetime:
    """ns since the epoch -> aware UTC datetime (truncated to microseconds)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


class EventKind(str, enum.Enum):
    """What an Event reports. A str enum: ``event.kind == "file"`` works."""

    FILE = "file"            # a file was fully processed
    DIRECTORY = "directory"  # a directory was fully processed
    ERROR = "error"          # an item failed (message says why); the operation goes on
    BYTES = "bytes"          # periodic: the counters advanced
    # pull(dry_run=True) only: what the restore would do at path
    CREATE = "create"        # path would be created
    REPLACE = "replace"      # the item at path would be replaced
    REMOVE = "remove"        # the non-empty directory at path would be removed (force=True)
    SKIP = "skip"            # the item at path would be kept (the overwrite policy)
    WARNING = "warning"      # pull, tarball: a bad copy of some data was passed over (message names it)
    UNKNOWN = "unknown"      # a kind this version of the bindings does not know

    def __str__(self) -> str:
        return self.value


_KIND_BY_CODE = {code: EventKind(name) for name, code in _plakar.EVENT_KINDS.items()}


class Event:
    """One progress report. Counters are cumulative for the running operation."""

    __slots__ = ("kind", "path", "message", "files", "directories", "bytes", "errors",
                 "stored_bytes")

    kind: EventKind
    path: Optional[str]     # the item concerned (os.fsdecode'd), or None
    message: Optional[str]  # the error, for EventKind.ERROR
    files: int              # files processed so far
    directories: int        # directories processed so far
    bytes: int              # bytes of file content processed so far
    errors: int             # items that failed so far
    stored_bytes: int       # bytes written to the repository so far (push only)

    def __init__(self, kind: EventKind, path: Optional[str], message: Optional[str],
                 files: int, directories: int, bytes: int, errors: int,
                 stored_bytes: int) -> None:
        self.kind = kind
        self.path = path
        self.message = message
        self.files = files
        self.directories = directories
        self.bytes = bytes
        self.errors = errors
        self.stored_bytes = stored_bytes

    def __repr__(self) -> str:
        return (f"<plakar.Event {self.kind.value} path={self.path!r} files={self.files} "
                f"directories={self.directories} bytes={self.bytes} errors={self.errors}>")


ProgressCallback = Callable[[Event], Any]


def _adapt(progress: Optional[ProgressCallback]) -> Optional[Callable[..., None]]:
    """Wraps a user callback into the raw form the extension calls.

    Whatever the callback raises propagates through here unchanged: the extension stores
    it, cancels the operation and re-raises it to the caller.
    """
    if progress is None:
        return None
    if not callable(progress):
        raise TypeError(f"progress must be callable, not {type(progress).__name__}")
    callback: ProgressCallback = progress

    def raw(kind: int, path: Optional[bytes], message: Optional[bytes], files: int,
            directories: int, nbytes: int, errors: int, stored_bytes: int) -> None:
        callback(Event(
            _KIND_BY_CODE.get(kind, EventKind.UNKNOWN),
            None if path is None else os.fsdecode(path),
            None if message is None else message.decode("utf-8", "backslashreplace"),
            files, directories, nbytes, errors, stored_bytes))

    return raw
