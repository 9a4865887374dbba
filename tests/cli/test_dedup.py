"""Deduplication: unchanged data is stored once, a small change costs only its chunks."""
import os

from cliutil import repo_size, snap_path, write_random

KiB = 1024
MiB = 1024 * KiB


def test_same_tree_twice(repo, tmp_path):
    src = tmp_path / "src"
    dirs = [src, src / "a", src / "a" / "b", src / "c"]
    for d in dirs:
        d.mkdir()
    for i, d in enumerate(dirs):
        for k in range(5):
            (d / ("file%d" % k)).write_bytes(b"%d-%d " % (i, k) * (100 * (k + 1)))
    write_random(src / "c" / "random.bin", 3 * MiB, seed=7)

    repo.push(src)
    before = repo_size(repo.repo)
    repo.push(src)
    grown = repo_size(repo.repo) - before
    # The second snapshot adds its header, an index segment and metadata at most: a handful
    # of small files, plus a 4 KiB entry for any new fan-out directory. 64 KiB covers that;
    # 4 KiB per directory (the tree's and its ancestors') allows directory records to be
    # written again. Any file content stored twice (3 MiB here) would blow the bound.
    ndirs = len(dirs) + len(str(src).split("/"))
    bound = 64 * KiB + 4 * KiB * ndirs
    assert grown < bound, "second push of the same tree grew the repository by %d bytes (bound %d)" % (
        grown, bound)


def test_one_byte_change(repo, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    path = src / "big.bin"
    data = bytearray(write_random(path, 30 * MiB, seed=11))
    first = repo.push(src)
    before = repo_size(repo.repo)

    middle = len(data) // 2
    data[middle] ^= 0x5A
    path.write_bytes(data)
    second = repo.push(src)
    grown = repo_size(repo.repo) - before
    # Chunks average 1 MiB and never exceed 8 MiB; the change touches one chunk (two if the
    # boundary after it moves), so well under 12 MB is stored, not the 30 MiB file again.
    assert grown < 12 * 1000 * 1000, "a 1-byte change grew the repository by %d bytes" % grown

    # Both versions read back exactly.
    assert repo.ok("cat", snap_path(second, path)).stdout == bytes(data)
    data[middle] ^= 0x5A
    assert repo.ok("cat", snap_path(first, path)).stdout == bytes(data)
    assert os.path.getsize(path) == 30 * MiB
