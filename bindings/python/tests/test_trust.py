"""Restores from forged snapshots (plakar_forge in tests/tools writes them, as an attacker who
holds the key could) and into targets with planted links: nothing is ever written outside the
target; and pull's overwrite policy, dry run and verification."""
import hashlib
import os
import subprocess

import pytest

import plakar
from conftest import PASSPHRASE


def forge(repo_path, scenario, outside):
    r = subprocess.run([os.environ["PLAKAR_FORGE"], str(repo_path), PASSPHRASE, scenario, str(outside)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
    return r.stdout.decode().strip()


def tree_hash(top):
    h = hashlib.sha256()
    for dirpath, dirs, files in os.walk(top):
        dirs.sort()
        for name in sorted(dirs + files):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            h.update(("%s %o %d\n" % (os.path.relpath(p, top), st.st_mode, st.st_size)).encode())
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()


@pytest.mark.parametrize("scenario", ["dup-dir-first", "dup-link-first", "dup-dir-first-large",
                                      "dup-link-first-large", "split-dup"])
def test_forged_snapshot_never_writes_outside(repo, repo_path, tmp_path, scenario):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "existing").write_text("outside\n")
    before = tree_hash(outside)
    snap_id = forge(repo_path, scenario, outside)
    with plakar.open(repo_path, PASSPHRASE) as r:
        snap = r.snapshot(snap_id)
        with pytest.raises(plakar.CorruptError, match="unsorted or duplicate names"):
            snap.pull("/", tmp_path / "target")
        with pytest.raises(plakar.CorruptError):
            snap.tarball(tmp_path / "out.tar")
    assert tree_hash(outside) == before
    assert not (outside / "newfile").exists()


def test_planted_link_is_replaced(repo, tmp_path):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "f").write_text("snapshot\n")
    snap = repo.push([src])
    outside = tmp_path / "outside"
    outside.mkdir()
    before = tree_hash(outside)
    target = tmp_path / "target"
    target.mkdir()
    os.symlink(outside, target / "d")
    snap.pull(src / "d", target, rebase=True)
    assert not (target / "d").is_symlink()
    assert (target / "d" / "f").read_text() == "snapshot\n"
    assert tree_hash(outside) == before


def test_overwrite_dry_run_verify(repo, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_text("snapshot\n")
    snap = repo.push([src])
    target = tmp_path / "target"
    events = []
    snap.pull(src, target, rebase=True, dry_run=True, progress=lambda e: events.append((e.kind, e.path)))
    assert (plakar.EventKind.CREATE, str(target / "src" / "a")) in events
    assert not target.exists()
    snap.pull(src, target, rebase=True, verify=True)
    (target / "src" / "a").write_text("local\n")
    snap.pull(src, target, rebase=True, overwrite="never")
    assert (target / "src" / "a").read_text() == "local\n"
    snap.pull(src, target, rebase=True, overwrite="if-changed")
    assert (target / "src" / "a").read_text() == "snapshot\n"
    (target / "src" / "a").unlink()
    (target / "src" / "a").mkdir()
    (target / "src" / "a" / "precious").write_text("x")
    with pytest.raises(plakar.PartialError):
        snap.pull(src, target, rebase=True)
    assert (target / "src" / "a" / "precious").exists()
    snap.pull(src, target, rebase=True, force=True)
    assert (target / "src" / "a").read_text() == "snapshot\n"
    with pytest.raises(plakar.InvalidArgumentError):
        snap.pull(src, target, overwrite="sometimes")


def test_unreadable_snapshot_is_listed_apart(repo, repo_path, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    snap = repo.push([src])
    bad = "11111111-2222-4333-8444-555555555555"
    (repo_path / "snapshots" / bad).write_bytes(os.urandom(28))
    with plakar.open(repo_path, PASSPHRASE) as r:
        assert [s.id for s in r.snapshots()] == [snap.id]
        unreadable = r.unreadable_snapshots()
        assert len(unreadable) == 1 and bad in unreadable[0]
        r.rm([bad])
        assert r.unreadable_snapshots() == []


def test_substituted_content_is_never_returned(repo, repo_path, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"genuine " * 1000)
    snap = repo.push([src])
    subprocess.run([os.environ["PLAKAR_FORGE"], str(repo_path), PASSPHRASE, "substitute", "-"], check=True,
                   stdout=subprocess.PIPE)
    with plakar.open(repo_path, PASSPHRASE, cache=False) as r:
        s = r.snapshot(snap.id)
        assert s.cat(src / "f") == b"genuine " * 1000
        warnings = []
        s.pull(src, tmp_path / "out", rebase=True,
               progress=lambda e: warnings.append(e.message) if e.kind == plakar.EventKind.WARNING else None)
        assert (tmp_path / "out" / "src" / "f").read_bytes() == b"genuine " * 1000
        assert warnings and "does not match its id" in warnings[0]
