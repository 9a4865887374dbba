"""push, ls, cat and pull of a tree that exercises every kind of metadata, restored with
full fidelity."""
import os
import stat

import pytest

from cliutil import (ENTRY_LINE_RE, IS_ROOT, compare_trees, read_all, set_xattr, snap_path, to_bytes,
                     write_random)

MTIME_BASE = 1637971924 * 10**9  # 2021-11-27T00:12:04Z
ODD_NAMES = [b"with space", b"new\nline", "\u00fcn\u00efc\u00f8d\u00e9-\u65e5\u672c".encode(),
             b"bad\xff\xfe", b"tab\there"]


def build_tree(root):
    """Builds the fidelity tree under root (bytes); returns facts the tests check."""
    j = os.path.join
    os.mkdir(root)
    facts = {"xattrs": True}

    def put(rel, data, mode=0o644):
        p = j(root, rel)
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, mode)
        return p

    put(b"empty", b"")
    put(b"small.txt", b"hello, plakar\n")
    facts["big"] = write_random(j(root, b"big.bin"), 20 * 1024 * 1024 + 12345, seed=1)
    with open(j(root, b"sparse.img"), "wb") as f:  # 50 MB with two small islands of data
        f.seek(3 * 1024 * 1024)
        f.write(b"island one")
        f.seek(41 * 1024 * 1024 + 17)
        f.write(b"island two")
        f.truncate(50 * 1024 * 1024)
    os.mkdir(j(root, b"emptydir"))
    os.makedirs(j(root, b"a", b"b", b"c"))
    put(j(b"a", b"b", b"c", b"deep.txt"), b"deep\n" * 100)
    put(j(b"a", b"one.txt"), b"one\n")
    os.symlink(b"small.txt", j(root, b"link"))
    os.symlink(b"does/not/exist", j(root, b"dangling"))
    put(b"hard1", b"two names, one inode\n")
    os.link(j(root, b"hard1"), j(root, b"a", b"hard2"))
    put(b"p600", b"private\n", 0o600)
    put(b"p755", b"#!/bin/sh\nexit 0\n", 0o755)
    put(b"p444", b"read only\n", 0o444)
    os.mkdir(j(root, b"private"))
    put(j(b"private", b"inside"), b"inside a 0700 directory\n")
    os.chmod(j(root, b"private"), 0o700)
    for i, name in enumerate(ODD_NAMES):
        put(name, b"odd name %d\n" % i)
    facts["xattrs"] = (set_xattr(j(root, b"small.txt"), b"user.comment", b"hello xattr") and
                       set_xattr(j(root, b"a"), b"user.dir", b"\x00binary\xff") and
                       set_xattr(j(root, b"emptydir"), b"user.empty", b""))
    if IS_ROOT:
        os.chown(j(root, b"p600"), 1234, 5678)
        os.lchown(j(root, b"link"), 1234, 5678)
        os.chown(j(root, b"private"), 1234, 5678)
        os.chown(j(root, b"a", b"one.txt"), 0, 5678)

    # mtimes with nanoseconds, children before their directory (bottom-up).
    n = 0
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            n += 1
            t = MTIME_BASE + n * 1_000_000_007
            os.utime(j(dirpath, name), ns=(t, t), follow_symlinks=False)
    os.utime(root, ns=(MTIME_BASE, MTIME_BASE))
    return facts


@pytest.fixture
def tree(tmp_path):
    root = to_bytes(tmp_path / "src")
    facts = build_tree(root)
    return root, facts


def test_roundtrip(repo, tree, tmp_path):
    src, facts = tree
    if not facts["xattrs"]:
        pytest.skip("the filesystem refuses user xattrs")  # pragma: no cover
    snap = repo.push(src)

    # ls: one snapshot, its id, the pushed path.
    lines = repo.snapshot_lines()
    assert len(lines) == 1
    assert lines[0].group("id") == snap
    assert lines[0].group("paths") == src.decode()

    # ls SNAP:PATH: one line per entry, names escaped, symlinks with their target.
    out = repo.ok("ls", snap_path(snap, src)).out.splitlines()
    entries = {}
    for line in out:
        m = ENTRY_LINE_RE.fullmatch(line)
        assert m, "bad entry line: %r" % line
        entries[m.group("name")] = m
    expected = {"empty", "small.txt", "big.bin", "sparse.img", "emptydir", "a", "link -> small.txt",
                "dangling -> does/not/exist", "hard1", "p600", "p755", "p444", "private",
                "with space", "new\\nline", "\u00fcn\u00efc\u00f8d\u00e9-\u65e5\u672c", "bad\\xff\\xfe",
                "tab\\there"}
    assert set(entries) == expected
    assert entries["p600"].group("mode") == "-rw-------"
    assert entries["p755"].group("mode") == "-rwxr-xr-x"
    assert entries["p444"].group("mode") == "-r--r--r--"
    assert entries["private"].group("mode") == "drwx------"
    assert entries["emptydir"].group("mode").startswith("d")
    assert entries["link -> small.txt"].group("mode") == "lrwxrwxrwx"
    assert entries["empty"].group("size").strip() == "0 B"
    assert entries["small.txt"].group("size").strip() == "14 B"
    assert entries["big.bin"].group("size").strip() == "21 MB"
    assert entries["sparse.img"].group("size").strip() == "52 MB"
    if IS_ROOT:
        assert entries["p600"].group("user").strip() == "1234"
        assert entries["p600"].group("group").strip() == "5678"
        assert entries["small.txt"].group("user").strip() == "root"

    # cat gives the exact bytes, whatever the name.
    assert repo.ok("cat", snap_path(snap, os.path.join(src, b"big.bin"))).stdout == facts["big"]
    assert repo.ok("cat", snap_path(snap, os.path.join(src, b"empty"))).stdout == b""
    assert repo.ok("cat", snap_path(snap, os.path.join(src, b"a/b/c/deep.txt"))).stdout == b"deep\n" * 100
    assert repo.ok("cat", snap_path(snap, os.path.join(src, b"a/hard2"))).stdout == b"two names, one inode\n"
    for i, name in enumerate(ODD_NAMES):
        assert repo.ok("cat", snap_path(snap, os.path.join(src, name))).stdout == b"odd name %d\n" % i
    sparse = repo.ok("cat", snap_path(snap, os.path.join(src, b"sparse.img"))).stdout
    assert sparse == read_all(os.path.join(src, b"sparse.img"))
    # several files in one call are concatenated
    both = repo.ok("cat", snap_path(snap, os.path.join(src, b"small.txt")),
                   snap_path(snap, os.path.join(src, b"a/one.txt"))).stdout
    assert both == b"hello, plakar\none\n"

    # pull -to DIR recreates the absolute path under DIR.
    dest = to_bytes(tmp_path / "restore")
    repo.ok("pull", "-to", dest, snap)
    restored = dest + src
    assert compare_trees(src, restored) >= 25
    # the sparse file stays sparse: its holes are not written as zeros
    sparse_st = os.stat(os.path.join(restored, b"sparse.img"))
    assert sparse_st.st_size > 50_000_000
    assert sparse_st.st_blocks * 512 < 4 * 1024 * 1024
    # pulling again over the restored tree replaces it, still identical
    repo.ok("pull", "-to", dest, snap)
    compare_trees(src, restored)

    # pull -rebase puts the selected item directly in DIR.
    rebased = to_bytes(tmp_path / "rebased")
    repo.ok("pull", "-rebase", "-to", rebased, snap_path(snap, os.path.join(src, b"a")))
    assert os.listdir(rebased) == [b"a"]
    compare_trees(os.path.join(src, b"a"), os.path.join(rebased, b"a"))
    single = to_bytes(tmp_path / "single")
    repo.ok("pull", "-rebase", "-to", single, snap_path(snap, os.path.join(src, b"new\nline")))
    assert os.listdir(single) == [b"new\nline"]
    compare_trees(os.path.join(src, b"new\nline"), os.path.join(single, b"new\nline"))


def test_pull_without_to_restores_in_current_directory(repo, tmp_path):
    src = tmp_path / "small"
    src.mkdir()
    (src / "f").write_bytes(b"content\n")
    os.chmod(src / "f", 0o640)
    snap = repo.push(src)
    work = tmp_path / "cwd"
    work.mkdir()
    repo.ok("pull", "-rebase", snap_path(snap, src), cwd=work)
    compare_trees(to_bytes(src), to_bytes(work / "small"))
    assert stat.S_IMODE(os.stat(work / "small" / "f").st_mode) == 0o640


def test_read_only_file_with_xattrs(repo, tmp_path):
    src = tmp_path / "ro"
    src.mkdir()
    f = src / "f"
    f.write_bytes(b"read only, with an xattr\n")
    if not set_xattr(os.fsencode(f), b"user.note", b"kept"):
        pytest.skip("the filesystem refuses user xattrs")  # pragma: no cover
    os.chmod(f, 0o444)
    snap = repo.push(src)
    dest = tmp_path / "dest"
    repo.ok("pull", "-to", dest, snap)
    compare_trees(to_bytes(src), to_bytes(dest) + to_bytes(src))


def test_push_excludes_and_parent_choice(repo, tmp_path):
    """-exclude by name at any depth and by absolute path; -parent names the snapshot compared
    with, -no-parent reads everything; an unknown parent fails before anything is written."""
    src = tmp_path / "src"
    (src / "sub" / "cache").mkdir(parents=True)
    for rel in ("keep.txt", "skip.o", "sub/y.o", "sub/z.txt", "sub/cache/x.txt"):
        (src / rel).write_bytes(rel.encode())
    snap = repo.push("-exclude", "*.o", "-exclude", src / "sub" / "cache", src)
    names = {os.path.relpath(line.split()[-1], src) for line in
             repo.ok("ls", "-R", snap_path(snap, src)).out.splitlines()}
    assert names == {"keep.txt", "sub", "sub/z.txt"}, names
    # A pushed path itself is never excluded.
    only = repo.push("-exclude", "keep.txt", src / "keep.txt")
    assert repo.ok("cat", snap_path(only, src / "keep.txt")).out == "keep.txt"
    # The parent: named, none, unknown.
    again = repo.push("-parent", snap[:8], src)
    fresh = repo.push("-no-parent", src)
    for s in (again, fresh):
        assert repo.ok("cat", snap_path(s, src / "sub" / "y.o")).out == "sub/y.o"
    before = repo.snapshot_ids()
    r = repo.fails("push", "-parent", "0000000000000000", src)
    assert "not found" in r.stderr or "no snapshot" in r.stderr, r
    assert repo.snapshot_ids() == before
