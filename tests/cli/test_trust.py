"""A hostile repository must never make the command write outside its target.

The snapshots here are forged by plakar_forge (tests/tools), as an attacker who holds the key
could write them: duplicate names in a directory (a directory "d", then a symlink "d" to a
directory outside the target, in both orders, with small files restored in batches and with
large files restored alone), the same across two nodes, names out of order. Every command that
reads them refuses them, names the node, and leaves the outside directory exactly as it was.
"""
import hashlib
import os
import stat
import subprocess

import pytest

from cliutil import IS_ROOT, create_repo, reachable_copy

SCENARIOS = ["dup-dir-first", "dup-link-first", "dup-dir-first-large", "dup-link-first-large", "split-dup",
             "unsorted"]


def forge(repo, passphrase, scenario, outside):
    tool = os.environ["PLAKAR_FORGE"]
    r = subprocess.run([tool, str(repo.repo), passphrase, scenario, str(outside)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, check=True)
    return r.stdout.decode().strip()


def tree_hash(top):
    """Names, types, modes, link targets and contents of everything under top."""
    h = hashlib.sha256()
    for dirpath, dirs, files in os.walk(top):
        dirs.sort()
        for name in sorted(dirs + files):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            h.update(("%s %o\n" % (os.path.relpath(p, top), st.st_mode)).encode())
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(p).encode())
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    h.update(f.read())
    st = os.lstat(top)
    h.update(("%o" % st.st_mode).encode())
    return h.hexdigest()


@pytest.fixture
def outside(tmp_path):
    d = tmp_path / "outside"
    d.mkdir()
    (d / "existing").write_text("the outside file\n")
    os.chmod(d, 0o755)
    return d


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_forged_snapshot_is_refused_everywhere(repo, tmp_path, outside, scenario):
    from conftest import PASSPHRASE
    snap = forge(repo, PASSPHRASE, scenario, outside)
    before = tree_hash(outside)
    target = tmp_path / "target"
    r = repo.fails("pull", "-to", target, snap)
    assert "unsorted or duplicate names" in r.stderr, r
    r = repo.fails("pull", "-to", target, snap + ":/d")
    r = repo.fails("tarball", "-o", tmp_path / "out.tar", snap)
    assert "unsorted or duplicate names" in r.stderr, r
    r = repo.run("check", snap)
    assert r.returncode == 1, r
    assert "directory node" in r.stderr and "unsorted or duplicate names" in r.stderr, r
    assert tree_hash(outside) == before
    assert not (outside / "newfile").exists()
    # the rest of the repository is unaffected
    assert repo.ok("ls").out.count("\n") == 1


def test_forged_snapshot_plaintext(plakar, tmp_path, outside):
    repo = create_repo(plakar, tmp_path / "plain", "-no-encryption")
    snap = forge(repo, "", "dup-dir-first", outside)
    before = tree_hash(outside)
    repo.fails("pull", "-to", tmp_path / "target", snap)
    assert tree_hash(outside) == before


def test_planted_symlink_in_target_is_replaced_not_followed(repo, tmp_path, outside):
    """The target already holds d -> outside where the snapshot has a directory d: the link is
    replaced by the directory, and nothing is written through it."""
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "existing").write_text("from the snapshot\n")
    (src / "d" / "newfile").write_text("new\n")
    os.chmod(src / "d", 0o777)
    snap = repo.push(src)
    before = tree_hash(outside)
    target = tmp_path / "target"
    target.mkdir()
    os.symlink(outside, target / "d")
    repo.ok("pull", "-rebase", "-to", target, snap + ":" + str(src))
    assert tree_hash(outside) == before
    assert (target / "src").is_dir()
    # and the same one level up: the selected directory's own name is a planted link
    target2 = tmp_path / "target2"
    target2.mkdir()
    os.symlink(outside, target2 / "d")
    repo.ok("pull", "-rebase", "-to", target2, snap + ":" + str(src / "d"))
    assert not (target2 / "d").is_symlink()
    assert (target2 / "d" / "existing").read_text() == "from the snapshot\n"
    assert tree_hash(outside) == before


def test_planted_symlink_ancestor_is_refused(repo, tmp_path, outside):
    """Without -rebase the snapshot's path is recreated under the target: an ancestor that is
    a link in the target is refused, not followed."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x\n")
    snap = repo.push(src)
    target = tmp_path / "target"
    target.mkdir()
    first = str(src).strip("/").split("/")[0]
    os.symlink(outside, target / first)
    before = tree_hash(outside)
    r = repo.fails("pull", "-to", target, snap + ":" + str(src / "f"))
    assert "not a directory" in r.stderr, r
    assert tree_hash(outside) == before


def test_planted_symlink_where_file_goes(repo, tmp_path, outside):
    """A file restored where the target has a symlink replaces the link; the link's target
    is untouched."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "existing").write_text("from the snapshot\n")
    snap = repo.push(src)
    target = tmp_path / "target"
    target.mkdir()
    os.symlink(outside / "existing", target / "existing")
    before = tree_hash(outside)
    repo.ok("pull", "-rebase", "-to", target, snap + ":" + str(src / "existing"))
    assert not (target / "existing").is_symlink()
    assert (target / "existing").read_text() == "from the snapshot\n"
    assert tree_hash(outside) == before


@pytest.mark.skipif(not IS_ROOT, reason="needs root to run a restore as nobody")
def test_unwritable_target_fails_once(repo, tmp_path):
    """A user who cannot write the target gets one error line and exit 1, nothing restored."""
    import shutil
    import tempfile
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for i in range(20):
        (src / "sub" / ("f%d" % i)).write_text("x")
    snap = repo.push(src)
    top = tempfile.mkdtemp(prefix="plakar-trust-", dir="/tmp")
    try:
        os.chmod(top, 0o755)
        shutil.copytree(repo.repo, os.path.join(top, "repo"))
        for dirpath, dirs, files in os.walk(top):
            for n in dirs:
                os.chmod(os.path.join(dirpath, n), 0o755)
            for n in files:
                os.chmod(os.path.join(dirpath, n), 0o644)
        target = os.path.join(top, "target")
        os.mkdir(target, 0o755)  # root's, not writable by nobody
        other = reachable_copy(repo.with_repo(os.path.join(top, "repo")), top)
        env = dict(other.env)
        env["HOME"] = env["XDG_CACHE_HOME"] = "/nonexistent"
        r = other.run("pull", "-rebase", "-to", target, snap + ":" + str(src), env=env,
                      global_args=("-no-cache",), preexec=("runuser", "-u", "nobody", "--"))
        assert r.returncode == 1, r
        assert len(r.stderr_lines()) == 1, r
        assert "Permission denied" in r.stderr, r
        assert os.listdir(target) == []
    finally:
        shutil.rmtree(top)
