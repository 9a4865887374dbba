"""Snapshot.tarball: archives into files and file objects, read back with tarfile and zipfile."""

import io
import os
import tarfile
import zipfile

import pytest

import plakar
from conftest import SAMPLE, gil_released_during, snapshot_path


def files_of(sample):
    return {k: v for k, v in sample.items() if v is not None}


def check_tar(tf, root_name, tree):
    names = set(tf.getnames())
    for rel, content in SAMPLE.items():
        name = root_name + "/" + rel.rstrip("/")
        assert name in names, name
        member = tf.getmember(name)
        if content is None:
            assert member.isdir()
        else:
            assert member.isfile()
            assert tf.extractfile(member).read() == content
            st = os.stat(tree / rel)
            assert member.mode == st.st_mode & 0o7777
            # pax keeps nanoseconds; tarfile reads them as a float
            assert abs(member.mtime - st.st_mtime_ns / 1e9) < 1e-6
    link = tf.getmember(root_name + "/link")
    assert link.issym() and link.linkname == "docs/guide.txt"


@pytest.mark.parametrize("name,mode", [("out.tar", "r:"), ("out.tar.gz", "r:gz"), ("out.tgz", "r:gz")])
def test_tarball_to_a_file(repo, tree, tmp_path, name, mode):
    snap = repo.push(tree)
    dest = tmp_path / name
    snap.tarball(dest, snapshot_path(tree))
    with tarfile.open(dest, mode) as tf:
        check_tar(tf, "src", tree)
        assert all(not n.startswith("/") for n in tf.getnames())
    assert sorted(os.listdir(tmp_path)) == sorted(["repo", "home", "src", name])


def test_tarball_to_a_file_object(repo, tree):
    snap = repo.push(tree)
    buf = io.BytesIO()
    snap.tarball(buf, snapshot_path(tree, "docs"))
    buf.seek(0)
    with tarfile.open(fileobj=buf, mode="r:") as tf:
        assert sorted(tf.getnames()) == ["docs", "docs/empty", "docs/guide.txt"]
        assert tf.extractfile("docs/guide.txt").read() == SAMPLE["docs/guide.txt"]
    # the same through the repository, by id prefix
    again = io.BytesIO()
    repo.tarball(snap.id[:8], again, snapshot_path(tree, "docs"))
    assert again.getvalue() == buf.getvalue()


def test_zip_and_explicit_format(repo, tree, tmp_path):
    snap = repo.push(tree)
    buf = io.BytesIO()
    snap.tarball(buf, snapshot_path(tree), format="zip")
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zf:
        for rel, content in files_of(SAMPLE).items():
            info = zf.getinfo("src/" + rel)
            assert zf.read(info) == content
            assert (info.external_attr >> 16) & 0o7777 == os.stat(tree / rel).st_mode & 0o7777
        assert "src/docs/" in zf.namelist()
    # an explicit format wins over the extension
    dest = tmp_path / "archive.tar"
    snap.tarball(dest, snapshot_path(tree), format="zip")
    assert zipfile.is_zipfile(dest)


def test_zstd(repo, tree, tmp_path):
    snap = repo.push(tree)
    dest = tmp_path / "out.tar.zst"
    snap.tarball(dest, snapshot_path(tree, "README"))
    assert dest.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"


def test_whole_snapshot_and_progress(repo, tree):
    snap = repo.push(tree)
    events = []
    buf = io.BytesIO()
    snap.tarball(buf, progress=events.append)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        names = tf.getnames()
    rel = str(tree).lstrip("/")
    assert rel + "/README" in names
    assert not any(n.startswith("/") for n in names)
    files = [e for e in events if e.kind == plakar.EventKind.FILE]
    assert {e.path for e in files} == {str(tree / k) for k in files_of(SAMPLE)}
    assert files[-1].files == len(files)


def test_errors(repo, tree, tmp_path):
    snap = repo.push(tree)
    with pytest.raises(plakar.InvalidArgumentError):
        snap.tarball(tmp_path / "x.tar", format="rar")
    with pytest.raises(plakar.NotFoundError):
        snap.tarball(tmp_path / "x.tar", snapshot_path(tree, "nope"))
    with pytest.raises(plakar.NotFoundError):
        snap.tarball(tmp_path / "no" / "dir" / "x.tar", snapshot_path(tree))
    with pytest.raises(TypeError):
        snap.tarball(42)
    with pytest.raises(plakar.InvalidArgumentError):
        snap.tarball(io.BytesIO(), "a\0b")
    assert not (tmp_path / "x.tar").exists()
    assert not (tmp_path / "no").exists()
    snap.close()
    with pytest.raises(ValueError):
        snap.tarball(io.BytesIO())


class Boom(Exception):
    pass


class FailingWriter(io.RawIOBase):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def writable(self):
        return True

    def write(self, b):
        self.calls += 1
        raise Boom("disk full")


def test_write_exception_propagates(repo, tmp_path):
    src = tmp_path / "big"
    src.mkdir()
    (src / "data").write_bytes(os.urandom(3 * 1024 * 1024))
    snap = repo.push(src)
    w = FailingWriter()
    with pytest.raises(Boom):
        snap.tarball(w, str(src))
    assert w.calls == 1
    # the repository is still usable
    buf = io.BytesIO()
    snap.tarball(buf, str(src))
    assert len(buf.getvalue()) > 3 * 1024 * 1024


def test_short_writes_are_completed(repo, tree):
    class Trickle(io.RawIOBase):
        def __init__(self):
            super().__init__()
            self.data = bytearray()

        def writable(self):
            return True

        def write(self, b):
            n = min(len(b), 1000)
            self.data += bytes(b[:n])
            return n

    snap = repo.push(tree)
    t = Trickle()
    snap.tarball(t, snapshot_path(tree))
    with tarfile.open(fileobj=io.BytesIO(bytes(t.data))) as tf:
        check_tar(tf, "src", tree)


def test_progress_exception_cancels(repo, tree, tmp_path):
    snap = repo.push(tree)

    def progress(event):
        raise Boom()

    dest = tmp_path / "out.tar"
    with pytest.raises(Boom):
        snap.tarball(dest, snapshot_path(tree), progress=progress)
    assert not dest.exists()
    assert [n for n in os.listdir(tmp_path) if ".plakar-" in n] == []


def test_gil_is_released(repo, tmp_path):
    src = tmp_path / "big"
    src.mkdir()
    (src / "data").write_bytes(os.urandom(8 * 1024 * 1024))
    snap = repo.push(src)
    assert gil_released_during(lambda: snap.tarball(tmp_path / "out.tar.gz", str(src)))
