"""pull's safety options: arguments checked before anything is written, the overwrite policy,
-force, -dry-run and -verify."""
import os

import pytest

from cliutil import compare_trees


@pytest.fixture
def snap_src(repo, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a").write_text("a from the snapshot\n")
    (src / "sub" / "b").write_text("b from the snapshot\n")
    os.symlink("a", src / "l")
    os.utime(src / "a", ns=(10**18, 10**18))
    os.utime(src / "sub" / "b", ns=(10**18, 10**18))
    return repo.push(src), src


def restore(repo, snap, src, target, *flags, code=0):
    r = repo.run("pull", "-rebase", "-to", target, *flags, snap + ":" + str(src))
    assert r.returncode == code, r
    return r


def test_flag_after_argument_is_refused_before_anything_is_written(repo, snap_src, tmp_path):
    snap, src = snap_src
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    r = repo.fails("pull", snap, "-to", tmp_path / "elsewhere", cwd=cwd, code=2)
    assert "flags go before arguments: -to" in r.stderr, r
    assert os.listdir(cwd) == []
    assert not (tmp_path / "elsewhere").exists()
    # the same rule everywhere, and "--" still lets an argument start with a dash
    r = repo.fails("ls", snap, "-R", code=2)
    assert "flags go before arguments" in r.stderr, r
    repo.ok("ls", "--", snap)


def test_default_replaces_files_but_never_removes_a_nonempty_directory(repo, snap_src, tmp_path):
    snap, src = snap_src
    target = tmp_path / "t"
    restore(repo, snap, src, target)
    (target / "src" / "sub" / "b").write_text("local change\n")
    (target / "src" / "a").unlink()
    (target / "src" / "a").mkdir()
    (target / "src" / "a" / "precious").write_text("keep me\n")
    r = restore(repo, snap, src, target, code=3)
    assert "a non-empty directory is in the way" in r.stderr and "-force" in r.stderr, r
    assert (target / "src" / "a" / "precious").read_text() == "keep me\n"
    assert (target / "src" / "sub" / "b").read_text() == "b from the snapshot\n"
    # an empty directory in the way is replaced without -force
    (target / "src" / "a" / "precious").unlink()
    restore(repo, snap, src, target)
    assert (target / "src" / "a").read_text() == "a from the snapshot\n"
    # -force removes a non-empty one
    (target / "src" / "a").unlink()
    (target / "src" / "a" / "x").mkdir(parents=True)
    restore(repo, snap, src, target, "-force")
    compare_trees(src, target / "src")


def test_overwrite_policies(repo, snap_src, tmp_path):
    snap, src = snap_src
    target = tmp_path / "t"
    restore(repo, snap, src, target)
    b = target / "src" / "sub" / "b"
    a = target / "src" / "a"
    b.write_text("newer local\n")  # mtime now: newer than the snapshot's
    a.write_text("older local!\n")
    os.utime(a, ns=(10**17, 10**17))
    restore(repo, snap, src, target, "-overwrite", "never")
    assert b.read_text() == "newer local\n" and a.read_text() == "older local!\n"
    restore(repo, snap, src, target, "-overwrite", "if-newer")
    assert b.read_text() == "newer local\n" and a.read_text() == "a from the snapshot\n"
    # if-changed: same size and mtime is taken as unchanged, anything else is replaced
    restore(repo, snap, src, target, "-overwrite", "if-changed")
    assert b.read_text() == "b from the snapshot\n"
    with open(a, "r+") as f:
        f.write("A")  # same size, mtime changes
    st = os.stat(a)
    os.utime(a, ns=(10**18, 10**18))
    restore(repo, snap, src, target, "-overwrite", "if-changed")
    assert a.read_text() == "A from the snapshot\n"  # looks unchanged: kept
    restore(repo, snap, src, target, "-overwrite", "always")
    assert a.read_text() == "a from the snapshot\n"
    r = repo.fails("pull", "-overwrite", "sometimes", snap, code=2)
    assert "expected always, if-changed, if-newer or never" in r.stderr


def test_dry_run_writes_nothing(repo, snap_src, tmp_path):
    snap, src = snap_src
    target = tmp_path / "t"
    r = restore(repo, snap, src, target, "-dry-run")
    lines = r.out.splitlines()
    assert "create %s/src" % target in lines
    assert "create %s/src/a" % target in lines and "create %s/src/sub/b" % target in lines, r
    assert not target.exists()
    restore(repo, snap, src, target)
    (target / "src" / "a").unlink()
    (target / "src" / "a").mkdir()
    (target / "src" / "a" / "x").write_text("x")
    (target / "src" / "sub" / "b").write_text("changed\n")
    before = sorted(os.walk(target))
    r = restore(repo, snap, src, target, "-dry-run", "-force")
    lines = r.out.splitlines()
    assert "remove %s/src/a" % target in lines and "replace %s/src/a" % target in lines, r
    assert "replace %s/src/sub/b" % target in lines, r
    r = restore(repo, snap, src, target, "-dry-run", "-overwrite", "never")
    assert "keep %s/src/sub/b" % target in r.out.splitlines(), r
    r = restore(repo, snap, src, target, "-dry-run", code=3)
    assert "non-empty directory is in the way" in r.stderr, r
    assert sorted(os.walk(target)) == before
    assert (target / "src" / "sub" / "b").read_text() == "changed\n"


def test_verify(repo, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "big").write_bytes(os.urandom(3 << 20))
    (src / "small").write_text("s\n")
    os.symlink("small", src / "l")
    snap = repo.push(src)
    target = tmp_path / "t"
    restore(repo, snap, src, target, "-verify")
    compare_trees(src, target / "src")
