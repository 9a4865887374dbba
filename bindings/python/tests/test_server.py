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


def test_tls_server_and_pinned_client(tmp_path, tokens, monkeypatch):
    path, rw, _ = tokens
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    pin = plakar.new_tls_cert(cert, key, "127.0.0.1", days=2)
    assert pin.startswith("sha256:") and len(pin) == 7 + 64
    assert os.stat(key).st_mode & 0o777 == 0o600
    with pytest.raises(plakar.PlakarError, match="already exists"):
        plakar.new_tls_cert(cert, tmp_path / "other-key.pem", "127.0.0.1")
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(os.urandom(200_000))
    monkeypatch.setenv("PLAKAR_TOKEN", rw)
    with plakar.Server(tmp_path / "store", path, "127.0.0.1:0", tls_cert=cert, tls_key=key) as srv:
        assert srv.tls_pin == pin
        assert srv.uri == "plakar+tls://%s?pin=%s" % (srv.address, pin)
        with plakar.create(srv.uri, PASSPHRASE, kdf_log2_n=KDF) as repo:
            snap = repo.push(src)
        with plakar.open(srv.uri, PASSPHRASE) as repo:
            repo.snapshot(snap.id).pull(to=tmp_path / "out")
        with pytest.raises(plakar.AuthError, match="not the pinned"):
            plakar.open("plakar+tls://%s?pin=sha256:%s" % (srv.address, "0" * 64), PASSPHRASE)
        with pytest.raises(plakar.AuthError, match="TLS only"):
            plakar.open("plakar://" + srv.address, PASSPHRASE)
    assert (tmp_path / "out" / str(src).lstrip("/") / "a").read_bytes() == (src / "a").read_bytes()
    with plakar.Server(tmp_path / "store", path, "127.0.0.1:0") as plain:
        assert plain.tls_pin is None
        assert plain.uri.startswith("plakar://")
    with pytest.raises(plakar.InvalidArgumentError):
        plakar.Server(tmp_path / "store", path, "127.0.0.1:0", tls_cert=cert)


def test_two_tokens_in_one_process_without_the_environment(tmp_path, monkeypatch):
    """Each handle has its own token: a writer and a reader of one server side by side, the
    environment untouched; add_token writes the tokens file."""
    for var in ("PLAKAR_TOKEN", "PLAKAR_TOKEN_FILE", "PLAKAR_TLS_CA"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.config/plakar/token either
    path = tmp_path / "tokens"
    rw = plakar.add_token(path, "py-rw")
    ro = plakar.add_token(path, "py-ro", "ro")
    assert os.stat(path).st_mode & 0o777 == 0o600
    with pytest.raises(plakar.ExistsError, match="py-ro"):
        plakar.add_token(path, "py-ro")
    (tmp_path / "ro-token").write_text(ro + "\n")
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(os.urandom(100_000))
    with plakar.Server(tmp_path / "store", path, "127.0.0.1:0") as srv:
        with pytest.raises(plakar.AuthError, match="no token"):
            plakar.create(srv.uri, PASSPHRASE, kdf_log2_n=KDF)
        with plakar.create(srv.uri, PASSPHRASE, kdf_log2_n=KDF, token=rw) as writer, \
                plakar.open(srv.uri, PASSPHRASE, token_file=tmp_path / "ro-token") as reader:
            snap = writer.push(src)
            assert [s.id for s in reader.snapshots()] == [snap.id]
            with pytest.raises(plakar.AuthError, match="read-only"):
                reader.push(src)
            assert writer.push(src).id != snap.id
    assert "PLAKAR_TOKEN" not in os.environ
