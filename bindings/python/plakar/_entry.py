"""Entries of a snapshot's filesystem view."""

from __future__ import annotations

import enum
import os
import stat as _stat
from datetime import datetime
from typing import Any

from . import _plakar
from ._progress import _datetime_ns

__all__ = ["Entry", "EntryType"]


class EntryType(str, enum.Enum):
    """The type of an entry. A str enum: ``entry.type == "file"`` works."""

    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"
    FIFO = "fifo"
    CHARDEV = "chardev"
    BLOCKDEV = "blockdev"
    SOCKET = "socket"
    UNKNOWN = "unknown"  # a type this version of the bindings does not know

    def __str__(self) -> str:
        return self.value


_TYPE_BY_CODE = {code: EntryType(name) for name, code in _plakar.ENTRY_TYPES.items()}


class Entry:
    """One file, directory, symlink... of a snapshot, as recorded at push time.

    A plain value: it holds no handle and stays valid after the repository is closed.
    ``name`` is a str decoded with os.fsdecode (undecodable bytes become surrogates);
    ``os.fsencode(entry.name)`` gives the exact bytes back.
    """

    __slots__ = ("name", "type", "mode", "uid", "gid", "username", "groupname", "size",
                 "mtime_ns", "nlink", "symlink", "error", "ctime_ns", "inode", "device", "rdev", "xattrs")

    name: str
    type: EntryType
    mode: int        # st_mode, type bits included
    uid: int
    gid: int
    username: str    # "" when unknown
    groupname: str   # "" when unknown
    size: int
    mtime_ns: int    # ns since the epoch
    nlink: int
    symlink: str     # the target of a symlink, "" otherwise
    error: str       # the error recorded at push time ("" when none): the content is missing
    ctime_ns: int    # status change time at push time, ns since the epoch
    inode: int       # st_ino at push time
    device: int      # st_dev at push time
    rdev: int        # the device number of a device node, else 0
    xattrs: dict[bytes, bytes]  # extended attributes, name to value

    @classmethod
    def _from_raw(cls, raw: tuple[Any, ...]) -> Entry:
        (name, type_code, mode, uid, gid, username, groupname, size, mtime_ns, nlink,
         symlink, error, ctime_ns, inode, device, rdev, xattrs) = raw
        e = cls.__new__(cls)
        e.name = os.fsdecode(name)
        e.type = _TYPE_BY_CODE.get(type_code, EntryType.UNKNOWN)
        e.mode = mode
        e.uid = uid
        e.gid = gid
        e.username = username.decode("utf-8", "surrogateescape")
        e.groupname = groupname.decode("utf-8", "surrogateescape")
        e.size = size
        e.mtime_ns = mtime_ns
        e.nlink = nlink
        e.symlink = os.fsdecode(symlink)
        e.error = error.decode("utf-8", "backslashreplace")
        e.ctime_ns = ctime_ns
        e.inode = inode
        e.device = device
        e.rdev = rdev
        e.xattrs = dict(xattrs)
        return e

    @property
    def mtime(self) -> datetime:
        """The modification time as an aware datetime in UTC (microsecond precision)."""
        return _datetime_ns(self.mtime_ns)

    @property
    def permissions(self) -> int:
        """The permission bits of mode (``stat.S_IMODE``)."""
        return _stat.S_IMODE(self.mode)

    def is_dir(self) -> bool:
        return self.type is EntryType.DIRECTORY

    def is_file(self) -> bool:
        return self.type is EntryType.FILE

    def is_symlink(self) -> bool:
        return self.type is EntryType.SYMLINK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Entry):
            return NotImplemented
        return all(getattr(self, a) == getattr(other, a) for a in Entry.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (f"<plakar.Entry {self.name!r} {self.type.value} mode={_stat.filemode(self.mode)} "
                f"size={self.size}>")
