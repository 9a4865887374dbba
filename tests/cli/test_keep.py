"""`plakar keep`: N most recent, rules, -dry-run, -json, -no-gc, per group, bad arguments."""
import json

from cliutil import write_random


def pushes(repo, tmp_path, n, name="src"):
    src = tmp_path / name
    src.mkdir(exist_ok=True)
    ids = []
    for i in range(n):
        write_random(src / "f", 50_000, seed=i)
        ids.append(repo.push(src))
    return src, ids


def test_keep_n_and_dry_run(repo, tmp_path):
    src, ids = pushes(repo, tmp_path, 5)
    out = repo.ok("keep", "-dry-run", "2").out
    assert out.count("\nremove ") + out.startswith("remove ") == 3, out
    assert "keep: dry run, nothing removed" in out
    assert len(repo.snapshot_ids()) == 5
    out = repo.ok("keep", "2").out
    assert "keep: removed 3 snapshot(s)" in out and "gc: delete" in out, out
    assert sorted(repo.snapshot_ids()) == sorted(ids[3:])
    for s in ids[3:]:
        repo.ok("check", s)
    repo.ok("check")


def test_rules_json_and_groups(repo, tmp_path):
    _, a = pushes(repo, tmp_path, 3, "a")
    _, b = pushes(repo, tmp_path, 2, "b")
    lines = [json.loads(x) for x in repo.ok("keep", "-json", "-no-gc", "-daily", "1").out.splitlines()]
    decisions = {d["snapshot"]: d for d in lines if "snapshot" in d}
    # One per group survives: the newest of today, in each of the two path groups.
    kept = {s for s, d in decisions.items() if d["keep"]}
    assert kept == {a[-1], b[-1]}, lines
    assert decisions[a[-1]]["reasons"].startswith("daily ")
    assert lines[-1] == {"dry_run": False, "removed": 3}
    assert sorted(repo.snapshot_ids()) == sorted([a[-1], b[-1]])


def test_bad_arguments(repo, tmp_path):
    repo.fails("keep", code=2)
    repo.fails("keep", "0", code=2)
    repo.fails("keep", "x", code=2)
    repo.fails("keep", "2", "3", code=2)
    repo.fails("keep", "-last", "2", "3", code=2)
    repo.fails("keep", "-daily", "-1", code=2)
