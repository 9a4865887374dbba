"""Repositories created with -no-encryption: no passphrase ever, still authenticated."""
import os

from cliutil import compare_trees, flip_byte, largest_pack, snap_path, to_bytes, write_random


def test_plaintext_roundtrip(plakar, tmp_path):
    repo_path = tmp_path / "plain"
    # No PLAKAR_PASSPHRASE and no terminal: a prompt would fail the command.
    r = plakar.run("create", "-no-encryption", repo=repo_path, unset=["PLAKAR_PASSPHRASE"])
    assert r.returncode == 0 and r.stderr == "", r
    repo = plakar.with_repo(repo_path)
    nopass = {"unset": ["PLAKAR_PASSPHRASE"]}

    src = tmp_path / "src"
    (src / "dir").mkdir(parents=True)
    (src / "dir" / "a.txt").write_bytes(b"plain a\n")
    data = write_random(src / "random.bin", 2 * 1024 * 1024 + 3, seed=9)
    os.symlink("dir/a.txt", src / "link")
    os.chmod(src / "dir", 0o750)

    snap = repo.push(src, **nopass)
    assert repo.snapshot_ids(**nopass) == [snap]
    assert repo.ok("cat", snap_path(snap, src / "random.bin"), **nopass).stdout == data
    dest = tmp_path / "dest"
    repo.ok("pull", "-to", dest, snap, **nopass)
    compare_trees(to_bytes(src), to_bytes(dest) + to_bytes(src))

    # A passphrase in the environment is refused: a client that was given one never stores
    # plaintext (a replaced CONFIG must not downgrade it), and nothing is written.
    r = repo.fails("push", src)
    assert "not encrypted but a passphrase was given" in r.stderr, r
    assert repo.snapshot_ids(**nopass) == [snap]

    # A flipped byte is still detected: cat fails naming the corruption, pull never writes it.
    flip_byte(largest_pack(repo_path))
    r = repo.run("cat", snap_path(snap, src / "random.bin"), **nopass)
    assert r.returncode == 1, r
    assert "corrupt" in r.stderr.lower(), r
    assert len(r.stdout) < len(data) and data.startswith(r.stdout)
    dest2 = tmp_path / "dest2"
    r = repo.run("pull", "-to", dest2, snap, **nopass)
    assert r.returncode == 1, r
    assert "corrupt" in r.stderr.lower(), r
    restored = dest2 / str(src).lstrip("/") / "random.bin"
    assert not restored.exists() or restored.read_bytes() == data
    assert (dest2 / str(src).lstrip("/") / "dir" / "a.txt").read_bytes() == b"plain a\n"
