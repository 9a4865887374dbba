"""Limits of push and pull: -cpu, a huge sparse file, a directory of many entries, files that
change while they are read."""
import os
import threading

from cliutil import ID_RE, create_repo


def push_id(repo, *args, global_args=()):
    r = repo.run("push", *args, global_args=global_args)
    assert r.returncode == 0, r
    ids = ID_RE.findall(r.out + r.stderr)
    assert ids, r
    return ids[-1]


def test_cpu_zero_is_a_usage_error(repo, tmp_path):
    r = repo.run("push", str(tmp_path), global_args=("-cpu", "0"))
    assert r.returncode == 2, r
    assert "-cpu" in r.stderr and len(r.stderr_lines()) == 1


def test_cpu_above_the_cores_is_clamped_with_a_note(repo, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"x" * 1000)
    r = repo.run("push", str(src), global_args=("-cpu", "1024"))
    assert r.returncode == 0, r
    assert "note: -cpu 1024 is more than the" in r.stderr


def test_cpu_budgets_give_the_same_content(repo, plakar, tmp_path):
    src = tmp_path / "src"
    for d in range(20):
        (src / ("d%02d" % d)).mkdir(parents=True)
        for f in range(30):
            (src / ("d%02d" % d) / ("f%02d" % f)).write_bytes(os.urandom(3000 + 97 * f))
    big = os.urandom(3 << 20)
    (src / "big").write_bytes(big * 4)  # several chunks, spread over workers
    # Two repositories, so that the second push reads everything too.
    other = create_repo(plakar, tmp_path / "other")
    a = push_id(repo, str(src), global_args=("-cpu", "1"))
    b = push_id(other, str(src), global_args=("-cpu", "2"))
    for r, snap, tgt in ((repo, a, tmp_path / "ra"), (other, b, tmp_path / "rb")):
        res = r.run("pull", "-to", str(tgt), snap, global_args=("-cpu", "2"))
        assert res.returncode == 0, res
    for root, _, files in os.walk(src):
        for f in files:
            p = os.path.join(root, f)
            want = open(p, "rb").read()
            for tgt in ("ra", "rb"):
                assert open(str(tmp_path / tgt) + p, "rb").read() == want, (tgt, p)
    # The same tree in both: the snapshots list the same entries.
    la, lb = repo.run("ls", "-R", a + ":" + str(src)), other.run("ls", "-R", b + ":" + str(src))
    assert la.returncode == 0 and la.out == lb.out, (la, lb)


def test_huge_sparse_file_is_not_read_as_data(repo, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    f = src / "huge.img"
    size = 50 << 30
    islands = {0: b"head", 7 << 30: b"island" * 1000, size - 5: b"tail!"}
    with open(f, "wb") as out:
        for off, data in islands.items():
            out.seek(off)
            out.write(data)
        out.truncate(size)
    before = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(repo.repo) for n in ns)
    snap = push_id(repo, str(src))
    after = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(repo.repo) for n in ns)
    assert after - before < 1 << 20, after - before  # holes stored as repeats of one zero chunk
    tgt = tmp_path / "tgt"
    r = repo.run("pull", "-to", str(tgt), snap)
    assert r.returncode == 0, r
    back = str(tgt) + str(f)
    st = os.stat(back)
    assert st.st_size == size
    assert st.st_blocks * 512 < 4 << 20, st.st_blocks  # restored sparse
    with open(back, "rb") as g:
        for off, data in islands.items():
            g.seek(off)
            assert g.read(len(data)) == data
        g.seek((7 << 30) - 4096)
        assert g.read(4096) == bytes(4096)
    r = repo.run("check", snap)
    assert r.returncode == 0, r


def test_many_entries_in_one_directory(repo, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    n = 20000
    for i in range(n):
        open(src / ("e%06d" % i), "wb").close()
    snap = push_id(repo, str(src))
    r = repo.run("ls", snap + ":" + str(src))
    assert r.returncode == 0, r
    assert len(r.out.splitlines()) == n
    again = push_id(repo, str(src))  # unchanged: the tree is taken from the parent
    # src only: the directories above it (the build tree) change with whatever else runs there.
    r = repo.run("diff", snap + ":" + str(src), again + ":" + str(src))
    assert r.returncode == 0 and r.out.strip() == "", r


def test_files_changing_while_read_are_recorded_consistently(repo, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    grow, shrink = src / "grow", src / "shrink"
    grow.write_bytes(os.urandom(1 << 20))
    shrink.write_bytes(os.urandom(64 << 20))
    stop = threading.Event()

    def churn():
        while not stop.is_set():
            with open(grow, "ab") as g:
                g.write(os.urandom(64 << 10))
            size = os.path.getsize(shrink)
            with open(shrink, "r+b") as s:
                s.truncate(max(0, size - (1 << 20)))

    th = threading.Thread(target=churn)
    th.start()
    try:
        snaps = [push_id(repo, str(src)) for _ in range(3)]
    finally:
        stop.set()
        th.join()
    final_grow = grow.read_bytes()
    for snap in snaps:
        tgt = tmp_path / ("t-" + snap)
        r = repo.run("pull", "-to", str(tgt), snap)
        assert r.returncode == 0, r
        got = open(str(tgt) + str(grow), "rb").read()
        # What was recorded is a prefix of what the file became (it only grew)...
        assert final_grow.startswith(got)
        # ...and the recorded size is the size of the content stored.
        r = repo.run("ls", snap + ":" + str(src))
        assert r.returncode == 0, r
        r = repo.run("check", snap)
        assert r.returncode == 0, r
