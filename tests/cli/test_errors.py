"""Bad input: each case prints one clear line on stderr, exits non-zero, and loses nothing:
the repository still works afterwards."""
import os
import random
import shutil

import pytest

from cliutil import (IS_ROOT, flip_byte, largest_pack, read_all, snap_path,
                     to_bytes, write_random)


@pytest.fixture
def filled(repo, tmp_path):
    """A repository holding one snapshot of a small tree; returns (repo, snap, src)."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "hello.txt").write_bytes(b"hello\n")
    (src / "sub" / "nested.txt").write_bytes(b"nested\n")
    snap = repo.push(src)
    return repo, snap, src


def still_works(repo, snap, src):
    assert repo.snapshot_ids()[0] == snap
    assert repo.ok("cat", snap_path(snap, src / "hello.txt")).stdout == b"hello\n"


def test_wrong_passphrase(filled):
    repo, snap, src = filled
    r = repo.fails("ls", extra_env={"PLAKAR_PASSPHRASE": "not the passphrase"})
    assert "passphrase" in r.stderr.lower()
    assert r.stdout == b""
    r = repo.fails("push", src, extra_env={"PLAKAR_PASSPHRASE": "not the passphrase"})
    assert r.stdout == b""
    repo.fails("cat", snap_path(snap, src / "hello.txt"), extra_env={"PLAKAR_PASSPHRASE": "x"})
    assert len(repo.snapshot_ids()) == 1
    still_works(repo, snap, src)


def test_repository_missing(plakar, tmp_path):
    missing = tmp_path / "missing"
    for args in (["ls"], ["push", tmp_path], ["cat", "abcd:/x"], ["pull", "abcd"]):
        r = plakar.fails(*args, repo=missing)
        assert str(missing) in r.stderr or "not found" in r.stderr.lower() or "no repository" in r.stderr.lower()
    assert not missing.exists()
    # the default repository (~/.plakar) missing is the same error
    plakar.fails("ls", repo=None)
    assert not os.path.exists(os.path.join(plakar.env["HOME"], ".plakar"))


def test_not_a_repository(plakar, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_bytes(b"not a repository\n")
    for args in (["ls"], ["push", tmp_path / "other"]):
        plakar.fails(*args, repo=other)
    assert os.listdir(other) == ["notes.txt"]
    assert (other / "notes.txt").read_bytes() == b"not a repository\n"
    # a regular file is not a repository either
    plakar.fails("ls", repo=other / "notes.txt")


def test_create_over_existing(filled, tmp_path):
    repo, snap, src = filled
    r = repo.fails("create", "-kdf-log2-n", "10", extra_env={"PLAKAR_PASSPHRASE": "another one"})
    assert "exist" in r.stderr.lower()
    repo.fails("create", "-no-encryption")
    still_works(repo, snap, src)
    # over a non-empty directory that is not a repository: refused, untouched
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_bytes(b"keep me\n")
    repo.fails("create", "-kdf-log2-n", "10", repo=other)
    assert os.listdir(other) == ["keep.txt"]


def test_path_not_in_snapshot(filled, tmp_path):
    repo, snap, src = filled
    missing = src / "no-such-file"
    r = repo.fails("ls", snap_path(snap, missing))
    assert r.stdout == b""
    r = repo.fails("cat", snap_path(snap, missing))
    assert r.stdout == b""
    dest = tmp_path / "dest"
    repo.fails("pull", "-to", dest, snap_path(snap, missing))
    assert not dest.exists() or os.listdir(dest) == []
    # cat of a directory is refused too
    repo.fails("cat", snap_path(snap, src / "sub"))
    still_works(repo, snap, src)


def test_push_missing_path(repo, tmp_path):
    repo.fails("push", tmp_path / "does-not-exist")
    assert repo.snapshot_ids() == []


def test_unreadable_file(repo, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "good.txt").write_bytes(b"good\n")
    (src / "sub" / "also-good.txt").write_bytes(b"also good\n")
    secret = src / "secret.txt"
    secret.write_bytes(b"you cannot read me\n")
    os.chmod(secret, 0)
    # Root reads anything: drop the capabilities that bypass file modes for this push.
    preexec = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"] if IS_ROOT else []
    if IS_ROOT and shutil.which("setpriv") is None:
        pytest.skip("setpriv is needed to drop root's file access capabilities")  # pragma: no cover

    r = repo.run("push", src, preexec=preexec)
    assert r.returncode == 3, r
    snap = r.out.strip()
    assert repo.snapshot_ids() == [snap]
    lines = r.stderr_lines()
    assert lines and all(line.startswith("plakar: push: ") for line in lines), r
    assert any("secret.txt" in line for line in lines), r

    # The other files restore; the whole snapshot restores the rest and exits 3.
    assert repo.ok("cat", snap_path(snap, src / "good.txt")).stdout == b"good\n"
    r = repo.fails("cat", snap_path(snap, secret))
    assert r.stdout == b""
    dest = tmp_path / "dest"
    r = repo.run("pull", "-to", dest, snap_path(snap, src))
    assert r.returncode == 3, r
    assert all(line.startswith("plakar: pull: ") for line in r.stderr_lines()), r
    assert any("secret.txt" in line for line in r.stderr_lines()), r
    restored = dest / str(src).lstrip("/")
    assert (restored / "good.txt").read_bytes() == b"good\n"
    assert (restored / "sub" / "also-good.txt").read_bytes() == b"also good\n"
    # content that could not be read is not invented (not even as an empty file)
    assert not (restored / "secret.txt").exists()


def test_corrupted_pack(repo, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    big = write_random(src / "big.bin", 20 * 1024 * 1024, seed=3)
    (src / "small.txt").write_bytes(b"small and safe\n")
    snap = repo.push(src)
    flip_byte(largest_pack(repo.repo))

    r = repo.run("cat", snap_path(snap, src / "big.bin"))
    assert r.returncode == 1, r
    assert "corrupt" in r.stderr.lower(), r
    assert all(line.startswith("plakar: cat: ") for line in r.stderr_lines()), r
    # only authenticated bytes came out: a strict prefix of the original
    assert len(r.stdout) < len(big) and big.startswith(r.stdout)

    dest = tmp_path / "dest"
    r = repo.run("pull", "-to", dest, snap)
    assert r.returncode == 1, r
    assert "corrupt" in r.stderr.lower(), r
    assert all(line.startswith("plakar: pull: ") for line in r.stderr_lines()), r
    restored = dest / str(src).lstrip("/")
    # never written with wrong bytes; the rest is restored
    assert not (restored / "big.bin").exists() or read_all(restored / "big.bin") == big
    assert (restored / "small.txt").read_bytes() == b"small and safe\n"
    leftovers = [n for n in os.listdir(restored) if n not in ("big.bin", "small.txt")]
    assert leftovers == [], leftovers

    # the rest of the repository still works
    assert repo.snapshot_ids() == [snap]
    assert repo.ok("cat", snap_path(snap, src / "small.txt")).stdout == b"small and safe\n"


def test_restore_target_not_writable(filled, tmp_path):
    repo, snap, src = filled
    blocker = tmp_path / "regular-file"
    blocker.write_bytes(b"in the way\n")
    r = repo.run("pull", "-to", blocker / "below", snap)
    assert r.returncode != 0, r
    assert r.stderr_lines() and all(line.startswith("plakar: pull: ") for line in r.stderr_lines()), r
    assert blocker.read_bytes() == b"in the way\n"
    r = repo.run("pull", "-rebase", "-to", blocker, snap_path(snap, src / "sub"))
    assert r.returncode != 0, r
    assert blocker.read_bytes() == b"in the way\n"
    still_works(repo, snap, src)


def test_encrypted_repository_hides_content(repo, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    # in the middle of random bytes, so that compression cannot be what hides it
    noise = random.Random(5).randbytes(4096)
    (src / "f").write_bytes(noise + b"PLAKAR-CLEARTEXT-MARKER" + noise)
    (src / "PLAKAR-NAME-MARKER").write_bytes(b"")
    repo.push(src)
    for dirpath, _, files in os.walk(repo.repo):
        for name in files:
            data = read_all(os.path.join(dirpath, name))
            assert b"PLAKAR-CLEARTEXT-MARKER" not in data, name
            assert b"PLAKAR-NAME-MARKER" not in data, name
            assert to_bytes(src) not in data, name


def test_error_lines_escape_control_bytes(repo, tmp_path):
    odd = tmp_path / "line\nbreak"
    r = repo.fails("push", odd)
    assert "line\\nbreak" in r.stderr

