"""Error codes surface as the right exceptions, which also inherit the matching builtins."""

import pickle
import uuid

import pytest

import plakar
from conftest import KDF, PASSPHRASE


def test_exception_hierarchy():
    assert issubclass(plakar.NotFoundError, plakar.PlakarError)
    assert issubclass(plakar.NotFoundError, KeyError)
    assert issubclass(plakar.AuthError, PermissionError)
    assert issubclass(plakar.ExistsError, FileExistsError)
    assert issubclass(plakar.InvalidArgumentError, ValueError)
    assert issubclass(plakar.AmbiguousError, LookupError)
    for cls in (plakar.CorruptError, plakar.LockedError, plakar.CanceledError,
                plakar.PartialError, plakar.VersionError, plakar.UnsupportedError):
        assert issubclass(cls, plakar.PlakarError)
    codes = {cls.code for cls in (plakar.NotFoundError, plakar.AuthError, plakar.CorruptError,
                                  plakar.LockedError, plakar.ExistsError,
                                  plakar.InvalidArgumentError, plakar.AmbiguousError,
                                  plakar.CanceledError, plakar.PartialError,
                                  plakar.VersionError, plakar.UnsupportedError)}
    assert len(codes) == 11 and all(c < 0 for c in codes)


def test_not_found_message_is_not_quoted():
    e = plakar.NotFoundError("no such snapshot", plakar.NotFoundError.code)
    assert str(e) == "no such snapshot"
    e2 = pickle.loads(pickle.dumps(e))
    assert type(e2) is plakar.NotFoundError and str(e2) == str(e) and e2.code == e.code


def test_wrong_passphrase(repo_path):
    plakar.create(repo_path, PASSPHRASE, kdf_log2_n=KDF).close()
    with pytest.raises(plakar.AuthError) as ei:
        plakar.open(repo_path, "not the passphrase")
    assert isinstance(ei.value, PermissionError)
    assert ei.value.code == plakar.AuthError.code
    assert str(ei.value)
    # bytes passphrases are accepted and mean the same
    plakar.open(repo_path, PASSPHRASE.encode()).close()


def test_missing_passphrase(repo_path):
    plakar.create(repo_path, PASSPHRASE, kdf_log2_n=KDF).close()
    with pytest.raises(plakar.AuthError):
        plakar.open(repo_path)


def test_create_needs_passphrase_when_encrypted(repo_path):
    with pytest.raises(plakar.InvalidArgumentError) as ei:
        plakar.create(repo_path, kdf_log2_n=KDF)
    assert isinstance(ei.value, ValueError)


def test_missing_repository(tmp_path):
    with pytest.raises(plakar.NotFoundError) as ei:
        plakar.open(tmp_path / "nothing-here", PASSPHRASE)
    assert isinstance(ei.value, KeyError)
    assert not str(ei.value).startswith("'")


def test_create_over_existing(repo_path):
    plakar.create(repo_path, PASSPHRASE, kdf_log2_n=KDF).close()
    with pytest.raises(plakar.ExistsError) as ei:
        plakar.create(repo_path, PASSPHRASE, kdf_log2_n=KDF)
    assert isinstance(ei.value, FileExistsError)


def test_missing_snapshot_and_path(repo, tree):
    snap = repo.push(tree)
    missing = str(uuid.UUID(int=(uuid.UUID(snap.id).int + 1) % (1 << 128)))
    with pytest.raises(plakar.NotFoundError):
        repo.snapshot(missing)
    with pytest.raises(KeyError):
        repo.cat(missing, tree / "README")
    with pytest.raises(plakar.NotFoundError) as ei:
        snap.stat(tree / "no-such-file")
    assert isinstance(ei.value, KeyError)
    assert str(ei.value) == ei.value.message
    with pytest.raises(KeyError):
        snap.ls(tree / "no-such-dir")
    with pytest.raises(KeyError):
        snap.cat(tree / "no-such-file")
    with pytest.raises(KeyError):
        repo.open_file(snap, tree / "no-such-file")


def test_push_missing_path(repo, tmp_path):
    with pytest.raises(plakar.NotFoundError):
        repo.push(tmp_path / "does-not-exist")
    assert repo.snapshots() == []


def test_open_a_directory_as_file(repo, tree):
    snap = repo.push(tree)
    with pytest.raises(plakar.InvalidArgumentError):
        snap.open(tree / "docs")
    with pytest.raises(plakar.InvalidArgumentError):
        snap.cat(tree / "docs")


def test_nul_byte_in_path(repo, tree):
    snap = repo.push(tree)
    with pytest.raises(ValueError):
        snap.stat(str(tree) + "/README\0x")
    with pytest.raises(ValueError):
        repo.push([str(tree) + "\0"])


def test_ambiguous_prefix(repo, tmp_path):
    f = tmp_path / "tiny"
    seen = {}
    for i in range(17):  # 17 ids over 16 hex digits: two must share their first one
        f.write_bytes(b"%d" % i)
        snap = repo.push(f)
        c = snap.id[0]
        if c in seen:
            break
        seen[c] = snap
    else:
        pytest.fail("17 snapshots with 17 distinct first hex digits")
    with pytest.raises(plakar.AmbiguousError) as ei:
        repo.snapshot(c)
    assert isinstance(ei.value, LookupError)
    assert not isinstance(ei.value, KeyError)
    with pytest.raises(plakar.AmbiguousError):
        repo.ls(c)
    # A full id still selects one.
    assert repo.snapshot(snap.id) == snap
