"""Handle ownership: children keep the repository alive, whatever order Python frees them in."""

import gc
import weakref

import pytest

import plakar
from conftest import KDF, PASSPHRASE, SAMPLE


def test_snapshot_outlives_closed_repository(repo_path, tree):
    repo = plakar.create(repo_path, PASSPHRASE, kdf_log2_n=KDF)
    snap = repo.push(tree)
    listed = repo.snapshots()[0]
    repo.close()
    with pytest.raises(ValueError):
        repo.push(tree)
    with pytest.raises(ValueError):
        repo.snapshots()
    # Children keep working: the handle is freed when the last of them goes.
    assert snap.cat(tree / "README") == SAMPLE["README"]
    assert listed.cat(tree / "README") == SAMPLE["README"]
    assert [e.name for e in listed.ls(tree / "src")] == ["deep", "main.c"]


def test_repository_collected_before_children(repo_path, tree):
    repo = plakar.create(repo_path, PASSPHRASE, kdf_log2_n=KDF)
    snap = repo.push(tree)
    f = snap.open(tree / "docs/guide.txt")
    ref = weakref.ref(repo)
    del repo
    gc.collect()
    assert ref() is None
    snap.close()
    assert f.read() == SAMPLE["docs/guide.txt"]
    f.close()


def test_cycles_collected_in_any_order(repo_path, tree):
    with plakar.create(repo_path, PASSPHRASE, kdf_log2_n=KDF) as repo:
        repo.push(tree)
    for _ in range(3):
        repo = plakar.open(repo_path, PASSPHRASE)
        snap = repo.snapshots()[0]
        f = snap.open(tree / "README")
        # A reference cycle through all three: the collector frees them in its own order.
        holder = [repo, snap, f]
        holder.append(holder)
        del repo, snap, f, holder
        gc.collect()
    with plakar.open(repo_path, PASSPHRASE) as repo:
        assert len(repo.snapshots()) == 1


def test_file_outlives_everything(repo_path, tree):
    with plakar.create(repo_path, PASSPHRASE, kdf_log2_n=KDF) as repo:
        snap = repo.push(tree)
        f = repo.open_file(snap.id, tree / "src/deep/data.bin")
    snap.close()
    assert snap.closed
    with pytest.raises(ValueError):
        snap.cat(tree / "README")
    assert snap.id and snap.files == 5  # the header stays readable
    assert f.read() == SAMPLE["src/deep/data.bin"]
    f.close()
    f.close()


def test_partial_error_snapshot_outlives_repository(repo_path, tmp_path):
    import os

    src = tmp_path / "v"
    src.mkdir()
    (src / "a").write_bytes(b"a")
    (src / "b").write_bytes(b"b")
    plakar.create(repo_path, PASSPHRASE, kdf_log2_n=KDF).close()

    def progress(event):
        if event.kind == plakar.EventKind.FILE and event.path == str(src / "a"):
            os.unlink(src / "b")

    with pytest.raises(plakar.PartialError) as ei:
        plakar.push(repo_path, src, PASSPHRASE, progress=progress)
    assert ei.value.snapshot.cat(src / "a") == b"a"
