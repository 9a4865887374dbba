"""Command-line syntax: usage errors exit 2 with one line, the accepted forms work."""
import os

import pytest

from cliutil import create_repo


@pytest.mark.parametrize("args", [
    [],
    ["frobnicate"],
    ["-frob", "ls"],
    ["-no-cache=maybe", "ls"],
    ["-json", "ls"],
    ["-cpu", "x", "ls"],
    ["-cpu", "0", "ls"],
    ["-cpu", "-2", "ls"],
    ["-cpu", "2.5", "ls"],
    ["-cpu"],
    ["-passphrase-file"],
    ["on"],
    ["at"],
    ["ls", "-frob"],
    ["ls", "-jsonl"],
    ["create", "-bogus"],
    ["create", "-kdf-log2-n", "x"],
    ["create", "-kdf-log2-n"],
    ["create", "extra"],
    ["push"],
    ["push", "-x", "path"],
    ["push", "-exclude", "", "path"],
    ["push", "-exclude"],
    ["push", "-parent", "", "path"],
    ["push", "-parent", "abc", "-no-parent", "path"],
    ["cat"],
    ["cat", "abcdef"],
    ["cat", ":/etc/passwd"],
    ["pull"],
    ["pull", "-to"],
    ["pull", "-to", "/tmp"],
    ["pull", "-rebase=maybe", "abcdef"],
    ["version", "extra"],
])
def test_usage_errors(plakar, tmp_path, args):
    repo = create_repo(plakar, tmp_path / "repo")
    before = sorted(os.walk(repo.repo))
    # `on REPO` goes first when the arguments have no global part of their own
    global_part = bool(args) and (args[0].startswith("-") or args[0] in ("on", "at"))
    r = repo.run(*args, repo=None if global_part else repo.repo)
    assert r.returncode == 2, r
    lines = r.stderr_lines()
    assert len(lines) == 1 and lines[0].startswith("plakar: "), r
    assert "usage: " in lines[0], r
    assert r.stdout == b""
    assert sorted(os.walk(repo.repo)) == before


def test_help(plakar):
    r = plakar.ok("-h", repo=None)
    assert r.out.startswith("usage: plakar ")


def test_accepted_forms(plakar, tmp_path):
    # `at` is a synonym of `on`; -cpu N in both spellings; relative paths for the repository
    # and for what is pushed.
    repo = create_repo(plakar, tmp_path / "repo")
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"forms\n")
    snap = plakar.ok("-cpu", "1", "at", "repo", "push", "src", repo=None, cwd=tmp_path).out.strip()
    lines = plakar.ok("-cpu=2", "on", "repo", "ls", repo=None, cwd=tmp_path).out.splitlines()
    assert len(lines) == 1 and lines[0].endswith(" " + str(src))
    assert repo.ok("cat", "%s:%s" % (snap, src / "f"), global_args=["--cpu", "1"]).stdout == b"forms\n"
    # a path inside the snapshot is taken from its root
    assert repo.ok("cat", "%s:%s" % (snap, str(src / "f").lstrip("/"))).stdout == b"forms\n"
    # "--" ends the flags
    dash = tmp_path / "-dash"
    dash.mkdir()
    snap2 = repo.ok("push", "--", "-dash", cwd=tmp_path).out.strip()
    assert repo.ok("ls", "%s:%s" % (snap2, dash)).out == ""


def test_default_repository(plakar, tmp_path):
    # ~/.plakar (HOME is a temporary directory here)
    plakar.ok("create", "-kdf-log2-n", "10", repo=None)
    assert os.path.isdir(os.path.join(plakar.env["HOME"], ".plakar"))
    src = tmp_path / "src"
    src.mkdir()
    snap = plakar.ok("push", src, repo=None).out.strip()
    assert snap in plakar.ok("ls", repo=None).out
    # $PLAKAR_REPOSITORY, relative to the current directory
    env = {"PLAKAR_REPOSITORY": "elsewhere"}
    plakar.ok("create", "-kdf-log2-n", "10", repo=None, extra_env=env, cwd=tmp_path)
    assert os.path.isdir(tmp_path / "elsewhere")
    assert plakar.ok("ls", repo=None, extra_env=env, cwd=tmp_path).out == ""
    # `on` wins over the environment
    assert snap in plakar.ok("ls", repo=os.path.join(plakar.env["HOME"], ".plakar"), extra_env=env).out
