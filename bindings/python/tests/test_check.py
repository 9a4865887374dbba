"""Repository.check(): structured reports at every depth, damage named, bad arguments."""

import os
import re

import pytest

import plakar
from conftest import KDF, PASSPHRASE

PACK_NAME = re.compile(r"[0-9a-f]{64}")


@pytest.fixture
def two_snapshots(repo_path, tmp_path):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "big").write_bytes(os.urandom(200000))
    (src / "d" / "small").write_bytes(os.urandom(3000))
    with plakar.create(repo_path, PASSPHRASE, kdf_log2_n=KDF) as repo:
        s1 = repo.push(src).id
        (src / "d" / "small").write_bytes(os.urandom(3000))
        s2 = repo.push(src).id
    return src, s1, s2


def test_clean_report(repo_path, two_snapshots):
    src, s1, s2 = two_snapshots
    with plakar.open(repo_path, PASSPHRASE) as repo:
        full = repo.check([s1, repo.snapshot(s2)])
        assert isinstance(full, plakar.CheckReport)
        assert full.ok and bool(full) and full.problems == []
        assert full.snapshots == 2 and full.bytes >= 206000
        fast = repo.check([s1[:8]], fast=True)
        assert fast.ok and fast.bytes < 200000
        whole = repo.check(read_data=True, refcounts=True)
        assert whole.ok and whole.packs >= 2 and whole.unreferenced_blobs == 0
        assert set(whole.refcounts.values()) == {1, 2}
        assert all(len(k) == 64 for k in whole.refcounts)


def test_damage_is_reported_not_raised(repo_path, two_snapshots):
    src, s1, s2 = two_snapshots
    packs = [p for p in (repo_path / "packs").glob("*/*") if PACK_NAME.fullmatch(p.name)]
    biggest = max(packs, key=lambda p: p.stat().st_size)
    biggest.unlink()
    with plakar.open(repo_path, PASSPHRASE) as repo:
        rep = repo.check()
        assert not rep.ok and not bool(rep)
        missing = [p for p in rep.problems if p.kind == "missing"]
        assert any(p.object == "pack " + biggest.name for p in missing), rep.problems
        assert isinstance(missing[0].error(), plakar.NotFoundError)
        assert biggest.name in str(missing[0])
        rep = repo.check([s1], fast=True)
        assert any(p.object.startswith(s1 + ":") and str(src) in p.object for p in rep.problems), rep.problems


def test_bad_arguments(repo_path, two_snapshots):
    src, s1, s2 = two_snapshots
    with plakar.open(repo_path, PASSPHRASE) as repo:
        with pytest.raises(plakar.NotFoundError):
            repo.check(["ffffffffff"])
        with pytest.raises(plakar.InvalidArgumentError):
            repo.check(fast=True)
        with pytest.raises(plakar.InvalidArgumentError):
            repo.check([s1], refcounts=True)


def test_repair(repo_path, two_snapshots):
    src, s1, s2 = two_snapshots
    for seg in (repo_path / "index").iterdir():
        seg.unlink()
    with plakar.open(repo_path, PASSPHRASE, cache=False) as repo:
        assert not repo.check().ok
        dry = repo.repair()
        assert dry["applied"] is False and dry["added"] == dry["blobs"] > 0 and dry["damaged"] == []
        done = repo.repair(apply=True)
        assert done["applied"] is True
        assert repo.check().ok
        assert repo.check([s1, s2]).ok
