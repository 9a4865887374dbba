"""Repository.rm() and Repository.gc(): structured reports, space freed, errors."""

import os

import pytest

import plakar
from conftest import KDF, PASSPHRASE


def test_rm_and_gc(repo_path, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "keep").write_bytes(os.urandom(300_000))
    with plakar.create(repo_path, PASSPHRASE, kdf_log2_n=KDF) as repo:
        s1 = repo.push(src)
        (src / "gone").write_bytes(os.urandom(500_000))
        s2 = repo.push(src)
        with pytest.raises(plakar.NotFoundError):
            repo.rm([s2.id, "ffffffff"])
        assert len(repo.snapshots()) == 2
        assert repo.rm([s2]) == 1
        dry = repo.gc(dry_run=True)
        assert isinstance(dry, plakar.GcReport) and dry.dry_run and dry.bytes_freed > 400_000
        rep = repo.gc()
        assert not rep.dry_run and rep.bytes_freed > 400_000 and rep.packs_pending == 0
        # s2's segment, naming the freed packs, was superseded by a rewrite without them, then deleted
        assert rep.segments_after == 2 and rep.segments_deleted == 1 and rep.segments_pending == 0, rep
        assert rep.bytes_after < rep.bytes_before
        assert repo.snapshot(s1.id).cat(src / "keep") == (src / "keep").read_bytes()
        assert repo.check().ok
        assert repo.rm([s1.id[:8]]) == 1
        repo.gc()
        assert repo.gc().packs_after == 0
        with pytest.raises(ValueError):
            repo.rm([])


def test_keep(repo_path, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    with plakar.create(repo_path, PASSPHRASE, kdf_log2_n=KDF) as repo:
        ids = []
        for i in range(4):
            (src / "f").write_bytes(os.urandom(10_000))
            ids.append(repo.push(src).id)
        with pytest.raises(plakar.InvalidArgumentError):
            repo.keep()
        dry = repo.keep(2, dry_run=True)
        assert [k for _, k, _ in dry] == [True, True, False, False]
        assert len(repo.snapshots()) == 4
        decisions = repo.keep(2)
        assert {sid for sid, kept, _ in decisions if kept} == set(ids[2:])
        assert all(reasons == "last" for _, kept, reasons in decisions if kept)
        assert {s.id for s in repo.snapshots()} == set(ids[2:])
        assert repo.gc().bytes_freed > 0


def test_an_open_snapshot_keeps_what_it_reads(repo_path, tmp_path):
    """A Snapshot once read holds the handle's reader lock: rm and gc (from another handle)
    leave its packs until it is released, and it reads them all."""
    src = tmp_path / "src"
    src.mkdir()
    data = os.urandom(400_000)
    (src / "f").write_bytes(data)
    with plakar.create(repo_path, PASSPHRASE, kdf_log2_n=KDF) as repo:
        sid = repo.push(src).id
    with plakar.open(repo_path, PASSPHRASE) as reader, plakar.open(repo_path, PASSPHRASE) as other:
        snap = reader.snapshot(sid)
        assert other.rm([sid]) == 1
        rep = other.gc()
        assert rep.readers_running == 1 and rep.pushes_running == 0, rep
        assert rep.packs_deleted == 0 and rep.packs_pending >= 1, rep
        assert snap.cat(src / "f") == data
        del snap
        import gc as pygc
        pygc.collect()
        rep = other.gc()
        assert rep.readers_running == 0 and rep.packs_pending == 0 and rep.packs_deleted >= 1, rep
        assert rep.temp_files_removed == 0 and rep.packs_merged == 0
