"""Create, open, push, list, browse, read and restore: the round trip, with metadata."""

import grp
import io
import os
import pwd
import socket
import stat
import time
from datetime import timezone

import pytest

import plakar
from conftest import KDF, PASSPHRASE, SAMPLE


def test_version():
    assert isinstance(plakar.__version__, str)
    v = plakar.version()
    assert len(v) == 3 and all(isinstance(x, int) for x in v)
    assert plakar.__version__ == "%d.%d.%d" % v
    assert isinstance(plakar.FORMAT_VERSION, int)


def test_create_open_push_browse(repo_path, tree):
    with plakar.create(repo_path, PASSPHRASE, kdf_log2_n=KDF) as repo:
        assert repo.encrypted
        repo_id = repo.id
        before = time.time_ns()
        snap = repo.push(tree, tags=["daily", "test"], command_line="plakar push src")
        after = time.time_ns()

    with plakar.open(repo_path, PASSPHRASE) as repo:
        assert repo.id == repo_id
        assert repo.encrypted
        snaps = repo.snapshots()
        assert [s.id for s in snaps] == [snap.id]
        s = repo.snapshot(snap.id)
        assert s == snap

        # Header.
        files = [k for k, v in SAMPLE.items() if v is not None]
        dirs = [k for k, v in SAMPLE.items() if v is None]
        assert s.paths == [str(tree)]
        assert s.tags == ["daily", "test"]
        assert s.command_line == "plakar push src"
        assert s.hostname == socket.gethostname()
        assert s.username == pwd.getpwuid(os.getuid()).pw_name
        assert before <= s.time_ns <= after
        assert s.time.tzinfo is timezone.utc
        assert abs(s.time.timestamp() - s.time_ns / 1e9) < 1e-5
        assert s.files == len(files)
        assert s.directories == len(dirs) + 1
        assert s.size == sum(len(v) for v in SAMPLE.values() if v is not None)
        assert s.errors == []

        # The pushed path appears at its absolute location.
        parts = tree.parts[1:]
        assert [e.name for e in s.ls("/")] == [parts[0]]
        assert [e.name for e in s.ls(tree.parent)] == [tree.name]

        # ls: sorted by name, with metadata.
        entries = repo.ls(s, tree)
        assert [e.name for e in entries] == sorted(["README", "docs", "link", "src"])
        by_name = {e.name: e for e in entries}
        assert by_name["docs"].is_dir() and by_name["docs"].type == "directory"
        assert by_name["link"].is_symlink() and by_name["link"].symlink == "docs/guide.txt"
        assert by_name["README"].is_file() and by_name["README"].type is plakar.EntryType.FILE
        assert by_name["README"].nlink == 1

        for rel in files + dirs + ["link"]:
            path = tree / rel.rstrip("/")
            st = os.lstat(path)
            e = repo.stat(s.id[:8], path)
            assert e.name == path.name
            assert e.mode == st.st_mode, rel
            assert e.uid == st.st_uid and e.gid == st.st_gid
            assert e.username == pwd.getpwuid(st.st_uid).pw_name
            assert e.groupname == grp.getgrgid(st.st_gid).gr_name
            assert e.mtime_ns == st.st_mtime_ns, rel
            assert e.mtime.timestamp() == pytest.approx(st.st_mtime_ns / 1e9, abs=1e-5)
            assert e.error == ""
            if stat.S_ISREG(st.st_mode):
                assert e.size == st.st_size
                assert e.nlink == st.st_nlink

        # ls of a file gives that one entry.
        [one] = s.ls(tree / "src/main.c")
        assert one.name == "main.c" and one.permissions == 0o640

        # cat and open_file.
        for rel, content in SAMPLE.items():
            if content is None:
                continue
            assert repo.cat(s, tree / rel) == content
            assert s.cat(str(tree / rel)) == content
            with repo.open_file(s, tree / rel) as f:
                assert f.read() == content
        # bytes paths are accepted too
        assert s.cat(os.fsencode(tree / "README")) == SAMPLE["README"]


def test_open_file_is_a_raw_file(repo, tree):
    snap = repo.push(tree)
    data = SAMPLE["src/deep/data.bin"]
    with snap.open(tree / "src/deep/data.bin") as f:
        assert isinstance(f, io.RawIOBase)
        assert f.readable() and f.seekable() and not f.writable()
        assert f.size == len(data)
        buf = bytearray(1000)
        n = f.readinto(buf)
        assert 0 < n <= 1000
        got = bytes(buf[:n])
        assert f.tell() == n
        got += f.read(5)
        got += f.read()
        assert got == data
        assert f.read() == b""
    assert f.closed
    with pytest.raises(ValueError):
        f.read()
    # Buffered and text wrappers.
    with io.TextIOWrapper(io.BufferedReader(snap.open(tree / "docs/guide.txt"))) as t:
        assert t.readline() == "chapter one\n"
        assert len(t.readlines()) == 99


def test_large_file_roundtrip(repo, tmp_path):
    data = os.urandom(3 << 20) + b"tail"
    p = tmp_path / "big.bin"
    p.write_bytes(data)
    snap = repo.push(p)
    assert snap.cat(p) == data
    with snap.open(p) as f:
        chunks = []
        while True:
            b = f.read(100_000)
            if not b:
                break
            chunks.append(b)
    assert b"".join(chunks) == data


def test_snapshot_lookup(repo, tree):
    a = repo.push(tree)
    b = repo.push(tree / "docs")
    assert repo.snapshots() == [a, b]
    assert list(repo) == [a, b]
    assert repo.snapshot(a.id.replace("-", "")[:12]) == a
    assert repo[b.id] == b
    assert repo.snapshot(b) == b


def test_walk(repo, tree):
    snap = repo.push(tree)
    seen = {}
    for dirpath, dirs, others in snap.walk(tree):
        seen[dirpath] = sorted(e.name for e in dirs + others)
    assert seen[str(tree / "src")] == ["deep", "main.c"]
    assert seen[str(tree / "src/deep")] == ["data.bin"]
    assert len(seen) == 4


def test_pull(repo, tree, tmp_path):
    snap = repo.push(tree)
    dest = tmp_path / "restore"
    dest.mkdir()
    repo.pull(snap, tree, dest)
    out = dest / tree.relative_to("/")
    for rel, content in SAMPLE.items():
        src, dst = tree / rel.rstrip("/"), out / rel.rstrip("/")
        sst, dst_st = os.lstat(src), os.lstat(dst)
        assert stat.S_IMODE(dst_st.st_mode) == stat.S_IMODE(sst.st_mode), rel
        assert stat.S_IFMT(dst_st.st_mode) == stat.S_IFMT(sst.st_mode)
        if content is not None:
            assert dst.read_bytes() == content
            assert dst_st.st_mtime_ns == sst.st_mtime_ns, rel
    assert os.readlink(out / "link") == "docs/guide.txt"

    # rebase: the selected item goes directly into the target directory.
    dest2 = tmp_path / "restore2"
    dest2.mkdir()
    snap.pull(tree / "src/main.c", dest2, rebase=True)
    assert (dest2 / "main.c").read_bytes() == SAMPLE["src/main.c"]
    assert stat.S_IMODE(os.stat(dest2 / "main.c").st_mode) == 0o640


def test_hard_links(repo, tmp_path):
    src = tmp_path / "hl"
    src.mkdir()
    (src / "one").write_bytes(b"shared content\n")
    os.link(src / "one", src / "two")
    snap = repo.push(src)
    assert [e.nlink for e in snap.ls(src)] == [2, 2]
    assert snap.cat(src / "two") == b"shared content\n"
    dest = tmp_path / "out"
    dest.mkdir()
    snap.pull(src, dest, rebase=True)
    a, b = os.stat(dest / "hl/one"), os.stat(dest / "hl/two")
    assert (a.st_ino, a.st_dev) == (b.st_ino, b.st_dev)
    assert (dest / "hl/two").read_bytes() == b"shared content\n"


def test_pull_with_progress(repo, tree, tmp_path):
    snap = repo.push(tree)
    events = []
    snap.pull(tree, tmp_path / "r", progress=events.append)
    files = [e for e in events if e.kind == plakar.EventKind.FILE]
    assert len(files) >= 1
    assert all(isinstance(e, plakar.Event) for e in events)


def test_push_convenience(repo_path, tree):
    plakar.create(repo_path, PASSPHRASE, kdf_log2_n=KDF).close()
    snap = plakar.push(repo_path, [tree / "README", tree / "src"], PASSPHRASE, tags=("one",))
    assert sorted(snap.paths) == sorted([str(tree / "README"), str(tree / "src")])
    assert snap.tags == ["one"]
    # The repository was closed by push(); the snapshot keeps what it needs.
    assert snap.cat(tree / "src/main.c") == SAMPLE["src/main.c"]
    with plakar.open(repo_path, PASSPHRASE) as repo:
        assert repo.snapshots() == [snap]


def test_default_repository(repo_path, tree, monkeypatch):
    plakar.create(repo_path, PASSPHRASE, kdf_log2_n=KDF).close()
    monkeypatch.setenv("PLAKAR_REPOSITORY", str(repo_path))
    assert plakar.default_repository() == str(repo_path)
    with plakar.open(passphrase=PASSPHRASE) as repo:
        repo.push(tree / "README")
    snap = plakar.push(None, tree / "src", PASSPHRASE)
    with plakar.open(None, PASSPHRASE) as repo:
        assert len(repo.snapshots()) == 2 and repo.snapshots()[-1] == snap


def test_plaintext_repository(repo_path, tree):
    with plakar.create(repo_path, encryption=False) as repo:
        assert not repo.encrypted
        snap = repo.push(tree)
    with plakar.open(repo_path) as repo:
        assert not repo.encrypted
        assert repo.cat(snap.id, tree / "README") == SAMPLE["README"]


def test_non_utf8_name(repo, tmp_path):
    src = tmp_path / "weird"
    src.mkdir()
    raw = b"caf\xe9-\xff\x80.bin"
    content = b"latin-1 name\n"
    with open(os.path.join(os.fsencode(src), raw), "wb") as f:
        f.write(content)
    snap = repo.push(src)
    [e] = snap.ls(src)
    assert e.name == os.fsdecode(raw)
    assert os.fsencode(e.name) == raw
    assert snap.cat(str(src / e.name)) == content
    assert snap.cat(os.fsencode(src) + b"/" + raw) == content
    assert snap.stat(src / e.name).size == len(content)
    dest = tmp_path / "out"
    dest.mkdir()
    snap.pull(src, dest, rebase=True)
    assert os.listdir(os.fsencode(dest / "weird")) == [raw]


def test_context_manager_closes(repo_path):
    with plakar.create(repo_path, PASSPHRASE, kdf_log2_n=KDF) as repo:
        assert not repo.closed
    assert repo.closed
    with pytest.raises(ValueError):
        repo.snapshots()
    repo.close()  # idempotent
    with plakar.open(repo_path, PASSPHRASE) as again:
        assert again.snapshots() == []
