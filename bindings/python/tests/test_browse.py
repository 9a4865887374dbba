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


def test_push_excludes_parent_and_entry_fields(repo, tmp_path):
    """push(excludes=, parent=), and what an entry says of the file at push time."""
    src = tmp_path / "px"
    (src / "cache").mkdir(parents=True)
    (src / "keep.txt").write_bytes(b"keep\n")
    (src / "skip.o").write_bytes(b"obj")
    (src / "cache" / "x").write_bytes(b"x")
    os.setxattr(src / "keep.txt", "user.note", b"\x00bin\xff")
    snap = repo.push(src, excludes=["*.o", src / "cache"], parent=False)
    assert [e.name for e in snap.iterdir(src)] == ["keep.txt"]
    e = snap.stat(src / "keep.txt")
    st = os.lstat(src / "keep.txt")
    assert (e.inode, e.device, e.ctime_ns, e.rdev) == (st.st_ino, st.st_dev, st.st_ctime_ns, 0)
    assert e.xattrs == {b"user.note": b"\x00bin\xff"}
    again = repo.push(src, parent=snap.id[:8])
    assert [e.name for e in again.iterdir(src)] == ["cache", "keep.txt", "skip.o"]
    with pytest.raises(plakar.NotFoundError):
        repo.push(src, parent="0" * 16)
    with pytest.raises(plakar.InvalidArgumentError):
        repo.push(src, parent=True)
    # Listed snapshots have handles of their own: browsable without being opened again.
    listed = repo.snapshots()
    assert [s.id for s in listed] == [snap.id, again.id]
    assert [e.name for e in listed[0].iterdir(src)] == ["keep.txt"]
