"""Fixtures for the end-to-end tests of the `plakar` command (run through ctest, which sets
PLAKAR_BIN to the built binary)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cliutil import Plakar, create_repo  # noqa: E402

PASSPHRASE = "correct horse battery staple"


@pytest.fixture(scope="session")
def plakar_bin():
    path = os.environ.get("PLAKAR_BIN")
    if not path:
        pytest.fail("PLAKAR_BIN is not set: run these tests through ctest (ctest -R cli)")
    assert os.access(path, os.X_OK), path
    return path


@pytest.fixture
def env(tmp_path):
    """A clean environment: no PLAKAR_* but the passphrase, HOME in a temporary directory."""
    home = tmp_path / "home"
    home.mkdir()
    e = {k: v for k, v in os.environ.items() if not k.startswith("PLAKAR_")}
    e["HOME"] = str(home)
    e["XDG_CACHE_HOME"] = str(home / ".cache")
    e["PLAKAR_PASSPHRASE"] = PASSPHRASE
    e["LC_ALL"] = "C.UTF-8"
    return e


@pytest.fixture
def plakar(plakar_bin, env):
    """The binary with that environment, no repository bound."""
    return Plakar(plakar_bin, env)


@pytest.fixture
def repo(plakar, tmp_path):
    """An encrypted repository (cheap scrypt cost), bound to the returned Plakar."""
    return create_repo(plakar, tmp_path / "repo")
