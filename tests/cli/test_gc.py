"""`plakar rm` and `plakar gc`: space really freed, what remains restorable, -dry-run, -json,
-no-gc and bad arguments."""
import json
import os

from cliutil import repo_size, write_random


def snap_ids(repo):
    return repo.snapshot_ids()


def test_rm_everything_gives_back_the_space(repo, tmp_path):
    empty = repo_size(repo.repo)
    src = tmp_path / "src"
    src.mkdir()
    write_random(src / "a", 2_000_000, seed=1)
    s1 = repo.push(src)
    write_random(src / "b", 1_000_000, seed=2)
    s2 = repo.push(src)
    assert repo_size(repo.repo) > empty + 2_900_000
    out = repo.ok("rm", s1[:8], s2).out
    assert "rm: removed 2 snapshot(s)" in out and "gc: delete" in out, out
    assert snap_ids(repo) == []
    assert repo_size(repo.repo) <= empty + 4096
    repo.ok("check")


def test_rm_no_gc_then_gc_and_dry_run(repo, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    write_random(src / "keep", 500_000, seed=1)
    s1 = repo.push(src)
    write_random(src / "gone", 800_000, seed=2)
    s2 = repo.push(src)
    os.remove(src / "gone")
    s3 = repo.push(src)
    before = repo_size(repo.repo)
    out = repo.ok("rm", "-no-gc", s2).out
    assert out == "rm: removed 1 snapshot(s)\n", out
    assert repo_size(repo.repo) >= before - 1000  # only the header went
    dry = repo.ok("gc", "-dry-run").out
    assert "would delete" in dry, dry
    assert repo_size(repo.repo) >= before - 1000
    (report,) = [json.loads(x) for x in repo.ok("gc", "-json").out.splitlines()]
    assert report["bytes_freed"] > 700_000 and report["packs_pending"] == 0, report
    assert repo_size(repo.repo) < before - 700_000
    for s in (s1, s3):
        r = repo.ok("cat", "%s:%s/keep" % (s, src))
        assert r.stdout == open(src / "keep", "rb").read()
    repo.ok("check", s1, s3)
    repo.ok("check")


def test_bad_arguments(repo, tmp_path):
    repo.fails("rm", code=2)
    repo.fails("rm", "", code=2)
    repo.fails("rm", "ffffffff")  # unknown: nothing removed
    repo.fails("gc", "extra", code=2)
    repo.fails("gc", "-repack", "101", code=2)
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    s1 = repo.push(src)
    repo.fails("rm", s1, "ffffffff")
    assert snap_ids(repo) == [s1]
