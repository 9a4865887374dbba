"""tarball: archives of a snapshot, extracted with the system's tar and unzip, reproduce the
tree; bad input is one error line and leaves no file behind."""
import os
import shutil
import stat
import subprocess
import sys
import zipfile

import pytest

from cliutil import (IS_ROOT, compare_trees, flip_byte, largest_pack, read_all, set_xattr, snap_path,
                     to_bytes, write_random)

MTIME_BASE = 1637971924 * 10**9 + 123456789
ODD_NAMES = [b"with space", b"new\nline", "\u00fcn\u00efc\u00f8d\u00e9-\u65e5\u672c".encode(),
             b"bad\xff\xfe"]
LONG_DIR = b"d" * 150
LONG_FILE = b"f" * 200

TAR_FLAGS = {"tar": [], "tar.gz": ["-z"], "tar.zst": ["--zstd"]}
MAGIC = {"tar": (257, b"ustar"), "tar.gz": (0, b"\x1f\x8b"), "tar.zst": (0, b"\x28\xb5\x2f\xfd"),
         "zip": (0, b"PK\x03\x04")}


@pytest.fixture(scope="module", autouse=True)
def _tools():
    for tool in ("tar", "zstd", "unzip"):
        if shutil.which(tool) is None:
            pytest.fail("%s is needed by these tests (Debian: apt-get install %s)" % (tool, tool))


def build_tree(root):
    """Every kind of entry an archive must carry; returns the big file's content."""
    j = os.path.join
    os.mkdir(root)

    def put(rel, data, mode=0o644):
        p = j(root, rel)
        with open(p, "wb") as f:
            f.write(data)
        os.chmod(p, mode)

    put(b"empty", b"")
    put(b"small.txt", b"hello, tarball\n")
    big = write_random(j(root, b"big.bin"), 3 * 1024 * 1024 + 4321, seed=5)
    os.mkdir(j(root, b"emptydir"))
    os.makedirs(j(root, b"a", b"b", b"c"))
    put(j(b"a", b"b", b"c", b"deep.txt"), b"deep\n" * 100)
    os.symlink(b"small.txt", j(root, b"link"))
    os.symlink(b"does/not/exist", j(root, b"dangling"))
    put(b"hard1", b"two names, one inode\n")
    os.link(j(root, b"hard1"), j(root, b"a", b"hard2"))
    put(b"p600", b"private\n", 0o600)
    put(b"p755", b"#!/bin/sh\nexit 0\n", 0o755)
    os.mkdir(j(root, b"private"))
    put(j(b"private", b"inside"), b"inside a 0700 directory\n")
    os.chmod(j(root, b"private"), 0o700)
    os.makedirs(j(root, LONG_DIR))
    put(j(LONG_DIR, LONG_FILE), b"a path longer than 300 bytes\n")
    for i, name in enumerate(ODD_NAMES):
        put(name, b"odd name %d\n" % i)
    set_xattr(j(root, b"small.txt"), b"user.comment", b"hello xattr")
    if IS_ROOT:
        os.chown(j(root, b"p600"), 1234, 5678)
        os.lchown(j(root, b"link"), 1234, 5678)
        os.chown(j(root, b"private"), 1234, 5678)
    n = 0
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            n += 1
            t = MTIME_BASE + n * 1_000_000_007
            os.utime(j(dirpath, name), ns=(t, t), follow_symlinks=False)
    os.utime(root, ns=(MTIME_BASE, MTIME_BASE))
    return big


@pytest.fixture
def pushed(repo, tmp_path):
    """(repo, snap, src): a snapshot of the tree."""
    src = to_bytes(tmp_path / "src")
    build_tree(src)
    return repo, repo.push(src), src


# GNU tar 1.34 does not know the POSIX keyword that marks a name that is not UTF-8 (stored as
# its bytes): it says so, then extracts the name byte for byte.
HDRCHARSET_WARNING = b"tar: Ignoring unknown extended header keyword 'hdrcharset'"


def run_tool(*cmd):
    proc = subprocess.run([to_bytes(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.returncode == 0, (cmd, proc.stderr)
    # No other warning (an unknown pax keyword, trailing garbage, a timestamp...).
    others = [line for line in proc.stderr.splitlines() if line != HDRCHARSET_WARNING]
    assert others == [], (cmd, proc.stderr)
    return proc.stdout


def extract(archive, fmt, dest):
    os.makedirs(dest, exist_ok=True)
    if fmt == "zip":
        run_tool("unzip", "-q", "-X", archive, "-d", dest)
    else:
        run_tool("tar", "-x", *TAR_FLAGS[fmt], "--xattrs", "--xattrs-include=user.*",
                 "-f", archive, "-C", dest)


def tar_names(archive, fmt):
    out = run_tool("tar", "-t", *TAR_FLAGS[fmt], "-f", archive)
    return out.splitlines()


def assert_magic(path, fmt):
    offset, magic = MAGIC[fmt]
    assert read_all(path)[offset:offset + len(magic)] == magic, fmt


def no_leftovers(directory, allowed=()):
    names = sorted(n for n in os.listdir(directory) if n not in allowed)
    assert names == [], names


def unzip_name(name):
    """unzip drops control characters and 0xff bytes from the names it extracts (the
    archive holds them: see zip_names)."""
    return bytes(b for b in name if b >= 0x20 and b != 0xff)


def zip_names(archive):
    """The names stored in a zip archive, as bytes."""
    with zipfile.ZipFile(archive) as zf:
        return {i.filename.encode("utf-8" if i.flag_bits & 0x800 else "cp437") for i in zf.infolist()}


def compare_zip_tree(src, dst):
    """What zip keeps: names, types, contents, symlink targets, file modes, mtimes to the
    second; hard links come back as separate files with the same content."""
    checked = 0
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        other = os.path.normpath(os.path.join(dst, unzip_name(rel)))
        assert sorted(unzip_name(n) for n in os.listdir(dirpath)) == sorted(os.listdir(other)), rel
        for name in dirnames + filenames:
            s, d = os.path.join(dirpath, name), os.path.join(other, unzip_name(name))
            ss, ds = os.lstat(s), os.lstat(d)
            assert stat.S_IFMT(ss.st_mode) == stat.S_IFMT(ds.st_mode), s
            if stat.S_ISLNK(ss.st_mode):
                assert os.readlink(s) == os.readlink(d), s
            elif stat.S_ISREG(ss.st_mode):
                assert read_all(s) == read_all(d), s
                assert stat.S_IMODE(ss.st_mode) == stat.S_IMODE(ds.st_mode), s
                assert ss.st_mtime_ns // 10**9 == ds.st_mtime_ns // 10**9, s
                assert ds.st_mtime_ns % 10**9 == 0, s
            checked += 1
    return checked


@pytest.mark.parametrize("fmt", ["tar", "tar.gz", "tar.zst"])
def test_tar_formats_extract_to_the_same_tree(pushed, tmp_path, fmt):
    repo, snap, src = pushed
    out = tmp_path / ("out." + fmt)
    repo.ok("tarball", "-o", out, snap_path(snap, src))
    assert_magic(out, fmt)
    names = tar_names(out, fmt)
    base = os.path.basename(src)
    assert all(n == base + b"/" or n.startswith(base + b"/") for n in names), names
    assert base + b"/" + LONG_DIR + b"/" + LONG_FILE in names
    dest = to_bytes(tmp_path / "x")
    extract(out, fmt, dest)
    assert os.listdir(dest) == [base]
    # everything: modes, ns mtimes, owners (as root), contents, symlinks, hard links, xattrs
    assert compare_trees(src, os.path.join(dest, base)) >= 20
    no_leftovers(tmp_path, {"src", "x", "repo", "home", out.name})


def test_zip_extracts_what_zip_keeps(pushed, tmp_path):
    repo, snap, src = pushed
    out = tmp_path / "out.zip"
    repo.ok("tarball", "-o", out, snap_path(snap, src))
    assert_magic(out, "zip")
    dest = to_bytes(tmp_path / "x")
    extract(out, "zip", dest)
    base = os.path.basename(src)
    assert os.listdir(dest) == [base]
    assert compare_zip_tree(src, os.path.join(dest, base)) >= 20
    # the archive holds every name exactly, whatever unzip makes of it
    expected = {base + b"/"}
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, os.path.dirname(src))
        expected |= {os.path.join(rel, d) + b"/" for d in dirnames}
        expected |= {os.path.join(rel, f) for f in filenames}
    assert zip_names(out) == expected
    # zip has no hard links: the second name holds the content again
    h1, h2 = os.path.join(dest, base, b"hard1"), os.path.join(dest, base, b"a", b"hard2")
    assert read_all(h1) == read_all(h2) == b"two names, one inode\n"
    if IS_ROOT:  # unzip -X restores uid/gid
        st = os.lstat(os.path.join(dest, base, b"p600"))
        assert (st.st_uid, st.st_gid) == (1234, 5678)


def test_stdout_is_the_same_archive(pushed, tmp_path):
    repo, snap, src = pushed
    out = tmp_path / "out.tar"
    repo.ok("tarball", "-o", out, snap_path(snap, src))
    r = repo.ok("tarball", snap_path(snap, src))
    assert r.stdout == read_all(out)
    piped = tmp_path / "piped.tar"
    piped.write_bytes(r.stdout)
    dest = to_bytes(tmp_path / "x")
    extract(piped, "tar", dest)
    compare_trees(src, os.path.join(dest, os.path.basename(src)))
    # -format applies to stdout too
    z = repo.ok("tarball", "-format", "tar.zst", snap_path(snap, os.path.join(src, b"a")))
    assert z.stdout.startswith(b"\x28\xb5\x2f\xfd")


def test_names_are_relative(pushed, tmp_path):
    repo, snap, src = pushed
    # a subtree: entries start with its own name
    r = repo.ok("tarball", snap_path(snap, os.path.join(src, b"a")))
    (tmp_path / "a.tar").write_bytes(r.stdout)
    names = tar_names(tmp_path / "a.tar", "tar")
    assert sorted(names) == [b"a/", b"a/b/", b"a/b/c/", b"a/b/c/deep.txt", b"a/hard2"]
    # the whole snapshot: the absolute paths without their leading "/"
    r = repo.ok("tarball", snap)
    (tmp_path / "all.tar").write_bytes(r.stdout)
    names = tar_names(tmp_path / "all.tar", "tar")
    assert src.lstrip(b"/") + b"/small.txt" in names
    assert not any(n.startswith(b"/") for n in names)
    dest = to_bytes(tmp_path / "x")
    extract(tmp_path / "all.tar", "tar", dest)
    compare_trees(src, dest + src)
    # a single file
    r = repo.ok("tarball", "-format", "zip", snap_path(snap, os.path.join(src, b"small.txt")))
    (tmp_path / "one.zip").write_bytes(r.stdout)
    one = to_bytes(tmp_path / "one")
    extract(tmp_path / "one.zip", "zip", one)
    assert os.listdir(one) == [b"small.txt"]
    assert read_all(os.path.join(one, b"small.txt")) == b"hello, tarball\n"


@pytest.mark.parametrize("name,fmt", [("x.tar", "tar"), ("x.TGZ", "tar.gz"), ("x.tar.gz", "tar.gz"),
                                      ("x.tar.zst", "tar.zst"), ("x.zip", "zip"), ("x.bin", "tar")])
def test_format_from_extension(pushed, tmp_path, name, fmt):
    repo, snap, src = pushed
    out = tmp_path / name
    repo.ok("tarball", "-o", out, snap_path(snap, os.path.join(src, b"small.txt")))
    assert_magic(out, fmt)


def test_explicit_format_wins(pushed, tmp_path):
    repo, snap, src = pushed
    out = tmp_path / "really-a-zip.tar"
    repo.ok("tarball", "-format", "zip", "-o", out, snap_path(snap, os.path.join(src, b"small.txt")))
    assert_magic(out, "zip")
    out = tmp_path / "x.zip"
    repo.ok("tarball", "-o", out, "-format", "tgz", snap_path(snap, os.path.join(src, b"small.txt")))
    assert_magic(out, "tar.gz")


def test_existing_file_is_replaced(pushed, tmp_path):
    repo, snap, src = pushed
    out = tmp_path / "out.tar"
    out.write_bytes(b"old content")
    repo.ok("tarball", "-o", out, snap_path(snap, os.path.join(src, b"a")))
    assert_magic(out, "tar")


def test_bad_input(pushed, tmp_path):
    repo, snap, src = pushed
    work = tmp_path / "work"
    work.mkdir()
    out = work / "out.tar"
    target = snap_path(snap, src)

    r = repo.fails("tarball", "-format", "rar", "-o", out, target, code=2)
    assert "rar" in r.stderr and r.stderr.startswith("plakar: tarball: ")
    r = repo.fails("tarball", "-o", work / "no" / "such" / "dir" / "out.tar", target)
    assert "no such file or directory" in r.stderr.lower()
    r = repo.fails("tarball", "-o", out, "00000000:" + src.decode())
    assert r.stderr.startswith("plakar: tarball: ")
    r = repo.fails("tarball", "-o", out, snap_path(snap, os.path.join(src, b"nope")))
    assert "nope" in r.stderr and "not found" in r.stderr
    r = repo.fails("tarball", "-o", work, target)
    assert "directory" in r.stderr
    repo.fails("tarball", "-o", out, target, target, code=2)
    repo.fails("tarball", "-o", out, code=2)
    repo.fails("tarball", "-o", "", target, code=2)
    no_leftovers(work)
    # nothing on stdout either
    r = repo.fails("tarball", snap_path(snap, os.path.join(src, b"nope")))
    assert r.stdout == b""


def test_corrupted_chunk_fails_and_leaves_nothing(repo, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    big = write_random(src / "big.bin", 8 * 1024 * 1024, seed=9)
    (src / "small.txt").write_bytes(b"small\n")
    snap = repo.push(src)
    flip_byte(largest_pack(repo.repo))
    work = tmp_path / "work"
    work.mkdir()
    previous = work / "out.tar.gz"
    previous.write_bytes(b"previous archive")
    for fmt in ("tar.gz", "zip"):
        r = repo.fails("tarball", "-format", fmt, "-o", previous, snap_path(snap, src),
                       global_args=("-no-cache",))
        assert "corrupt" in r.stderr.lower(), r
        assert str(src / "big.bin") in r.stderr, r
        assert previous.read_bytes() == b"previous archive"
        no_leftovers(work, {"out.tar.gz"})
    # to stdout: the command fails the same way; what came out is not a complete archive
    r = repo.fails("tarball", snap_path(snap, src), global_args=("-no-cache",))
    assert str(src / "big.bin") in r.stderr
    assert len(r.stdout) < len(big)


def test_items_missing_from_the_snapshot(repo, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.txt").write_bytes(b"fine\n")
    (src / "secret").write_bytes(b"no\n")
    os.chmod(src / "secret", 0)
    # Root reads anything: drop the capabilities that bypass file modes for this push.
    preexec = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"] if IS_ROOT else []
    if IS_ROOT and shutil.which("setpriv") is None:
        pytest.skip("setpriv is needed to drop root's file access capabilities")  # pragma: no cover
    r = repo.run("push", src, preexec=preexec)
    assert r.returncode == 3, r
    snap = r.out.strip()
    out = tmp_path / "out.tar"
    r = repo.run("tarball", "-o", out, snap_path(snap, src))
    # the archive is complete without it: one line for the item, one that sums up, exit 3
    assert r.returncode == 3, r
    lines = r.stderr_lines()
    assert len(lines) == 2 and "secret" in lines[0], r
    assert all(line.startswith("plakar: tarball: ") for line in lines), r
    names = tar_names(out, "tar")
    assert b"src/ok.txt" in names and b"src/secret" not in names


@pytest.mark.skipif(bool(os.environ.get("PLAKAR_TEST_SANITIZER")),
                    reason="a sanitizer's shadow memory and quarantine are not the program's (asan/tsan presets)")
def test_memory_stays_bounded(repo, tmp_path):
    """The archive is streamed: a 96 MiB file does not make the process grow by as much."""
    src = tmp_path / "src"
    src.mkdir()
    write_random(src / "huge.bin", 96 * 1024 * 1024, seed=4)
    snap = repo.push(src)
    probe = ("import resource, subprocess, sys\n"
             "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True,\n"
             "               stdin=subprocess.DEVNULL)\n"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    r = repo.run("tarball", snap_path(snap, src), preexec=(sys.executable, "-c", probe))
    assert r.returncode == 0, r
    max_rss_kib = int(r.stdout.split()[-1])
    assert max_rss_kib < 64 * 1024, max_rss_kib
