"""Crash safety and concurrency with real processes.

push, rm and gc are killed with SIGKILL at every step of their write order (each atomic put
ends with a rename, each deletion is an unlink: strace injects SIGKILL at the Nth one) and at
random moments; after each kill the repository must pass `check`, every committed snapshot
must still restore, and the next push must complete. Then several pushes, rm and gc run at
once, many times over, and everything committed must verify."""
import os
import random
import shutil
import signal
import subprocess
import time

import pytest

from cliutil import Plakar, write_random

STRACE = shutil.which("strace")
KILL_SYSCALLS = "rename,renameat,renameat2,unlink,unlinkat"


def make_tree(root, seed, files=12, size=40_000):
    root.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(seed)
    for i in range(files):
        sub = root / ("d%d" % (i % 3))
        sub.mkdir(exist_ok=True)
        write_random(sub / ("f%d" % i), rnd.randint(1, size), seed=seed * 100 + i)


# LeakSanitizer cannot run under ptrace (the asan preset): leaks are checked by every other test.
UNDER_STRACE = {"ASAN_OPTIONS": (os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")}


def count_steps(repo, *args):
    """How many renames and unlinks the command makes (its write order)."""
    trace = repo.repo + ".count"
    r = repo.run(*args, preexec=(STRACE, "-f", "-qq", "-o", trace, "-e", "trace=" + KILL_SYSCALLS),
                 extra_env=UNDER_STRACE)
    assert r.returncode == 0, r
    with open(trace) as f:
        n = sum(1 for line in f if "(" in line and "resumed" not in line)
    os.remove(trace)
    return n


def killed_at(repo, step, *args):
    """Runs the command with SIGKILL injected at its step-th rename or unlink."""
    inject = "inject=%s:signal=SIGKILL:when=%d" % (KILL_SYSCALLS, step)
    return repo.run(*args, preexec=(STRACE, "-f", "-qq", "-o", "/dev/null", "-e", "trace=" + KILL_SYSCALLS,
                                    "-e", inject), extra_env=UNDER_STRACE)


def pack_bytes(path):
    total = 0
    for d, _, files in os.walk(os.path.join(path, "packs")):
        total += sum(os.path.getsize(os.path.join(d, f)) for f in files)
    return total


def assert_coherent(repo, committed):
    """check passes, and every snapshot committed so far is there and fully readable."""
    r = repo.run("check")
    assert r.returncode == 0, r
    ids = set(repo.snapshot_ids())
    assert set(committed) <= ids, (committed, ids)
    if committed:
        r = repo.run("check", *committed)
        assert r.returncode == 0, r


def fresh_copy(repo, base, where):
    """A copy of the repository at `base`, with a cache of its own."""
    shutil.rmtree(where, ignore_errors=True)
    shutil.copytree(base, where)
    env = dict(repo.env)
    env["XDG_CACHE_HOME"] = str(where) + ".cache"
    shutil.rmtree(env["XDG_CACHE_HOME"], ignore_errors=True)
    return Plakar(repo.binary, env, str(where))


def every_step(repo, tmp_path, committed, args, after):
    """Kills `args` at each step of its write order, each time on a fresh copy of the
    repository; checks it, then runs after(copy)."""
    base = repo.repo
    steps = count_steps(fresh_copy(repo, base, tmp_path / "probe"), *args)
    print("%s: %d steps" % (args[0], steps))
    for step in range(1, steps + 1):
        work = fresh_copy(repo, base, tmp_path / "work")
        r = killed_at(work, step, *args)
        assert r.returncode in (0, 137, -9) or "plakar" not in r.stderr, (step, r)
        mine = list(committed)
        if r.returncode == 0 and args[0] == "push":
            mine.append(r.out.strip())
        if args[0] == "rm" and args[-1] in mine and args[-1] not in work.snapshot_ids():
            mine.remove(args[-1])
        assert_coherent(work, mine)
        after(work, mine)
    return steps


@pytest.mark.skipif(STRACE is None, reason="needs strace")
def test_push_killed_at_every_step(repo, tmp_path):
    src = tmp_path / "src"
    make_tree(src, 1)
    committed = [repo.push(src)]
    make_tree(src, 2)  # new content: the next push writes packs, a segment, a header
    # What an uninterrupted push stores, to compare with a killed push followed by another.
    ref = fresh_copy(repo, repo.repo, tmp_path / "ref")
    ref.push(src)
    ref_bytes = pack_bytes(ref.repo)

    def then_push(work, mine):
        # The next push completes and reuses what the killed one stored: together they store
        # no more than one uninterrupted push.
        mine.append(work.push(src))
        assert_coherent(work, mine)
        assert pack_bytes(work.repo) <= ref_bytes + 4096, (pack_bytes(work.repo), ref_bytes)

    assert every_step(repo, tmp_path, committed, ["push", str(src)], then_push) >= 5


@pytest.mark.skipif(STRACE is None, reason="needs strace")
def test_gc_and_rm_killed_at_every_step(repo, tmp_path):
    src = tmp_path / "src"
    committed = []
    for seed in range(1, 5):
        make_tree(src, seed)
        committed.append(repo.push(src))
    victim = committed.pop(1)

    def then_gc(work, mine):
        work.ok("gc")
        assert_coherent(work, mine)
        make_tree(src, 50)
        mine.append(work.push(src))
        assert_coherent(work, mine)

    assert every_step(repo, tmp_path, committed, ["rm", victim], then_gc) >= 1
    repo.ok("rm", "-no-gc", victim)
    assert every_step(repo, tmp_path, committed, ["gc"], then_gc) >= 3


def test_random_kills(repo, tmp_path):
    """50 random kill points across push, rm and gc."""
    rnd = random.Random(1234)
    src = tmp_path / "src"
    make_tree(src, 1, files=30, size=200_000)
    committed = [repo.push(src)]
    for i in range(50):
        make_tree(src, 100 + i, files=30, size=200_000)
        op = ["push", src] if i % 3 != 2 else (["gc"] if i % 2 else ["rm", committed[-1]])
        if op[0] == "rm" and len(committed) < 2:
            op = ["gc"]
        cmd = [repo.binary, "on", repo.repo] + [str(a) for a in op]
        p = subprocess.Popen(cmd, env=repo.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rnd.uniform(0, 0.25))
        p.send_signal(signal.SIGKILL)
        out, _ = p.communicate()
        if p.returncode == 0:
            if op[0] == "push":
                committed.append(out.decode().strip())
            elif op[0] == "rm":
                committed.remove(op[1])
        elif op[0] == "rm" and op[1] not in repo.snapshot_ids():
            committed.remove(op[1])
        if i % 5 == 4:
            assert_coherent(repo, committed)
    assert_coherent(repo, committed)
    committed.append(repo.push(src))
    repo.ok("gc")
    assert_coherent(repo, committed)


def test_concurrent_pushes_rm_and_gc(repo, tmp_path):
    """Pushes, rm and gc at once, many times: everything committed verifies."""
    trees = []
    for t in range(3):
        d = tmp_path / ("t%d" % t)
        make_tree(d, 10 + t, files=10)
        trees.append(d)
    committed = []
    for rnd in range(6):
        for t, d in enumerate(trees):
            make_tree(d, 1000 + rnd * 10 + t, files=4)
        procs = [subprocess.Popen([repo.binary, "on", repo.repo, "push", str(d)], env=repo.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for d in trees]
        extra = []
        if len(committed) > 3:
            victim = committed.pop(0)
            extra.append(subprocess.Popen([repo.binary, "on", repo.repo, "rm", "-no-gc", victim], env=repo.env,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        extra.append(subprocess.Popen([repo.binary, "on", repo.repo, "gc"], env=repo.env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            committed.append(out.decode().strip())
        for p in extra:
            out, err = p.communicate(timeout=120)
            # a gc may meet another gc's lock; nothing else may fail
            assert p.returncode == 0 or b"locked by another gc" in err, err
    repo.ok("gc")
    repo.ok("gc")
    assert_coherent(repo, committed)
