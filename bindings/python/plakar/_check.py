"""Check and gc reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from ._errors import PlakarError, _from_code

__all__ = ["CheckProblem", "CheckReport", "GcReport"]


@dataclass(frozen=True)
class CheckProblem:
    """One problem found by Repository.check().

    kind: "missing" (something referenced is not there), "corrupt" (damaged or
    inconsistent), "version" (an unknown format version) or "error". object names what is
    concerned: "snapshot <id>", "<id>:/path", "blob <hex>", "pack <hex>" or "index".
    """

    kind: str
    object: str
    message: str
    code: int

    def error(self) -> PlakarError:
        """The exception this problem would raise (NotFoundError, CorruptError...)."""
        return _from_code(self.code, f"{self.object}: {self.message}".encode())

    def __str__(self) -> str:
        return f"{self.object}: {self.message}"


@dataclass(frozen=True)
class CheckReport:
    """What Repository.check() found. ok is True when problems is empty.

    snapshots, entries: what was walked. blobs: distinct blobs verified (or found, with
    fast=True); bytes: plaintext bytes read and verified. packs: packs examined (whole
    repository). unreferenced_blobs/unreferenced_bytes and unindexed_packs: garbage that
    gc reclaims (not problems). refcounts: with refcounts=True, blob id (hex) -> number of
    snapshots referencing it.
    """

    snapshots: int
    entries: int
    blobs: int
    bytes: int
    packs: int
    unreferenced_blobs: int
    unreferenced_bytes: int
    unindexed_packs: int
    problems: list[CheckProblem] = field(default_factory=list)
    refcounts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __bool__(self) -> bool:
        return self.ok

    @classmethod
    def _from_raw(cls, raw: tuple[dict[str, int], list[tuple[int, str, str]], list[tuple[str, int]]]) -> CheckReport:
        stats, problems, refs = raw
        return cls(problems=[CheckProblem(_KINDS.get(code, "error"), obj, msg, code) for code, obj, msg in problems],
                   refcounts=dict(refs), **stats)


_KINDS: dict[int, str] = {-3: "missing", -5: "corrupt", -12: "version"}


@dataclass(frozen=True)
class GcReport:
    """What Repository.gc() did (or, with dry_run=True, would do).

    packs_deleted/bytes_freed: packs no snapshot uses, deleted. packs_repacked,
    blobs_repacked, bytes_repacked: packs mostly unused whose live blobs were copied out.
    packs_pending: condemned while pushes or readers were running (pushes_running,
    readers_running: their live locks); a later gc deletes them. packs_resurrected:
    condemned earlier but referenced again, kept. Also the counts and sizes before and after,
    index segments before and after, stale locks and temporary files of interrupted writes
    removed, small packs merged into full ones (packs_merged, counted in packs_repacked).
    segments_deleted: index segments superseded by a merged one (docs/format.md), deleted;
    segments_pending: superseded while pushes or readers ran, deleted by a later gc.
    """

    dry_run: bool
    snapshots: int
    live_blobs: int
    packs_before: int
    packs_after: int
    bytes_before: int
    bytes_after: int
    packs_deleted: int
    bytes_freed: int
    packs_repacked: int
    blobs_repacked: int
    bytes_repacked: int
    packs_pending: int
    packs_resurrected: int
    segments_before: int
    segments_after: int
    stale_locks_removed: int
    pushes_running: int
    readers_running: int
    temp_files_removed: int
    packs_merged: int
    segments_deleted: int
    segments_pending: int
