"""plakar.Server and plakar:// repositories from Python: a real server on 127.0.0.1."""

import os

import pytest

import plakar
from conftest import KDF, PASSPHRASE


@pytest.fixture
def tokens(tmp_path):
    rw_line, rw = plakar.new_token("py-rw")
    ro_line, ro = plakar.new_token("py-ro", "ro")
    path = tmp_path / "tokens"
    path.write_text(rw_line + "\n" + ro_line + "\n")
    os.chmod(path, 0o600)
    return path, rw, ro


def test_push_and_pull_through_a_server(tmp_path, tokens, monkeypatch):
    path, rw, ro = tokens
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(os.urandom(300_000))
    (src / "b").write_text("hello\n")
    with plakar.Server(tmp_path / "store", path, "127.0.0.1:0") as srv:
        assert srv.uri.startswith("plakar://127.0.0.1:")
        monkeypatch.setenv("PLAKAR_TOKEN", rw)
        with plakar.create(srv.uri, PASSPHRASE, kdf_log2_n=KDF) as repo:
            snap = repo.push(src)
        monkeypatch.setenv("PLAKAR_TOKEN", ro)
        with plakar.open(srv.uri, PASSPHRASE) as repo:
            assert [s.id for s in repo.snapshots()] == [snap.id]
            repo.snapshot(snap.id).pull(to=tmp_path / "out")
            assert repo.check().ok
            with pytest.raises(plakar.AuthError, match="read-only"):
                repo.push(src)
    assert (tmp_path / "out" / str(src).lstrip("/") / "a").read_bytes() == (src / "a").read_bytes()


def test_bad_tokens_and_options(tmp_path, tokens, monkeypatch):
    path, rw, _ = tokens
    with pytest.raises(plakar.InvalidArgumentError, match="rights"):
        plakar.new_token("x", "admin")
    with pytest.raises(plakar.InvalidArgumentError):
        plakar.new_token("bad name")
    with pytest.raises(plakar.NotFoundError):
        plakar.Server(tmp_path / "store", tmp_path / "missing")
    os.chmod(path, 0o644)
    with pytest.raises(plakar.InvalidArgumentError, match="chmod 600"):
        plakar.Server(tmp_path / "store", path)
    os.chmod(path, 0o600)
    with plakar.Server(tmp_path / "store", path, "127.0.0.1:0") as srv:
        monkeypatch.setenv("PLAKAR_TOKEN", "py-rw:" + "0" * 64)
        with pytest.raises(plakar.AuthError, match="authentication failed"):
            plakar.create(srv.uri, PASSPHRASE, kdf_log2_n=KDF)
