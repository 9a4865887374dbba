"""Readers, pushes, rm and gc at once, as real processes: a reader's lock keeps what it reads
(here and through a server with a read-only token), check stays clean whatever the
interleaving, concurrent pushes of the same data are freed by the first gc, and temporary
files of a killed push are removed by gc."""
import json
import os
import signal
import subprocess
import time

from cliutil import Plakar, make_tree_files, repo_size, same_content
from test_server import Server, as_token, tokens  # noqa: F401  (tokens is a fixture)


def locks_of(store):
    d = store / "locks"
    return set(os.listdir(d)) if d.exists() else set()


def start_stopped_once_locked(plakar, args, store, before, ready=lambda: True):
    """Starts `plakar args...` and stops it (SIGSTOP) once it has written a lock of its own
    and ready() holds: from then on gc must treat it as running."""
    p = subprocess.Popen([plakar.binary] + [str(a) for a in args], env=plakar.env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    end = time.time() + 30
    while time.time() < end and not (locks_of(store) - before and ready()):
        if p.poll() is not None:
            raise AssertionError("ended before it was stopped: %r" % (p.communicate(),))
        time.sleep(0.001)
    os.killpg(p.pid, signal.SIGSTOP)
    assert locks_of(store) - before, "no lock appeared"
    return p


def restoring(out):
    """True once a pull into out has created a file (it has opened its snapshot)."""
    return lambda: out.exists() and any(f.is_file() for f in out.rglob("*"))


def finish(p):
    os.killpg(p.pid, signal.SIGCONT)
    out, err = p.communicate(timeout=120)
    return p.returncode, out.decode(), err.decode()


def assert_pulled_whole(pull, src, out):
    """Lets a stopped pull go on: it ends well and restored every file of src into out."""
    rc, _, err = finish(pull)
    assert rc == 0, err
    for f in src.rglob("*"):
        if f.is_file():
            assert same_content(f, out / f.relative_to("/"))


def gc_report(plakar_repo, command, *args, cache=True):
    """rm or gc with -json: the report. cache=False while another process is stopped: it may
    hold the write lock of the shared cache database, which others wait for."""
    lines = plakar_repo.ok(command, "-json", *args, global_args=() if cache else ("-no-cache",)).out.splitlines()
    return json.loads(lines[-1])


def test_rm_and_gc_during_a_pull_leave_it_whole(repo, tmp_path):
    src = tmp_path / "src"
    make_tree_files(src, 30, 3_000_000, seed=3)
    snap = repo.push(src)
    store = tmp_path / "repo"
    out = tmp_path / "out"
    pull = start_stopped_once_locked(repo, ["on", store, "pull", "-to", out, snap], store, set(), restoring(out))
    try:
        report = gc_report(repo, "rm", snap, cache=False)
        assert report["packs_deleted"] == 0 and report["packs_pending"] >= 1, report
        assert report["readers_running"] == 1 and report["pushes_running"] == 0, report
        # Also a second gc while the pull still runs: still waiting.
        again = gc_report(repo, "gc", cache=False)
        assert again["packs_deleted"] == 0 and again["packs_pending"] >= 1, again
    finally:
        assert_pulled_whole(pull, src, out)
    # The pull has ended: the next gc frees everything.
    size = repo_size(store)
    report = gc_report(repo, "gc")
    assert report["packs_deleted"] >= 1 and report["packs_pending"] == 0, report
    assert repo_size(store) < size - 20_000_000
    assert locks_of(store) == set()
    repo.ok("check")


def test_a_pull_through_a_server_with_a_read_only_token_is_kept_whole(plakar, tmp_path, tokens):  # noqa: F811
    path, toks = tokens
    store = tmp_path / "store"
    srv = Server(plakar, store, path)
    try:
        env = dict(plakar.env)
        env["PLAKAR_TOKEN"] = toks["rw"]
        rw = Plakar(plakar.binary, env, srv.uri)
        rw.ok("create", "-kdf-log2-n", "10")
        src = tmp_path / "src"
        make_tree_files(src, 30, 3_000_000, seed=4)
        snap = rw.push(src)
        ro = as_token(rw, toks["ro"])
        out = tmp_path / "out"
        pull = start_stopped_once_locked(ro, ["on", srv.uri, "pull", "-to", out, snap], store, set(),
                                         restoring(out))
        try:
            report = gc_report(rw, "rm", snap, cache=False)
            assert report["packs_pending"] >= 1 and report["readers_running"] == 1, report
        finally:
            assert_pulled_whole(pull, src, out)
        report = gc_report(rw, "gc")
        assert report["packs_deleted"] >= 1 and report["packs_pending"] == 0, report
        assert locks_of(store) == set()
        rw.ok("check")
    finally:
        srv.stop(signal.SIGKILL)


def packs_of(store):
    return {f.name for f in (store / "packs").rglob("*") if f.is_file()}


def test_check_is_clean_after_rm_during_a_push_that_reuses_the_parent(repo, tmp_path):
    """The push loaded the index (naming the parent's packs) and reused the parent's chunks
    before gc condemned those packs; it commits. check must not call that damage, before or
    after the next gc, and every snapshot restores."""
    src = tmp_path / "src"
    make_tree_files(src, 20, 200_000, seed=5)
    parent = repo.push(src)
    store = tmp_path / "repo"
    for round in range(3):
        new = src / ("new-%d" % round)
        new.write_bytes(os.urandom(40_000_000))
        before, packs = locks_of(store), packs_of(store)
        # Stopped once it stored a pack of the new file: it has loaded the index and taken the
        # unchanged files' chunks from the parent.
        push = start_stopped_once_locked(repo, ["on", store, "push", src], store, before,
                                         lambda: len(packs_of(store) - packs) > 0)
        try:
            report = gc_report(repo, "rm", parent, cache=False)
            assert report["pushes_running"] == 1 and report["packs_pending"] >= 1, report
        finally:
            rc, out, err = finish(push)
        assert rc == 0, err
        r = repo.run("check")
        assert r.returncode == 0, r
        parent = repo.snapshot_ids()[-1]
        report = gc_report(repo, "gc")
        assert report["packs_resurrected"] >= 1, report
        repo.ok("check")
        some = next(f for f in (src / "d0").iterdir())
        assert repo.ok("cat", "%s:%s" % (parent, some)).stdout == some.read_bytes()
        new.unlink()


def test_concurrent_pushes_of_the_same_data_are_freed_by_the_first_gc(repo, tmp_path):
    src = tmp_path / "src"
    make_tree_files(src, 10, 1_000_000, seed=6)
    store = tmp_path / "repo"
    procs = [subprocess.Popen([repo.binary, "on", str(store), "push", str(src)], env=repo.env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
             for _ in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    three = repo_size(store)
    report = gc_report(repo, "gc")
    assert report["packs_pending"] == 0, report
    after = repo_size(store)
    assert after < 13_000_000, (three, report)  # one copy of 10 MB, and some metadata
    again = gc_report(repo, "gc")
    assert again["packs_deleted"] == 0 and again["packs_repacked"] == 0, again
    (check,) = [json.loads(x) for x in repo.ok("check", "-json").out.splitlines() if x.startswith("{")][-1:]
    assert check["ok"] and check["unindexed_packs"] == 0 and check["unreferenced_blobs"] == 0, check
    some = next(f for f in src.rglob("*") if f.is_file())
    for snap in repo.snapshot_ids():
        assert repo.ok("cat", "%s:%s" % (snap, some)).stdout == some.read_bytes()


def test_gc_removes_what_a_killed_push_left_in_tmp(repo, tmp_path):
    src = tmp_path / "src"
    make_tree_files(src, 20, 2_000_000, seed=7)
    store = tmp_path / "repo"
    tmp = store / "tmp"
    p = subprocess.Popen([repo.binary, "on", str(store), "push", str(src)], env=repo.env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    # Killed while a file is staged: stopped when one shows, killed if it is still there.
    end = time.time() + 60
    while time.time() < end and p.poll() is None:
        if any(tmp.iterdir()):
            os.killpg(p.pid, signal.SIGSTOP)
            time.sleep(0.01)
            if any(tmp.iterdir()):
                break
            os.killpg(p.pid, signal.SIGCONT)
        time.sleep(0.0005)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    left = list(tmp.iterdir())
    assert left, "the push was killed before it staged a file"
    # A file of a write in progress is young: gc leaves it.
    report = gc_report(repo, "gc")
    assert report["temp_files_removed"] == 0, report
    assert all(f.exists() for f in left)
    # An hour later it is a killed writer's.
    old = time.time() - 2 * 3600
    for f in left:
        os.utime(f, (old, old))
    young = tmp / "0123456789abcdef"
    young.write_bytes(b"a write in progress")
    report = gc_report(repo, "gc")
    assert report["temp_files_removed"] == len(left), report
    assert sorted(tmp.iterdir()) == [young]
    out = repo.ok("gc").out
    assert "temporary" not in out
    repo.ok("check")
    repo.push(src)
    repo.ok("check")


def test_many_small_pushes_leave_few_packs_after_gc(repo, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(39):
        (src / ("f%d" % i)).write_bytes(os.urandom(2000))
        repo.push(src)
    store = tmp_path / "repo"
    packs = lambda: [f for f in (store / "packs").rglob("*") if f.is_file()]  # noqa: E731
    assert len(packs()) >= 39
    report = gc_report(repo, "gc")
    assert report["packs_merged"] >= 39 and report["packs_pending"] == 0, report
    assert len(packs()) <= 2, report
    (src / "later").write_bytes(os.urandom(2000))
    repo.push(src)
    assert "merged" not in repo.ok("gc").out  # a few small packs stay as they are
    repo.ok("check")
    last = repo.snapshot_ids()[-1]
    assert repo.ok("cat", "%s:%s" % (last, src / "f0")).stdout == (src / "f0").read_bytes()
