"""Other stores and store failures through the command line: the SQLite store (the exact
sequence of the docs, concurrent pushes, bad databases, a read-only file), the local cache
(-no-cache), and a full disk during push."""
import os
import sqlite3
import subprocess
import threading

import pytest

from cliutil import IS_ROOT, compare_trees, to_bytes, write_random

DROP_DAC = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]


def small_tree(root, seed=0):
    os.makedirs(os.path.join(root, "d"), exist_ok=True)
    with open(os.path.join(root, "d", "a.txt"), "wb") as f:
        f.write(b"alpha %d\n" % seed)
    write_random(os.path.join(root, "b.bin"), 300_000, seed=seed)
    return root


def test_sqlite_sequence_as_documented(plakar, tmp_path):
    # plakar on sqlite:///tmp/plakar.db create -no-encryption ; push /bin ; ls
    uri = "sqlite://%s/plakar.db" % tmp_path
    plakar.ok("create", "-no-encryption", repo=uri, unset=["PLAKAR_PASSPHRASE"])
    snap = plakar.push("/bin", repo=uri, unset=["PLAKAR_PASSPHRASE"])
    out = plakar.ok("ls", repo=uri, unset=["PLAKAR_PASSPHRASE"]).out
    assert snap in out and out.rstrip().endswith(" /bin")
    # and a real tree round-trips through it
    src = small_tree(str(tmp_path / "src"))
    snap2 = plakar.push(src, repo=uri, unset=["PLAKAR_PASSPHRASE"])
    dest = tmp_path / "out"
    plakar.ok("pull", "-to", dest, snap2, repo=uri, unset=["PLAKAR_PASSPHRASE"])
    compare_trees(to_bytes(src), to_bytes(dest) + to_bytes(src))
    assert not (tmp_path / "repo").exists()


def test_push_of_a_tree_holding_its_sqlite_repository_leaves_the_database_out(plakar, tmp_path):
    """A push never backs up its own store: the database and the files SQLite keeps beside it
    are left out of a tree that holds them, the rest is there."""
    home = tmp_path / "home"
    small_tree(str(home))
    uri = "sqlite://%s/plakar.db" % home
    plakar.ok("create", "-no-encryption", repo=uri, unset=["PLAKAR_PASSPHRASE"])
    snap = plakar.push(home, repo=uri, unset=["PLAKAR_PASSPHRASE"])
    names = [line.split()[-1] for line in
             plakar.ok("ls", "-R", "%s:%s" % (snap, home), repo=uri, unset=["PLAKAR_PASSPHRASE"]).out.splitlines()]
    assert "%s/d/a.txt" % home in names and "%s/b.bin" % home in names
    assert not [n for n in names if "plakar.db" in n], names
    assert (home / "plakar.db").exists()


def test_sqlite_concurrent_pushes_all_land(plakar, tmp_path):
    uri = "sqlite://%s/plakar.db" % tmp_path
    plakar.ok("create", "-kdf-log2-n", "10", repo=uri)
    srcs = [small_tree(str(tmp_path / ("src%d" % i)), seed=i) for i in range(4)]
    results = [None] * len(srcs)

    def run(i):
        results[i] = plakar.run("push", srcs[i], repo=uri)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(srcs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        assert r.returncode == 0, r
    lines = plakar.snapshot_lines(repo=uri)
    assert sorted(m.group("paths") for m in lines) == sorted(srcs)
    for m in lines:
        src = m.group("paths")
        dest = tmp_path / ("out-" + m.group("id"))
        plakar.ok("pull", "-to", dest, m.group("id"), repo=uri)
        compare_trees(to_bytes(src), to_bytes(dest) + to_bytes(src))


def test_sqlite_bad_databases(plakar, tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(os.urandom(10000))
    before = junk.read_bytes()
    r = plakar.fails("ls", repo="sqlite://%s" % junk)
    assert "junk.db" in r.stderr
    plakar.fails("create", "-kdf-log2-n", "10", repo="sqlite://%s" % junk)
    assert junk.read_bytes() == before

    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE t (x)")
    con.execute("INSERT INTO t VALUES (42)")
    con.commit()
    con.close()
    r = plakar.fails("ls", repo="sqlite://%s" % other)
    assert "another program" in r.stderr
    r = plakar.fails("create", "-kdf-log2-n", "10", repo="sqlite://%s" % other)
    assert "another program" in r.stderr
    con = sqlite3.connect(other)
    assert con.execute("SELECT x FROM t").fetchall() == [(42,)]
    con.close()

    plakar.fails("ls", repo="sqlite://%s" % (tmp_path / "missing.db"))
    plakar.fails("ls", repo="sqlite://relative.db", code=1)


def test_sqlite_read_only_file(plakar, tmp_path):
    uri = "sqlite://%s/plakar.db" % tmp_path
    plakar.ok("create", "-kdf-log2-n", "10", repo=uri)
    src = small_tree(str(tmp_path / "src"))
    snap = plakar.push(src, repo=uri)
    os.chmod(tmp_path / "plakar.db", 0o444)
    pre = DROP_DAC if IS_ROOT else []
    # Reading works; writing fails with one clear line, and the repository is intact.
    out = plakar.run("ls", repo=uri, preexec=pre)
    assert out.returncode == 0 and snap in out.out, out
    r = plakar.run("push", src, repo=uri, preexec=pre)
    assert r.returncode == 1, r
    assert len(r.stderr_lines()) == 1 and "readonly" in r.stderr.replace("-", "").replace(" ", ""), r
    os.chmod(tmp_path / "plakar.db", 0o644)
    assert plakar.snapshot_ids(repo=uri) == [snap]
    plakar.push(src, repo=uri)


def test_no_cache_bypasses_the_cache(plakar, repo, tmp_path, env):
    src = small_tree(str(tmp_path / "src"))
    cache = os.path.join(env["XDG_CACHE_HOME"], "plakar")
    repo.push(src, global_args=["-no-cache"])
    repo.push(src, global_args=["-no-cache"])
    assert not os.path.exists(cache)
    repo.push(src)
    assert os.path.isdir(cache)
    (entry,) = os.listdir(cache)
    assert os.path.exists(os.path.join(cache, entry, "cache.db"))
    # A destroyed cache loses nothing.
    for name in os.listdir(os.path.join(cache, entry)):
        with open(os.path.join(cache, entry, name), "wb") as f:
            f.write(b"garbage" * 100)
    snap = repo.push(src)
    dest = tmp_path / "out"
    repo.ok("pull", "-to", dest, snap)
    compare_trees(to_bytes(src), to_bytes(dest) + to_bytes(src))


@pytest.mark.skipif(not IS_ROOT, reason="mounting a small tmpfs needs root")
def test_full_disk_during_push(plakar, tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")  # pragma: no cover
    try:
        repo = plakar.with_repo(mnt / "repo")
        plakar.ok("create", "-kdf-log2-n", "10", repo=mnt / "repo")
        small = small_tree(str(tmp_path / "small-src"))
        snap = repo.push(small)
        big = tmp_path / "big-src"
        big.mkdir()
        write_random(str(big / "big.bin"), 8 * 1024 * 1024, seed=3)
        r = repo.run("push", big)
        assert r.returncode == 1, r
        assert len(r.stderr_lines()) == 1 and "No space left on device" in r.stderr, r
        # Nothing half-written stays behind; the repository still works and takes new pushes.
        assert os.listdir(mnt / "repo" / "tmp") == []
        assert repo.snapshot_ids() == [snap]
        os.unlink(big / "big.bin")
        (big / "f").write_bytes(b"fits\n")
        snap2 = repo.push(big)
        assert repo.ok("cat", "%s:%s/f" % (snap2, big)).stdout == b"fits\n"
        dest = tmp_path / "out"
        repo.ok("pull", "-to", dest, snap)
        compare_trees(to_bytes(small), to_bytes(dest) + to_bytes(small))
    finally:
        subprocess.run(["umount", "-l", str(mnt)])
