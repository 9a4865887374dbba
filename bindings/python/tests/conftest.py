"""Fixtures shared by the Python binding tests: real repositories in tmp_path."""

import os
import pathlib
import sys
import threading
import time

import pytest

import plakar

PASSPHRASE = "correct horse battery staple"
# A cheap scrypt cost: tests create many repositories.
KDF = 10


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """Keep the user's ~/.plakar, caches and environment out of every test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.delenv("PLAKAR_REPOSITORY", raising=False)
    monkeypatch.delenv("PLAKAR_PASSPHRASE", raising=False)


@pytest.fixture
def repo_path(tmp_path):
    return tmp_path / "repo"


@pytest.fixture
def repo(repo_path):
    r = plakar.create(repo_path, PASSPHRASE, kdf_log2_n=KDF)
    yield r
    r.close()


# The sample tree: relative path -> content (directories end with "/").
SAMPLE = {
    "README": b"plakar test tree\n",
    "docs/": None,
    "docs/guide.txt": b"chapter one\n" * 100,
    "docs/empty": b"",
    "src/": None,
    "src/main.c": b"int main(void) { return 0; }\n",
    "src/deep/": None,
    "src/deep/data.bin": bytes(range(256)) * 64,
}


@pytest.fixture
def tree(tmp_path):
    """A small tree with files, directories, a symlink and set modes/mtimes."""
    root = tmp_path / "src"
    root.mkdir()
    for rel, content in SAMPLE.items():
        p = root / rel
        if content is None:
            p.mkdir(parents=True, exist_ok=True)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(content)
    os.chmod(root / "src/main.c", 0o640)
    os.chmod(root / "docs/guide.txt", 0o600)
    os.symlink("docs/guide.txt", root / "link")
    # Distinct, sub-second mtimes, set last (bottom-up) so that nothing touches them again.
    base = 1_600_000_000_123_456_789
    paths = sorted((p for p in root.rglob("*") if not p.is_symlink()), key=lambda p: -len(p.parts))
    for i, p in enumerate(paths):
        os.utime(p, ns=(base + i * 1_000_001, base + i * 1_000_001))
    return root


def snapshot_path(root: pathlib.Path, rel: str = "") -> str:
    """The path of a pushed item inside a snapshot: pushed paths keep their absolute location."""
    return str(root / rel) if rel else str(root)


def gil_released_during(call):
    """True when call() let another Python thread run while it was inside the library.

    Deterministic, no clock: Python's forced thread switch is put off (a switch interval of
    100 s), so a watcher thread can take the GIL only when the calling thread gives it up. The
    watcher records whether it ever ran while the call was in progress; the caller's own Python
    code between setting the flag and entering the library never blocks, so only a GIL released
    by the library call lets it run then."""
    state = {"active": False, "ran": False}
    ready, stop = threading.Event(), threading.Event()

    def watcher():
        ready.set()
        while not stop.is_set():
            if state["active"]:
                state["ran"] = True
            time.sleep(0)  # hands the GIL back at once

    old = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    t = threading.Thread(target=watcher)
    t.start()
    try:
        ready.wait()
        state["active"] = True
        call()
        state["active"] = False
    finally:
        state["active"] = False
        stop.set()
        sys.setswitchinterval(old)
        t.join()
    return state["ran"]
