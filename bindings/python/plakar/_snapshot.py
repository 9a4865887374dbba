"""Snapshots, and the file objects that read their content."""

from __future__ import annotations

import io
import os
from datetime import datetime
from typing import Any, BinaryIO, Iterator, Optional, Union

from . import _plakar
from ._entry import Entry
from ._errors import InvalidArgumentError
from ._progress import ProgressCallback, _adapt, _datetime_ns

__all__ = ["Change", "Snapshot", "SnapshotFile", "PathArg"]

# A path inside a snapshot or on the local filesystem: str (may hold surrogates from
# os.fsdecode), bytes, or an os.PathLike.
PathArg = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]


def _path(path: PathArg) -> bytes:
    return os.fsencode(path)


def _text(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


class SnapshotFile(io.RawIOBase):
    """A regular file of a snapshot, open for reading (binary, unbuffered, seekable).

    Every byte returned has been authenticated; reading a corrupted chunk raises
    CorruptError. Wrap it in io.BufferedReader or io.TextIOWrapper for buffered or text
    reads. Keeps the snapshot (and its repository) open until it is closed.
    """

    def __init__(self, handle: _plakar.FileHandle, name: str) -> None:
        super().__init__()
        self._h: Optional[_plakar.FileHandle] = handle
        self._pos = 0
        self.name = name

    def _handle(self) -> _plakar.FileHandle:
        if self._h is None:
            raise ValueError("I/O operation on closed file")
        return self._h

    @property
    def size(self) -> int:
        """The size of the file's content, in bytes."""
        return self._handle().size

    def readable(self) -> bool:
        self._handle()
        return True

    def tell(self) -> int:
        self._handle()
        return self._pos

    def seekable(self) -> bool:
        self._handle()
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Moves the read position; a later read fetches only the chunk holding it. Seeking
        past the end is clamped to the end (reads there return b"")."""
        h = self._handle()
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = h.size + offset
        else:
            raise ValueError(f"invalid whence ({whence})")
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        pos = min(pos, h.size)
        h.seek(pos)
        self._pos = pos
        return pos

    def readinto(self, buffer: Any) -> int:
        n: int = self._handle().readinto(buffer)
        self._pos += n
        return n

    def readall(self) -> bytes:
        h = self._handle()
        buf = bytearray(max(h.size - self._pos, 0) + 1)
        got = 0
        while True:
            if got == len(buf):
                buf.extend(bytes(max(len(buf), io.DEFAULT_BUFFER_SIZE)))
            with memoryview(buf)[got:] as view:
                n = h.readinto(view)
            if n == 0:
                break
            got += n
        self._pos += got
        del buf[got:]
        return bytes(buf)

    def close(self) -> None:
        h = getattr(self, "_h", None)
        if h is not None:
            self._h = None
            h.close()
        super().close()

    def __repr__(self) -> str:
        state = "closed" if self._h is None else f"size={self._h.size}"
        return f"<plakar.SnapshotFile {self.name!r} {state}>"


_CHANGE_KINDS = {1: "added", 2: "removed", 3: "modified"}
_CHANGE_WHAT = ((1, "type"), (2, "content"), (4, "mode"), (8, "owner"), (16, "mtime"), (32, "xattrs"),
                (64, "size"))


class Change:
    """One difference found by Snapshot.diff(): kind is "added", "removed" or "modified";
    what (for "modified") is a frozenset of "type", "content", "mode", "owner", "mtime",
    "xattrs", "size"."""

    __slots__ = ("kind", "path", "before", "after", "what")

    def __init__(self, kind: str, path: str, before: Optional[Entry], after: Optional[Entry],
                 what: frozenset[str]) -> None:
        self.kind = kind
        self.path = path
        self.before = before
        self.after = after
        self.what = what

    @classmethod
    def _from_raw(cls, raw: Any) -> "Change":
        kind, path, before, after, what = raw
        return cls(_CHANGE_KINDS.get(kind, "modified"), os.fsdecode(path),
                   None if before is None else Entry._from_raw(before),
                   None if after is None else Entry._from_raw(after),
                   frozenset(name for bit, name in _CHANGE_WHAT if what & bit))

    def __repr__(self) -> str:
        extra = f" {sorted(self.what)}" if self.what else ""
        return f"<plakar.Change {self.kind} {self.path!r}{extra}>"


class Snapshot:
    """A snapshot: its header (plain attributes) and methods to browse and restore it.

    Keeps its repository's handle open while it lives (see Repository.close); close() it,
    or use it as a context manager, to release it early. The header attributes stay
    readable after close().
    """

    __slots__ = ("_h", "id", "time_ns", "hostname", "username", "command_line", "paths",
                 "tags", "files", "directories", "size", "errors", "__weakref__")

    _h: Optional[_plakar.SnapshotHandle]
    id: str                       # "99e53a9c-e503-4c32-8622-924bf966f15b"
    time_ns: int                  # ns since the epoch, UTC
    hostname: str
    username: str
    command_line: str
    paths: list[str]              # the paths that were pushed, absolute
    tags: list[str]
    files: int                    # regular files
    directories: int
    size: int                     # bytes of file content
    errors: list[tuple[str, str]]  # (path, message) of the items that failed at push time

    def __init__(self) -> None:
        raise TypeError("snapshots come from Repository.push(), .snapshot() or .snapshots()")

    @classmethod
    def _wrap(cls, handle: _plakar.SnapshotHandle) -> Snapshot:
        (id_, time_ns, hostname, username, command_line, paths, tags, files, directories,
         size, errors) = handle.info()
        s = cls.__new__(cls)
        s._h = handle
        s.id = id_
        s.time_ns = time_ns
        s.hostname = _text(hostname)
        s.username = _text(username)
        s.command_line = _text(command_line)
        s.paths = [os.fsdecode(p) for p in paths]
        s.tags = [_text(t) for t in tags]
        s.files = files
        s.directories = directories
        s.size = size
        s.errors = [(os.fsdecode(p), m.decode("utf-8", "backslashreplace")) for p, m in errors]
        return s

    def _handle(self) -> _plakar.SnapshotHandle:
        h: Optional[_plakar.SnapshotHandle] = self._h
        if h is None:
            raise ValueError("snapshot is closed")
        return h

    @property
    def time(self) -> datetime:
        """The snapshot's time as an aware datetime in UTC (microsecond precision)."""
        return _datetime_ns(self.time_ns)

    @property
    def closed(self) -> bool:
        return self._h is None

    def ls(self, path: PathArg = "/") -> list[Entry]:
        """The entries of a directory, sorted by name; for a non-directory, that one entry."""
        return [Entry._from_raw(raw) for raw in self._handle().ls(_path(path))]

    def iterdir(self, path: PathArg = "/") -> Iterator[Entry]:
        """Yields the entries of a directory in name order, reading one tree node at a time:
        memory stays bounded whatever the directory's size. Raises InvalidArgumentError when
        path is not a directory."""
        d = self._handle().iterdir(_path(path))
        while True:
            raw = d.next()
            if raw is None:
                return
            yield Entry._from_raw(raw)

    def diff(self, other: "Snapshot", path: PathArg = "/",
             other_path: Optional[PathArg] = None) -> list["Change"]:
        """What changed from this snapshot's path to other's other_path (default: the same
        path), in path order. A directory present on one side only is one Change; identical
        directories are skipped without being read."""
        raw = self._handle().diff(_path(path), other._handle(),
                                  None if other_path is None else _path(other_path))
        return [Change._from_raw(r) for r in raw]

    def stat(self, path: PathArg) -> Entry:
        """The entry at path. Raises NotFoundError when the path is not in the snapshot."""
        return Entry._from_raw(self._handle().stat(_path(path)))

    def cat(self, path: PathArg) -> bytes:
        """The whole content of a regular file."""
        data: bytes = self._handle().cat(_path(path))
        return data

    def open(self, path: PathArg) -> SnapshotFile:
        """Opens a regular file for reading (a binary, read-only file object)."""
        h = self._handle().open(_path(path))
        return SnapshotFile(h, os.fsdecode(path))

    def pull(self, path: PathArg = "/", to: Optional[PathArg] = None, *, rebase: bool = False,
             progress: Optional[ProgressCallback] = None, overwrite: str = "always",
             force: bool = False, dry_run: bool = False, verify: bool = False) -> None:
        """Restores path (default: everything) under the directory ``to`` (default: the
        current directory). Without rebase the full path is recreated under ``to``; with
        rebase the selected item is put directly in ``to``.

        overwrite says what happens to an item already at a restored path: "always" (the
        default: the restore gives back exactly the snapshot), "if-changed" (kept when type,
        size and mtime match), "if-newer" (replaced only by a newer one), "never". A
        non-empty directory where the snapshot has a non-directory is removed only with
        force=True (else that item fails). dry_run=True writes nothing and reports through
        progress what would be created, replaced, removed or kept (EventKind.CREATE, ...).
        verify=True reads every restored file back and checks it against the snapshot.

        Nothing below ``to`` is reached through a path string: items are created relative to
        their open parent directory without following links, so neither a forged snapshot nor
        a link planted in the target makes the restore write elsewhere.

        Raises PartialError when some items could not be restored, CorruptError when some
        content failed authentication (in both cases after restoring the rest),
        InvalidArgumentError for an unknown overwrite policy.
        """
        policy = _plakar.OVERWRITE_POLICIES.get(overwrite) if isinstance(overwrite, str) else None
        if policy is None:
            raise InvalidArgumentError(
                f"unknown overwrite policy {overwrite!r}: expected always, if-changed, if-newer or never")
        self._handle().pull(_path(path), None if to is None else _path(to), bool(rebase),
                            _adapt(progress), policy, bool(force), bool(dry_run), bool(verify))

    def tarball(self, dest: Union[PathArg, BinaryIO], path: PathArg = "/",
                format: Optional[str] = None,
                progress: Optional[ProgressCallback] = None) -> None:
        """Writes an archive of path (default: the whole snapshot) to dest: a file name, or
        a writable binary file object (its write() is called with bytes, in order).

        format is "tar" (POSIX pax), "tar.gz" (or "tgz"), "tar.zst" or "zip"; None takes it
        from dest's extension (.tar, .tar.gz, .tgz, .tar.zst, .zip), else tar. Names in the
        archive are relative to the parent of path: "/usr/share/doc" gives "doc/...".
        The archive is streamed in constant memory. A file name is written under a
        temporary name and renamed once complete: on failure nothing is left behind.

        Raises NotFoundError when path is not in the snapshot, InvalidArgumentError for an
        unknown format, CorruptError when some content fails authentication (the archive
        is then incomplete), PartialError when items that were not backed up had to be left
        out (the archive is complete). An exception raised by dest.write() or by progress
        stops the archive and propagates unchanged.
        """
        file: Optional[BinaryIO] = None
        dest_b: Optional[bytes] = None
        if isinstance(dest, (str, bytes, os.PathLike)):
            dest_b = os.fsencode(dest)
        elif callable(getattr(dest, "write", None)):
            file = dest
        else:
            raise TypeError(f"dest must be a path or a writable binary file, not {type(dest).__name__}")
        _plakar.snapshot_tarball(self._handle(), dest_b, file, _path(path), format,
                                 _adapt(progress))

    def walk(self, top: PathArg = "/") -> Iterator[tuple[str, list[Entry], list[Entry]]]:
        """Walks the tree like os.walk (top-down): yields (dirpath, directories, others),
        where the last two are lists of Entry. Removing items from ``directories`` prunes
        the walk."""
        top_s = os.fsdecode(top)
        entries = self.ls(top_s)
        dirs = [e for e in entries if e.is_dir()]
        others = [e for e in entries if not e.is_dir()]
        yield top_s, dirs, others
        for d in dirs:
            yield from self.walk(top_s.rstrip("/") + "/" + d.name)

    def close(self) -> None:
        """Releases the snapshot's handle. Files opened from it stay readable."""
        h, self._h = self._h, None
        if h is not None:
            h.close()

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Snapshot):
            return NotImplemented
        return self.id == other.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return (f"<plakar.Snapshot {self.id} {self.time.isoformat()} "
                f"files={self.files} size={self.size}>")
