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


def test_encryption_downgrade_is_refused(repo, tmp_path):
    """Whoever can write the store replaces CONFIG with a valid plaintext one of the same id:
    a client with a passphrase refuses it, and so does one that opened the repository
    encrypted before (its cache remembers), even with -no-cache; nothing is stored."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "secret").write_text("not for the store's eyes\n")
    repo.push(src)  # opened encrypted: remembered
    forge(repo, "-", "plaintext-config", "-")
    packs_before = sorted(os.listdir(os.path.join(repo.repo, "packs")))
    r = repo.fails("push", src)
    assert "not encrypted but a passphrase was given" in r.stderr, r
    for flags in ((), ("-no-cache",)):
        r = repo.fails("push", src, unset=("PLAKAR_PASSPHRASE",), global_args=flags)
        assert "was encrypted when this client last opened it" in r.stderr, r
    assert sorted(os.listdir(os.path.join(repo.repo, "packs"))) == packs_before


def test_pack_trailer_that_wraps_is_refused(repo, tmp_path):
    """A trailer whose offset + length wraps around 2^64 to the right sum: check -read-data and
    reads report the pack, never read out of bounds (this crashed before)."""
    import struct
    from cliutil import largest_pack, write_random
    src = tmp_path / "src"
    src.mkdir()
    write_random(src / "big", 3 << 20, seed=5)
    snap = repo.push(src)
    pack = largest_pack(repo.repo)
    size = os.path.getsize(pack)
    toc_len = 0xFFFFFFFF
    toc_offset = (size - 16 - toc_len) % (1 << 64)
    with open(pack, "r+b") as f:
        f.seek(size - 16)
        magic = f.read(16)[12:]
        f.seek(size - 16)
        f.write(struct.pack("<QI", toc_offset, toc_len) + magic)
    r = repo.run("check", "-read-data", global_args=("-no-cache",))
    assert r.returncode == 1, r
    assert "malformed trailer" in r.stderr, r
    r = repo.run("repair", "-read-data", "-yes", global_args=("-no-cache",))
    assert r.returncode >= 0, r  # no crash, whatever it decides


def test_store_objects_are_bounded_and_regular(repo, tmp_path):
    """CONFIG as a FIFO fails at once (never waits for a writer); a sparse 3 GiB CONFIG or
    index segment is refused by its size, not read."""
    config = os.path.join(repo.repo, "CONFIG")
    saved = open(config, "rb").read()
    os.unlink(config)
    os.mkfifo(config)
    r = repo.run("ls", timeout=20)
    assert r.returncode == 1 and "not a regular file" in r.stderr, r
    os.unlink(config)
    with open(config, "wb") as f:
        f.write(saved)
        f.truncate(3 << 30)
    r = repo.run("ls", timeout=20)
    assert r.returncode == 1 and "more than such an object can hold" in r.stderr, r
    with open(config, "wb") as f:
        f.write(saved)
    repo.push(tmp_path)  # an index segment now exists
    index = os.path.join(repo.repo, "index")
    seg = os.path.join(index, sorted(os.listdir(index))[0])
    with open(seg, "r+b") as f:
        f.truncate(3 << 30)
    r = repo.run("check", global_args=("-no-cache",), timeout=60)
    assert r.returncode != 0 and "more than such an object can hold" in r.stderr, r


def test_key_files_forged_or_costly(repo, tmp_path):
    """A malformed key file beside the real one is skipped; scrypt parameters beyond what
    create accepts are refused without running the derivation."""
    import struct
    keys = os.path.join(repo.repo, "keys")
    real = os.path.join(keys, os.listdir(keys)[0])
    for name in ("0000000000000000", "ffffffffffffffff"):
        with open(os.path.join(keys, name), "wb") as f:
            f.write(b"garbage, not a key file")
    repo.ok("ls")
    for name in ("0000000000000000", "ffffffffffffffff"):
        os.unlink(os.path.join(keys, name))
    data = bytearray(open(real, "rb").read())
    data[7:11] = struct.pack("<I", 32)  # r = 32: 4x the memory create ever asks
    with open(real, "wb") as f:
        f.write(data)
    r = repo.fails("ls", global_args=("-no-cache",), timeout=20)
    assert "out-of-range scrypt parameters" in r.stderr, r


def test_private_files_are_0600(plakar, repo, tmp_path, env):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    repo.push(src)
    cache_root = os.path.join(env["XDG_CACHE_HOME"], "plakar")
    dbs = [os.path.join(d, f) for d, _, fs in os.walk(cache_root) for f in fs if f.startswith("cache.db")]
    assert dbs
    for p in dbs:
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o600, p
    uri = "sqlite://%s/plain.db" % tmp_path
    plakar.ok("create", "-no-encryption", repo=uri, unset=["PLAKAR_PASSPHRASE"])
    plakar.push(src, repo=uri, unset=["PLAKAR_PASSPHRASE"])
    for f in os.listdir(tmp_path):
        if f.startswith("plain.db"):
            assert stat.S_IMODE(os.stat(tmp_path / f).st_mode) == 0o600, f


def test_token_name_twice_is_refused(plakar, tmp_path):
    tokens = tmp_path / "tokens"
    assert plakar.run("token", "-tokens", tokens, "laptop", repo=None).returncode == 0
    before = tokens.read_text()
    r = plakar.fails("token", "-tokens", tokens, "laptop", repo=None)
    assert "already has a token named 'laptop'" in r.stderr, r
    assert tokens.read_text() == before
    assert plakar.run("token", "-tokens", tokens, "laptop2", repo=None).returncode == 0


def test_tokens_added_at_once_are_all_kept(plakar, tmp_path):
    """Each add rewrites the file whole: adders running at the same time must not drop each
    other's line."""
    tokens = tmp_path / "tokens"
    procs = [subprocess.Popen([plakar.binary, "token", "-tokens", str(tokens), "host%d" % i], env=plakar.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(12)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    names = sorted(line.split()[0] for line in tokens.read_text().splitlines())
    assert names == sorted("host%d" % i for i in range(12))
    assert not [n for n in os.listdir(tmp_path) if ".tmp-" in n]


def test_substituted_content_is_never_returned(repo, tmp_path):
    """The same substitution on a local store, forged copies listed first: pull, cat and
    tarball return the genuine bytes; check -read-data names every forged copy."""
    import tarfile
    from conftest import PASSPHRASE
    src = tmp_path / "src"
    src.mkdir()
    (src / "small").write_text("genuine\n")
    big = os.urandom(3 << 20)
    (src / "big").write_bytes(big)
    snap = repo.push(src)
    forge(repo, PASSPHRASE, "substitute", "-")
    out = tmp_path / "out"
    r = repo.run("pull", "-rebase", "-to", out, snap + ":" + str(src), global_args=("-no-cache",))
    assert r.returncode == 0, r
    assert "warning" in r.stderr and "another copy was used" in r.stderr, r
    assert (out / "src" / "small").read_text() == "genuine\n"
    assert (out / "src" / "big").read_bytes() == big
    r = repo.run("cat", snap + ":" + str(src / "big"), global_args=("-no-cache",))
    assert r.returncode == 0 and r.stdout == big, r.stderr
    r = repo.run("tarball", "-o", tmp_path / "t.tar", snap + ":" + str(src), global_args=("-no-cache",))
    assert r.returncode == 0 and "warning" in r.stderr and "another copy was used" in r.stderr, r
    with tarfile.open(tmp_path / "t.tar") as t:
        assert t.extractfile("src/small").read() == b"genuine\n"
        assert t.extractfile("src/big").read() == big
    r = repo.run("check", "-read-data", global_args=("-no-cache",))
    assert r.returncode == 1 and r.stderr.count("does not match its id") >= 2, r


def test_garbage_snapshot_header_stops_nobody(repo, tmp_path):
    """28 garbage bytes as a snapshot header (any writer of the store, an append token
    included, can put one): ls lists the others and names it (exit 3), push and pull go on,
    gc refuses to delete anything and names it, rm removes it."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x\n")
    snap = repo.push(src)
    bad = "11111111-2222-4333-8444-555555555555"
    with open(os.path.join(repo.repo, "snapshots", bad), "wb") as f:
        f.write(os.urandom(28))
    r = repo.run("ls")
    assert r.returncode == 3, r
    assert snap in r.out and len(r.out.splitlines()) == 1, r
    assert len(r.stderr_lines()) == 1 and bad in r.stderr and "plakar rm" in r.stderr, r
    (src / "g").write_text("y\n")
    snap2 = repo.push(src)
    repo.ok("pull", "-to", tmp_path / "out", snap2)
    r = repo.fails("gc")
    assert bad in r.stderr and "nothing deleted" in r.stderr, r
    r = repo.run("rm", bad[:8])
    assert r.returncode == 0, r
    assert len(repo.snapshot_ids()) == 2


def test_crafted_small_pack_stops_no_push(repo, tmp_path):
    """A 120-byte pack: a real pack's header, then a trailer whose offset and length wrap to
    the right sum. Pushes, with and without the cache, go on (this made every push fail,
    after allocating 4 GB); check names the pack."""
    import struct
    from cliutil import largest_pack
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x\n")
    repo.push(src)
    real = open(largest_pack(repo.repo), "rb").read()
    size, toc_len = 120, 0xFFFFFFFF
    crafted = real[:40] + b"\0" * (size - 40 - 16) + struct.pack("<QI", (size - 16 - toc_len) % (1 << 64), toc_len)
    crafted += real[-4:]
    os.makedirs(os.path.join(repo.repo, "packs", "cd"), exist_ok=True)
    with open(os.path.join(repo.repo, "packs", "cd", "cd" * 32), "wb") as f:
        f.write(crafted)
    (src / "g").write_text("y\n")
    repo.push(src)
    (src / "h").write_text("z\n")
    repo.push(src, global_args=("-no-cache",))
    r = repo.run("check")
    assert r.returncode == 1 and "cd" * 32 in r.stderr, r
