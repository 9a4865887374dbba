"""Check reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from ._errors import PlakarError, _from_code

__all__ = ["CheckProblem", "CheckReport"]


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
