"""Browsing from Python: streaming iterdir, diff, locate, repository info."""
import os

import pytest

import plakar


@pytest.fixture
def tree(tmp_path):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    for i in range(3000):  # more than one tree node
        (src / "d" / ("f%04d" % i)).write_bytes(b"")
    (src / "a.txt").write_bytes(b"alpha\n")
    (src / "b.txt").write_bytes(b"bravo\n")
    return src


def test_iterdir_streams_in_order(repo, tree):
    snap = repo.push([tree])
    names = [e.name for e in snap.iterdir(tree / "d")]
    assert names == ["f%04d" % i for i in range(3000)]
    assert [e.name for e in snap.iterdir(tree)] == ["a.txt", "b.txt", "d"]
    with pytest.raises(plakar.InvalidArgumentError):
        list(snap.iterdir(tree / "a.txt"))
    with pytest.raises(plakar.NotFoundError):
        list(snap.iterdir(tree / "nope"))


def test_diff(repo, tree):
    s1 = repo.push([tree])
    (tree / "a.txt").write_bytes(b"alpha, changed\n")
    os.unlink(tree / "b.txt")
    (tree / "c.txt").write_bytes(b"new\n")
    s2 = repo.push([tree])
    changes = {c.path: c for c in s1.diff(s2, tree)}
    a = changes[str(tree / "a.txt")]
    assert a.kind == "modified" and {"content", "size"} <= a.what
    assert a.before.size == 6 and a.after.size == 15
    assert changes[str(tree / "b.txt")].kind == "removed"
    assert changes[str(tree / "b.txt")].after is None
    assert changes[str(tree / "c.txt")].kind == "added"
    assert str(tree / "d") not in changes  # unchanged directory: skipped
    assert s2.diff(s2) == []


def test_locate_and_info(repo, tree):
    s1 = repo.push([tree])
    found = repo.locate("*.txt")
    assert found == [(s1.id, str(tree / "a.txt")), (s1.id, str(tree / "b.txt"))]
    assert repo.locate("*/d/f0001", full_path=True, snapshots=[s1]) == [(s1.id, str(tree / "d" / "f0001"))]
    assert repo.locate("nothing*") == []
    info = repo.info()
    assert info["format_version"] == plakar.FORMAT_VERSION
    assert info["encrypted"] is True and info["snapshots"] == 1
    assert info["logical_bytes"] == 12 and info["data_bytes"] == 12


def test_snapshot_file_seeks(tmp_path):
    repo = plakar.create(tmp_path / "small-chunks", "pw", kdf_log2_n=10,
                         chunk_min=4096, chunk_avg=16384, chunk_max=65536)
    data = os.urandom(300_000)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_bytes(data)
    snap = repo.push([tmp_path / "src"])
    with snap.open(tmp_path / "src" / "f") as f:
        assert f.seekable()
        for pos in (150_000, 10, 299_990, 0, 70_000):
            assert f.seek(pos) == pos
            assert f.read(100) == data[pos:pos + 100]
        assert f.seek(-5, 2) == len(data) - 5 and f.read() == data[-5:]
        assert f.seek(10, 1) == len(data) and f.read() == b""
        with pytest.raises(ValueError):
            f.seek(-1)
    repo.close()
