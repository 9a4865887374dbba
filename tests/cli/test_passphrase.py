"""Where the passphrase comes from: the environment, -passphrase-file, or a prompt on the
controlling terminal, never anything else."""
import os
import pty
import select
import time

import pytest

from cliutil import to_bytes

SECRET = "secret from a file"


def test_passphrase_file(plakar, tmp_path):
    pfile = tmp_path / "passphrase"
    pfile.write_bytes(SECRET.encode() + b"\n")
    repo = tmp_path / "repo"
    nopass = ["PLAKAR_PASSPHRASE"]
    g = ["-passphrase-file", pfile]
    plakar.ok("create", "-kdf-log2-n", "10", repo=repo, global_args=g, unset=nopass)
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"content\n")
    snap = plakar.ok("push", src, repo=repo, global_args=g, unset=nopass).out.strip()
    assert snap in plakar.ok("ls", repo=repo, global_args=g, unset=nopass).out
    # the trailing newline was not part of the passphrase
    assert snap in plakar.ok("ls", repo=repo, extra_env={"PLAKAR_PASSPHRASE": SECRET}).out
    # the -passphrase-file=FILE form
    plakar.ok("ls", repo=repo, global_args=["-passphrase-file=%s" % pfile], unset=nopass)

    wrong = tmp_path / "wrong"
    wrong.write_bytes(b"not it\n")
    r = plakar.fails("ls", repo=repo, global_args=["-passphrase-file", wrong], unset=nopass)
    assert "passphrase" in r.stderr.lower()
    # an explicit -passphrase-file comes before $PLAKAR_PASSPHRASE (docs/cli.md)
    plakar.fails("ls", repo=repo, global_args=["-passphrase-file", wrong], extra_env={"PLAKAR_PASSPHRASE": SECRET})
    plakar.ok("ls", repo=repo, global_args=["-passphrase-file", pfile], extra_env={"PLAKAR_PASSPHRASE": "wrong"})
    r = plakar.fails("ls", repo=repo, global_args=["-passphrase-file", tmp_path / "absent"], unset=nopass)
    assert "absent" in r.stderr


def test_no_tty_no_passphrase(plakar, tmp_path):
    repo = tmp_path / "repo"
    nopass = ["PLAKAR_PASSPHRASE"]
    # create: refused before anything is written
    r = plakar.fails("create", "-kdf-log2-n", "10", repo=repo, unset=nopass)
    assert "passphrase" in r.stderr.lower()
    assert not repo.exists()

    plakar.ok("create", "-kdf-log2-n", "10", repo=repo)
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"x")
    snap = plakar.ok("push", src, repo=repo).out.strip()
    for args in (["ls"], ["push", src], ["cat", snap + ":" + str(src / "f")], ["pull", "-to", tmp_path / "d", snap]):
        r = plakar.fails(*args, repo=repo, unset=nopass)
        assert "passphrase" in r.stderr.lower(), r
        assert r.stdout == b""
    assert not (tmp_path / "d").exists()
    assert len(plakar.ok("ls", repo=repo).out.splitlines()) == 1


class Terminal:
    """Runs the binary with a pseudo-terminal as its controlling terminal."""

    def __init__(self, plakar, args, env):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child
            try:
                os.execve(plakar.binary, [plakar.binary] + [to_bytes(a) for a in args], env)
            finally:
                os._exit(127)
        self.output = b""

    def read_until(self, needle, timeout=30):
        deadline = time.monotonic() + timeout
        while needle not in self.output:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out waiting for %r, got %r" % (needle, self.output))
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError("EOF waiting for %r, got %r" % (needle, self.output))
                self.output += chunk

    def type(self, text):
        os.write(self.fd, text)

    def wait(self, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                    self.output += chunk
                except OSError:
                    pass
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                try:
                    while True:
                        chunk = os.read(self.fd, 4096)
                        if not chunk:
                            break
                        self.output += chunk
                except OSError:
                    pass
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() > deadline:
                os.kill(self.pid, 9)
                raise AssertionError("timed out, output %r" % self.output)


@pytest.fixture
def tty_env(env):
    e = dict(env)
    e.pop("PLAKAR_PASSPHRASE")
    return e


def test_prompt_on_terminal(plakar, tty_env, tmp_path):
    repo = str(tmp_path / "repo")
    # create asks twice, without echo
    t = Terminal(plakar, ["on", repo, "create", "-kdf-log2-n", "10"], tty_env)
    t.read_until(b"passphrase: ")
    t.type(b"typed secret\n")
    t.read_until(b"passphrase (again): ")
    t.type(b"typed secret\n")
    assert t.wait() == 0, t.output
    assert b"typed secret" not in t.output

    # the passphrase typed is the one the repository got
    plakar.ok("ls", repo=repo, extra_env={"PLAKAR_PASSPHRASE": "typed secret"})

    # commands other than create ask once, only when needed
    t = Terminal(plakar, ["on", repo, "ls"], tty_env)
    t.read_until(b"passphrase: ")
    t.type(b"typed secret\n")
    assert t.wait() == 0, t.output
    assert b"typed secret" not in t.output

    t = Terminal(plakar, ["on", repo, "ls"], tty_env)
    t.read_until(b"passphrase: ")
    t.type(b"wrong\n")
    assert t.wait() == 1, t.output
    assert b"plakar: ls: " in t.output

    # mismatched confirmation on create: nothing created
    other = str(tmp_path / "other")
    t = Terminal(plakar, ["on", other, "create", "-kdf-log2-n", "10"], tty_env)
    t.read_until(b"passphrase: ")
    t.type(b"one\n")
    t.read_until(b"passphrase (again): ")
    t.type(b"two\n")
    assert t.wait() == 1, t.output
    assert b"do not match" in t.output
    assert not os.path.exists(other)


def test_plaintext_never_prompts_on_terminal(plakar, tty_env, tmp_path):
    repo = str(tmp_path / "plain")
    plakar.ok("create", "-no-encryption", repo=repo)
    t = Terminal(plakar, ["on", repo, "ls"], tty_env)
    assert t.wait() == 0, t.output
    assert b"passphrase" not in t.output
