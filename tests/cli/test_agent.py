"""`plakar agent`: the passphrase once per shell, keys per repository, -stop, the idle
timeout, and a peer of another uid refused."""
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from cliutil import IS_ROOT, create_repo, reachable_copy

ENV_RE = re.compile(r"PLAKAR_AGENT=(?P<sock>\S+); export PLAKAR_AGENT;\necho plakar agent pid (?P<pid>\d+);\n")


def start(plakar, *flags):
    r = plakar.ok("agent", *flags, repo=None)
    m = ENV_RE.fullmatch(r.out)
    assert m, r
    return m.group("sock"), int(m.group("pid"))


def gone(pid, timeout=10):
    end = time.time() + timeout
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if time.time() >= end:
            return False
        time.sleep(0.05)


def test_passphrase_once_per_shell(plakar, tmp_path):
    repo = create_repo(plakar, tmp_path / "repo")
    other = create_repo(plakar, tmp_path / "other")
    sock, pid = start(plakar)
    try:
        assert oct(os.stat(sock).st_mode & 0o777) == "0o600"
        assert oct(os.stat(os.path.dirname(sock)).st_mode & 0o777) == "0o700"
        src = tmp_path / "src"
        src.mkdir()
        (src / "f").write_text("hello\n")
        with_agent = {"PLAKAR_AGENT": sock}
        snap = repo.push(src, extra_env=with_agent)  # the passphrase opens it; the agent keeps the key
        # No passphrase any more, through the agent.
        r = repo.ok("cat", "%s:%s/f" % (snap, src), extra_env=with_agent, unset=("PLAKAR_PASSPHRASE",))
        assert r.stdout == b"hello\n"
        # Another repository's key was never given: its passphrase is still needed.
        other.fails("ls", extra_env=with_agent, unset=("PLAKAR_PASSPHRASE",))
        # Without PLAKAR_AGENT the agent is not used.
        repo.fails("ls", unset=("PLAKAR_PASSPHRASE",))
        r = plakar.ok("agent", "-stop", repo=None, extra_env=with_agent)
        assert r.out == "unset PLAKAR_AGENT;\n"
        assert gone(pid)
        assert not os.path.exists(sock) and not os.path.exists(os.path.dirname(sock))
        # A stopped agent means a passphrase again, with one clear error.
        repo.fails("ls", extra_env=with_agent, unset=("PLAKAR_PASSPHRASE",))
    finally:
        if not gone(pid, 0):
            os.kill(pid, 9)


def test_idle_timeout_and_foreground(plakar, tmp_path):
    sock = str(tmp_path / "a.sock")
    cmd = [plakar.binary, b"agent", b"-foreground", b"-timeout", b"1", b"-socket", sock.encode()]
    p = subprocess.Popen(cmd, env=plakar.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    assert ENV_RE.fullmatch(out.decode()), out
    assert not os.path.exists(sock)


def test_bad_use(plakar, tmp_path):
    plakar.fails("agent", "-stop", repo=None, code=1)  # PLAKAR_AGENT unset
    plakar.fails("agent", "-stop", repo=None, extra_env={"PLAKAR_AGENT": str(tmp_path / "none")})
    plakar.fails("agent", "-timeout", "-5", repo=None, code=2)
    plakar.fails("agent", "extra", repo=None, code=2)
    sock, pid = start(plakar, "-socket", str(tmp_path / "s"))
    try:
        plakar.fails("agent", "-socket", str(tmp_path / "s"), repo=None)  # already there
    finally:
        plakar.ok("agent", "-stop", "-socket", str(tmp_path / "s"), repo=None)
        assert gone(pid)


@pytest.mark.skipif(not IS_ROOT or shutil.which("runuser") is None, reason="needs root and runuser")
def test_other_uid_gets_nothing(plakar):
    # Everything where nobody can reach it: the uid check is then the only barrier.
    top = tempfile.mkdtemp(prefix="plakar-agent-test-", dir="/tmp")
    try:
        os.chmod(top, 0o755)
        repo = create_repo(plakar, os.path.join(top, "repo"))
        sock, pid = start(plakar, "-socket", os.path.join(top, "open.sock"))
        try:
            repo.ok("ls", extra_env={"PLAKAR_AGENT": sock})  # the key is in the agent now
            os.chmod(sock, 0o666)
            for dirpath, dirs, files in os.walk(top):
                for n in dirs:
                    os.chmod(os.path.join(dirpath, n), 0o755)
                for n in files:
                    os.chmod(os.path.join(dirpath, n), 0o644)
            env = dict(plakar.env)
            env.pop("PLAKAR_PASSPHRASE")
            env["PLAKAR_AGENT"] = sock
            env["HOME"] = "/nonexistent"
            env["XDG_CACHE_HOME"] = "/nonexistent"
            other = reachable_copy(repo, top)
            env["LD_LIBRARY_PATH"] = other.env["LD_LIBRARY_PATH"]
            r = other.run("ls", env=env, preexec=("runuser", "-u", "nobody", "--"))
            assert r.returncode == 1 and "passphrase is required" in r.stderr, r
            # while root, through the same socket, still gets its key
            repo.ok("ls", extra_env={"PLAKAR_AGENT": sock}, unset=("PLAKAR_PASSPHRASE",))
        finally:
            plakar.ok("agent", "-stop", "-socket", sock, repo=None)
            assert gone(pid)
    finally:
        shutil.rmtree(top)
