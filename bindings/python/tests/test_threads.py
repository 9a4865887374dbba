"""The GIL is released during blocking calls; handles are usable from several threads."""

import os
import threading
import time

import pytest

import plakar
from conftest import SAMPLE, gil_released_during


@pytest.fixture
def big_file(tmp_path):
    p = tmp_path / "big.bin"
    p.write_bytes(os.urandom(30 << 20))
    return p


def test_gil_released_during_push(repo, big_file):
    assert gil_released_during(lambda: repo.push(big_file)), "no other thread ran during the push"


def test_gil_released_during_cat(repo, big_file):
    snap = repo.push(big_file)
    assert gil_released_during(lambda: snap.cat(big_file)), "no other thread ran during the cat"


def test_parallel_reads(repo, tree):
    snap = repo.push(tree)
    errors = []

    def reader(rel):
        try:
            for _ in range(20):
                assert snap.cat(tree / rel) == SAMPLE[rel]
                assert [e.name for e in repo.ls(snap, tree / "src")] == ["deep", "main.c"]
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=reader, args=(rel,))
               for rel in ("README", "docs/guide.txt", "src/deep/data.bin", "src/main.c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_close_while_another_thread_pushes(repo, tree):
    started = threading.Event()
    result = []

    def progress(event):
        started.set()
        time.sleep(0.001)

    def push():
        try:
            result.append(repo.push(tree, progress=progress))
        except BaseException as e:  # noqa: BLE001 - checked below
            result.append(e)

    t = threading.Thread(target=push)
    t.start()
    assert started.wait(30)
    repo.close()  # the running push keeps the handle until it returns
    t.join()
    [snap] = result
    assert isinstance(snap, plakar.Snapshot)
    assert snap.cat(tree / "README") == SAMPLE["README"]


def test_cpu_budgets_push_and_pull_the_same_content(tmp_path, tree):
    """cpu=1 and cpu=2 (and a budget above the cores, clamped) store and restore the same tree."""
    listings = []
    for cpu in (1, 2, 512):
        uri = tmp_path / ("repo-%d" % cpu)
        plakar.create(uri, "pw", kdf_log2_n=10).close()
        with plakar.open(uri, "pw", cpu=cpu) as repo:
            snap = repo.push(tree)
            out = tmp_path / ("out-%d" % cpu)
            snap.pull(to=out)
            listings.append(sorted((str(p.relative_to(out)), p.read_bytes() if p.is_file() and not p.is_symlink()
                                    else None) for p in out.rglob("*")))
    assert listings[0] == listings[1] == listings[2]
    with pytest.raises(plakar.InvalidArgumentError):
        plakar.open(tmp_path / "repo-1", "pw", cpu=-1)
