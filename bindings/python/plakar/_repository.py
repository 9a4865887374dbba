"""Repositories."""

from __future__ import annotations

import os
from typing import Any, BinaryIO, Iterable, Iterator, Optional, Union

from . import _plakar
from ._check import CheckReport, GcReport
from ._entry import Entry
from ._errors import InvalidArgumentError
from ._progress import ProgressCallback, _adapt
from ._snapshot import PathArg, Snapshot, SnapshotFile, _path

__all__ = ["Repository", "SnapshotRef", "Passphrase"]

# A snapshot: a Snapshot object, or its id or any unique prefix of it (dashes optional).
SnapshotRef = Union[Snapshot, str]
# A passphrase: str (encoded as UTF-8) or bytes.
Passphrase = Union[str, bytes, bytearray, memoryview]


def _passphrase(p: Optional[Passphrase]) -> Optional[bytes]:
    if p is None:
        return None
    if isinstance(p, str):
        return p.encode("utf-8")
    return bytes(p)


def _utf8(s: Union[str, bytes]) -> bytes:
    return s if isinstance(s, bytes) else s.encode("utf-8", "surrogateescape")


def _paths(paths: Union[PathArg, Iterable[PathArg]]) -> list[bytes]:
    if isinstance(paths, (str, bytes, os.PathLike)):
        return [_path(paths)]
    out = [_path(p) for p in paths]
    if not out:
        raise ValueError("no path to push")
    return out


class Repository:
    """An open repository.

    Get one from plakar.open() or plakar.create(). Use it as a context manager, or call
    close(). Safe to use from several threads: the library serializes the calls on one
    repository, and releases the GIL while it works.

    Ownership: snapshots and files obtained from a repository keep its handle alive.
    close() makes the Repository object unusable at once, but the handle itself (and the
    repository's lock, if any) is released only when the last Snapshot and SnapshotFile
    opened from it are closed or garbage-collected. Entries hold no handle.
    """

    __slots__ = ("_h", "_id", "_encrypted", "__weakref__")

    def __init__(self, handle: _plakar.RepositoryHandle) -> None:
        if not isinstance(handle, _plakar.RepositoryHandle):
            raise TypeError("use plakar.open() or plakar.create() to get a Repository")
        self._h: Optional[_plakar.RepositoryHandle] = handle
        self._id: str = handle.id
        self._encrypted: bool = handle.encrypted

    def _handle(self) -> _plakar.RepositoryHandle:
        h = self._h
        if h is None:
            raise ValueError("repository is closed")
        return h

    @property
    def id(self) -> str:
        """The repository's id ("xxxxxxxx-xxxx-...")."""
        return self._id

    @property
    def encrypted(self) -> bool:
        return self._encrypted

    @property
    def closed(self) -> bool:
        return self._h is None

    def close(self) -> None:
        """Closes the repository (idempotent). See the class documentation for the
        snapshots and files still open."""
        h, self._h = self._h, None
        if h is not None:
            h.close()

    def __enter__(self) -> Repository:
        self._handle()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---------------------------------------------------------------- push

    def push(self, paths: Union[PathArg, Iterable[PathArg]], *,
             tags: Iterable[Union[str, bytes]] = (),
             progress: Optional[ProgressCallback] = None,
             command_line: Optional[Union[str, bytes]] = None,
             excludes: Iterable[PathArg] = (),
             parent: Optional[Union[str, bool]] = None) -> Snapshot:
        """Backs up files or directories (made absolute against the current directory)
        into a new snapshot, and returns it.

        excludes: glob patterns of items left out (not descended into): one without "/" is
        matched against each name at any depth ("*.o"), one with "/" against the absolute path.
        parent: the snapshot (id or prefix) whose unchanged files are not read again; None picks
        the newest one of the same paths from this host; False reads every file.

        progress, if given, is called with an Event for each item and periodically;
        an exception it raises cancels the push (nothing is committed) and is re-raised
        here. Raises PartialError, with the committed snapshot as ``.snapshot``, when some
        items could not be read; NotFoundError when a path does not exist (nothing written).
        """
        if isinstance(tags, (str, bytes)):
            tags = [tags]
        raw_tags = [_utf8(t) for t in tags]
        if isinstance(excludes, (str, bytes, os.PathLike)):
            excludes = [excludes]
        raw_excludes = [os.fsencode(e) for e in excludes]
        if parent is True:
            raise InvalidArgumentError("parent is a snapshot id, None or False")
        raw_parent = None if parent is None else b"" if parent is False else _utf8(parent)
        h = self._handle().push(_paths(paths), raw_tags, _adapt(progress),
                                None if command_line is None else _utf8(command_line), raw_excludes, raw_parent)
        return Snapshot._wrap(h)

    # ---------------------------------------------------------------- snapshots

    def snapshots(self) -> list[Snapshot]:
        """All snapshots, oldest first. A snapshot whose header cannot be read is left out
        (see unreadable_snapshots)."""
        return [Snapshot._wrap(h) for h in self._handle().snapshots()]

    def unreadable_snapshots(self) -> list[str]:
        """The snapshots whose header cannot be read (malformed, failed authentication,
        unsupported version), each as "snapshot ID: why": any writer of the store can add one,
        and it hides no other. gc refuses to run while one exists; rm(ID) removes it."""
        return self._handle().unreadable_snapshots()

    def __iter__(self) -> Iterator[Snapshot]:
        return iter(self.snapshots())

    def snapshot(self, prefix: str) -> Snapshot:
        """The snapshot whose id starts with prefix (dashes optional).

        Raises NotFoundError (a KeyError) when none matches, AmbiguousError (a
        LookupError) when several do.
        """
        if isinstance(prefix, Snapshot):
            prefix = prefix.id
        return Snapshot._wrap(self._handle().snapshot(_utf8(prefix)))

    def __getitem__(self, prefix: str) -> Snapshot:
        return self.snapshot(prefix)

    # ------------------------------------------- browsing (shortcuts to Snapshot methods)

    def _resolve(self, ref: SnapshotRef) -> tuple[Snapshot, bool]:
        """The snapshot for ref, and whether it was opened here (and must be closed)."""
        if isinstance(ref, Snapshot):
            return ref, False
        self._handle()
        return self.snapshot(ref), True

    def ls(self, ref: SnapshotRef, path: PathArg = "/") -> list[Entry]:
        snap, owned = self._resolve(ref)
        try:
            return snap.ls(path)
        finally:
            if owned:
                snap.close()

    def stat(self, ref: SnapshotRef, path: PathArg) -> Entry:
        snap, owned = self._resolve(ref)
        try:
            return snap.stat(path)
        finally:
            if owned:
                snap.close()

    def cat(self, ref: SnapshotRef, path: PathArg) -> bytes:
        snap, owned = self._resolve(ref)
        try:
            return snap.cat(path)
        finally:
            if owned:
                snap.close()

    def open_file(self, ref: SnapshotRef, path: PathArg) -> SnapshotFile:
        snap, owned = self._resolve(ref)
        try:
            return snap.open(path)
        finally:
            if owned:
                snap.close()  # the file keeps what it needs

    def pull(self, ref: SnapshotRef, path: PathArg = "/", to: Optional[PathArg] = None, *,
             rebase: bool = False, progress: Optional[ProgressCallback] = None,
             overwrite: str = "always", force: bool = False, dry_run: bool = False,
             verify: bool = False) -> None:
        """Snapshot.pull on the snapshot ref (an id, a unique prefix or a Snapshot)."""
        snap, owned = self._resolve(ref)
        try:
            snap.pull(path, to, rebase=rebase, progress=progress, overwrite=overwrite, force=force,
                      dry_run=dry_run, verify=verify)
        finally:
            if owned:
                snap.close()

    def tarball(self, ref: SnapshotRef, dest: Union[PathArg, BinaryIO], path: PathArg = "/",
                format: Optional[str] = None, progress: Optional[ProgressCallback] = None) -> None:
        """Snapshot.tarball() for a snapshot reference (a Snapshot or an id prefix)."""
        snap, owned = self._resolve(ref)
        try:
            snap.tarball(dest, path, format=format, progress=progress)
        finally:
            if owned:
                snap.close()

    # ---------------------------------------------------------------- searching

    def locate(self, pattern: Union[str, bytes], *, full_path: bool = False,
               snapshots: Optional[Iterable[SnapshotRef]] = None) -> list[tuple[str, str]]:
        """Entries whose name (or whole path, with full_path) matches the glob pattern
        (fnmatch: *, ?, [...]), in every snapshot or the ones given, as (snapshot id, path)
        pairs: oldest snapshot first, path order within each. A directory shared by several
        snapshots is searched once."""
        ids = [] if snapshots is None else [_utf8(s.id if isinstance(s, Snapshot) else s)
                                            for s in snapshots]
        pat = pattern if isinstance(pattern, bytes) else os.fsencode(pattern)
        return [(sid, os.fsdecode(path))
                for sid, path in self._handle().locate(pat, bool(full_path), ids)]

    def rm(self, snapshots: Iterable[SnapshotRef]) -> int:
        """Removes snapshots (Snapshot objects, ids or unique prefixes; all are resolved
        before any is removed: an unknown one raises NotFoundError and removes nothing).
        Returns how many were removed. Their data stays until gc()."""
        ids = [_utf8(s.id if isinstance(s, Snapshot) else s) for s in snapshots]
        if not ids:
            raise ValueError("no snapshot to remove")
        return int(self._handle().rm(ids))

    def keep(self, last: int = 0, *, hourly: int = 0, daily: int = 0, weekly: int = 0, monthly: int = 0,
             yearly: int = 0, dry_run: bool = False) -> list[tuple[str, bool, str]]:
        """Applies a retention policy per group of host and paths: last keeps the N newest,
        hourly/daily/weekly/monthly/yearly the newest of each of the N most recent periods
        (UTC; ISO weeks) that have one; a snapshot is kept when any rule keeps it. Removes
        the others (unless dry_run) and returns every decision as (snapshot id, kept,
        reasons), newest first within each group. At least one rule is required
        (InvalidArgumentError). Data stays until gc()."""
        decisions, _ = self._handle().keep(int(last), int(hourly), int(daily), int(weekly), int(monthly),
                                           int(yearly), bool(dry_run))
        return [(sid, bool(kept), reasons) for sid, _group, _t, kept, reasons in decisions]

    def repair(self, *, apply: bool = False, read_data: bool = False) -> dict[str, Any]:
        """Rebuilds the index from the packs' own tables of contents (with apply=True; else
        only reports); read_data=True also reads every blob and leaves damaged ones out, so
        the next push of their content stores them again. Keys: applied, packs, blobs, added
        (blobs the index lacked), dropped (entries naming packs that are gone),
        segments_before, damaged_blobs, damaged (messages naming what could not be read)."""
        report: dict[str, Any] = self._handle().repair(bool(apply), bool(read_data))
        return report

    def gc(self, *, dry_run: bool = False, repack_percent: int = 50) -> GcReport:
        """Collects garbage: deletes packs no snapshot uses, repacks packs whose live blobs
        fill less than repack_percent (0: never), rewrites the index as one segment. Never
        blocks a running push; what such a push may reuse is deleted by a later gc. Raises
        LockedError when another gc runs, CorruptError when a snapshot cannot be read (nothing
        is deleted then)."""
        return GcReport(**self._handle().gc(bool(dry_run), int(repack_percent)))

    def check(self, snapshots: Optional[Iterable[SnapshotRef]] = None, *, fast: bool = False,
              read_data: bool = False, refcounts: bool = False) -> CheckReport:
        """Checks snapshots, or the whole repository, and returns a CheckReport (problems
        are in the report, not raised; report.ok says whether there were any).

        With snapshots: everything they reference is read from the store, authenticated and
        its id recomputed, so a clean report proves a restore would succeed; fast=True only
        asks whether each referenced blob exists. Without: every snapshot header and tree is
        read and the index is compared with the packs' tables of contents; read_data=True
        also reads every pack, refcounts=True fills report.refcounts. Raises NotFoundError
        for an unknown snapshot, InvalidArgumentError for options that do not apply."""
        ids = [] if snapshots is None else [_utf8(s.id if isinstance(s, Snapshot) else s)
                                            for s in snapshots]
        return CheckReport._from_raw(self._handle().check(ids, bool(fast), bool(read_data), bool(refcounts)))

    def info(self) -> dict[str, Any]:
        """The repository's description: id, format_version, encrypted, created_ns,
        chunk_min/avg/max, compression_level, pack_size, snapshots, packs, data_blobs,
        meta_blobs, stored_bytes, data_bytes (distinct plaintext), logical_bytes (sum of the
        snapshots' sizes)."""
        info: dict[str, Any] = self._handle().info()
        return info

    def __repr__(self) -> str:
        state = "closed" if self._h is None else ("encrypted" if self._encrypted else "plaintext")
        return f"<plakar.Repository {self._id} {state}>"
