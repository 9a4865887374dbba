"""`plakar check` at its three depths: exit codes, one line per problem naming the object,
the summary, -json and -refcounts, and bad arguments."""
import json
import os

import pytest

from cliutil import flip_byte, largest_pack, write_random


@pytest.fixture
def pushed(repo, tmp_path):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    write_random(src / "big", 300000, seed=1)
    write_random(src / "d" / "small", 5000, seed=2)
    s1 = repo.push(src)
    write_random(src / "d" / "small", 5000, seed=3)
    s2 = repo.push(src)
    return repo, src, s1, s2


def test_clean_repository_every_depth(pushed):
    repo, src, s1, s2 = pushed
    out = repo.ok("check", s1, s2).out
    assert "2 snapshot(s)" in out and out.rstrip().endswith("no problem found")
    assert "check snapshots (fast)" in repo.ok("check", "-fast", s1[:8]).out
    out = repo.ok("check").out
    assert "check repository: 2 snapshot(s)" in out and "packs" in out
    assert "no problem found" in repo.ok("check", "-read-data").out
    # -json: the summary is the last line
    lines = [json.loads(x) for x in repo.ok("check", "-json", s1).out.splitlines()]
    assert lines[-1]["ok"] is True and lines[-1]["problems"] == 0 and lines[-1]["bytes"] >= 305000
    # -refcounts: one line per referenced blob, "<64 hex> <count>"; the unchanged big file is in both
    refs = [line.split() for line in repo.ok("check", "-refcounts").out.splitlines()
            if len(line.split()) == 2 and len(line.split()[0]) == 64]
    counts = sorted(int(n) for _, n in refs)
    assert counts and set(counts) <= {1, 2} and 2 in counts and 1 in counts


def test_damaged_data_pack_names_the_file(pushed):
    repo, src, s1, s2 = pushed
    pack = largest_pack(repo.repo)
    flip_byte(pack, 200)
    r = repo.run("check", s1)
    assert r.returncode == 1, r
    lines = r.stderr_lines()
    assert lines and all(line.startswith("plakar: check: ") for line in lines), r
    assert any("%s:%s/big" % (s1, src) in line and "authentication" in line for line in lines), r
    assert "problem(s) found" in r.out
    # -fast reads no data: it cannot see the damage
    repo.ok("check", "-fast", s1)
    # the structural check passes; -read-data names the pack
    repo.ok("check")
    r = repo.run("check", "-read-data")
    assert r.returncode == 1 and os.path.basename(pack) in r.stderr, r


def test_missing_pack_fast_and_repository(pushed):
    repo, src, s1, s2 = pushed
    pack = largest_pack(repo.repo)
    os.remove(pack)
    r = repo.run("check", "-fast", s1)
    assert r.returncode == 1 and "is missing" in r.stderr, r
    r = repo.run("check")
    assert r.returncode == 1, r
    assert any(("pack " + os.path.basename(pack)) in line and "is missing" in line
               for line in r.stderr_lines()), r
    r = repo.run("check", "-json")
    problems = [json.loads(x) for x in r.out.splitlines() if '"problem"' in x]
    assert r.returncode == 1 and any(p["problem"] == "missing" for p in problems), r


def test_damaged_index_is_named(pushed):
    repo, src, s1, s2 = pushed
    seg_dir = os.path.join(repo.repo, "index")
    seg = sorted(os.listdir(seg_dir))[0]
    flip_byte(os.path.join(seg_dir, seg), 40)
    r = repo.run("check", global_args=["-no-cache"])
    assert r.returncode == 1 and seg in r.stderr, r


def test_bad_arguments(pushed):
    repo, src, s1, s2 = pushed
    repo.fails("check", "-fast", code=2)
    repo.fails("check", "-read-data", s1, code=2)
    repo.fails("check", "-refcounts", s1, code=2)
    repo.fails("check", "-bogus", code=2)
    repo.fails("check", "", code=2)
    r = repo.fails("check", "ffffffff")
    assert "ffffffff" in r.stderr or "not found" in r.stderr, r


def test_repair_after_index_deleted(pushed):
    repo, src, s1, s2 = pushed
    seg_dir = os.path.join(repo.repo, "index")
    for name in os.listdir(seg_dir):
        os.remove(os.path.join(seg_dir, name))
    r = repo.run("check", global_args=["-no-cache"])
    assert r.returncode == 1 and "has no index entry" in r.stderr, r
    out = repo.ok("repair").out
    assert "would rebuild" in out and "-yes" in out, out
    assert os.listdir(seg_dir) == []
    out = repo.ok("repair", "-yes").out
    assert "rebuilt the index" in out, out
    assert len(os.listdir(seg_dir)) == 1
    repo.ok("check", global_args=["-no-cache"])
    repo.ok("check", s1, s2)
    (report,) = [json.loads(x) for x in repo.ok("repair", "-json").out.splitlines()]
    assert report["applied"] is False and report["added"] == 0 and report["dropped"] == 0
    repo.fails("repair", "extra", code=2)


def test_damaged_config_is_named(pushed):
    repo, src, s1, s2 = pushed
    flip_byte(os.path.join(repo.repo, "CONFIG"), 20)
    r = repo.fails("check")
    assert "CONFIG" in r.stderr, r
    r = repo.fails("check", s1)
    assert "CONFIG" in r.stderr, r


def test_repair_read_data_then_push_heals(pushed):
    repo, src, s1, s2 = pushed
    pack = largest_pack(repo.repo)
    flip_byte(pack, 200)
    assert repo.run("check", s1).returncode == 1
    r = repo.run("repair", "-read-data", "-yes")
    assert r.returncode == 3 and os.path.basename(pack) in r.stderr, r
    assert "left out of the index" in r.out, r
    repo.push(src)
    repo.ok("check", s1, s2)
