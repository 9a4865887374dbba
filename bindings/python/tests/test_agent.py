"""The key agent from Python: run_agent() in a thread, open(agent=...) without a passphrase."""

import threading
import time

import pytest

import plakar
from conftest import KDF, PASSPHRASE


@pytest.fixture
def agent(tmp_path):
    sock = tmp_path / "agent.sock"
    errors = []

    def serve():
        try:
            plakar.run_agent(sock, idle_timeout=60)
        except plakar.PlakarError as e:  # pragma: no cover - reported below
            errors.append(e)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    for _ in range(200):
        if sock.exists():
            break
        time.sleep(0.01)
    yield sock
    try:
        plakar.stop_agent(sock)
    except plakar.NotFoundError:
        pass
    t.join(10)
    assert not t.is_alive() and not errors


def test_open_through_agent(repo_path, agent):
    plakar.create(repo_path, PASSPHRASE, kdf_log2_n=KDF).close()
    with pytest.raises(plakar.AuthError):
        plakar.open(repo_path, agent=agent)  # the agent has no key yet
    plakar.open(repo_path, PASSPHRASE, agent=agent).close()  # now it has
    with plakar.open(repo_path, agent=agent) as repo:
        assert repo.encrypted
    with pytest.raises(plakar.AuthError):
        plakar.open(repo_path)  # without the agent, a passphrase again


def test_agent_errors(tmp_path, agent):
    with pytest.raises(plakar.ExistsError):
        plakar.run_agent(agent)
    plakar.stop_agent(agent)
    with pytest.raises(plakar.NotFoundError):
        plakar.stop_agent(tmp_path / "none.sock")
