"""Browsing snapshots: ls -R and -json, cat of a directory, diff (with -u), locate and info,
and their bad inputs."""
import json
import os

import pytest

from cliutil import snap_path


@pytest.fixture
def tree(tmp_path):
    src = tmp_path / "src"
    (src / "etc" / "conf.d").mkdir(parents=True)
    (src / "docs").mkdir()
    (src / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    (src / "etc" / "conf.d" / "a.conf").write_text("".join("line %d\n" % i for i in range(40)))
    (src / "etc" / "conf.d" / "b.conf").write_text("b\n")
    (src / "docs" / "readme.txt").write_text("read me\n")
    (src / "docs" / "image.bin").write_bytes(b"\x00\x01\x02" * 100)
    with open(os.path.join(os.fsencode(src), b"bad\xffname"), "wb") as f:  # a non-UTF-8 name
        f.write(b"x")
    os.symlink("etc/hosts", src / "link")
    return src


def test_ls_recursive_and_json(repo, tree):
    snap = repo.push(tree)
    out = repo.ok("ls", "-R", snap_path(snap, tree)).out.splitlines()
    paths = [line.split(" ", 5)[-1].split()[-1] if "->" not in line else line.split(" -> ")[0].split()[-1]
             for line in out]
    assert "%s/etc/conf.d/a.conf" % tree in paths
    assert "%s/docs/readme.txt" % tree in paths
    # JSON Lines: one object per entry, full paths, exact fields
    lines = repo.ok("ls", "-R", "-json", snap_path(snap, tree)).out.splitlines()
    objs = [json.loads(line) for line in lines]
    by_path = {o["path"]: o for o in objs}
    hosts = by_path["%s/etc/hosts" % tree]
    assert hosts["type"] == "file" and hosts["size"] == 20 and hosts["name"] == "hosts"
    assert hosts["mtime_ns"] == os.stat(tree / "etc" / "hosts").st_mtime_ns
    assert by_path["%s/link" % tree]["target"] == "etc/hosts"
    bad = [o for o in objs if "name_hex" in o]
    assert len(bad) == 1 and bytes.fromhex(bad[0]["name_hex"]) == b"bad\xffname"
    assert len(objs) == 10
    # one file: that one entry
    one = repo.ok("ls", "-json", snap_path(snap, tree / "etc" / "hosts")).out.splitlines()
    assert len(one) == 1 and json.loads(one[0])["name"] == "hosts"
    # snapshot list as JSON
    (listed,) = [json.loads(x) for x in repo.ok("ls", "-json").out.splitlines()]
    assert listed["id"] == snap and listed["paths"] == [str(tree)] and listed["files"] == 6


def test_cat_of_a_directory_is_an_error(repo, tree):
    snap = repo.push(tree)
    r = repo.fails("cat", snap_path(snap, tree / "etc"))
    assert "not a regular file" in r.stderr


def test_diff(repo, tree):
    s1 = repo.push(tree)
    (tree / "etc" / "hosts").write_text("127.0.0.1 localhost\n10.0.0.1 server\n")
    conf = (tree / "etc" / "conf.d" / "a.conf").read_text().replace("line 20\n", "line twenty\n")
    (tree / "etc" / "conf.d" / "a.conf").write_text(conf)
    os.unlink(tree / "etc" / "conf.d" / "b.conf")
    (tree / "new.txt").write_text("new\n")
    os.chmod(tree / "docs" / "readme.txt", 0o600)
    (tree / "docs" / "image.bin").write_bytes(b"\x00\x09" * 100)
    s2 = repo.push(tree)
    out = repo.ok("diff", snap_path(s1, tree), s2).out.splitlines()
    assert "changed %s/etc/hosts (content,size,mtime)" % tree in out
    assert "removed %s/etc/conf.d/b.conf" % tree in out
    assert "added   %s/new.txt" % tree in out
    assert "changed %s/docs/readme.txt (mode)" % tree in out
    assert not any("bad" in line for line in out)
    # unified diff of text files; binaries are named, not dumped
    u = repo.ok("diff", "-u", snap_path(s1, tree / "etc"), snap_path(s2, tree / "etc")).out
    assert "-line 20\n+line twenty\n" in u
    assert "@@ -18,7 +18,7 @@" in u
    assert "+10.0.0.1 server\n" in u
    ub = repo.ok("diff", "-u", snap_path(s1, tree / "docs"), s2).out
    assert "Binary files" in ub
    # JSON
    js = [json.loads(x) for x in repo.ok("diff", "-json", snap_path(s1, tree), s2).out.splitlines()]
    assert {"change": "removed", "path": "%s/etc/conf.d/b.conf" % tree, "type": "file"} in js
    # identical snapshots: nothing
    s3 = repo.push(tree)
    assert repo.ok("diff", snap_path(s2, tree), s3).out == ""


def test_locate(repo, tree):
    s1 = repo.push(tree)
    (tree / "docs" / "other.conf").write_text("o\n")
    s2 = repo.push(tree)
    out = repo.ok("locate", "*.conf").out.splitlines()
    assert "%s:%s/etc/conf.d/a.conf" % (s1, tree) in out
    assert "%s:%s/docs/other.conf" % (s2, tree) in out
    assert "%s:%s/docs/other.conf" % (s1, tree) not in out
    assert len(out) == 2 + 3
    only = repo.ok("locate", "*.conf", s1[:8]).out.splitlines()
    assert len(only) == 2
    full = repo.ok("locate", "-path", "*/docs/*.conf").out.splitlines()
    assert full == ["%s:%s/docs/other.conf" % (s2, tree)]
    assert repo.ok("locate", "no-such-name").out == ""
    js = [json.loads(x) for x in repo.ok("locate", "-json", "hosts", s1).out.splitlines()]
    assert js == [{"snapshot": s1, "path": "%s/etc/hosts" % tree}]


def test_info(repo, tree, plakar, tmp_path):
    snap = repo.push(tree)
    out = repo.ok("info").out
    assert "Format version:  1" in out and "AES-256-GCM" in out and "Snapshots:       1" in out
    info = json.loads(repo.ok("info", "-json").out)
    assert info["encrypted"] is True and info["snapshots"] == 1 and info["data_blobs"] >= 1
    assert info["logical_bytes"] == 20 + 310 + 2 + 8 + 300 + 1  # hosts, a.conf, b.conf, readme, image, bad
    s = json.loads(repo.ok("info", "-json", snap[:6]).out)
    assert s["id"] == snap and s["files"] == 6 and s["errors"] == []
    assert "Errors:       0" in repo.ok("info", snap).out
    plain = tmp_path / "plain"
    plakar.ok("create", "-no-encryption", repo=plain)
    assert "NONE" in plakar.ok("info", repo=plain, unset=["PLAKAR_PASSPHRASE"]).out


def test_bad_paths_and_arguments(repo, tree):
    snap = repo.push(tree)
    repo.fails("ls", snap_path(snap, "%s/../x" % tree))
    repo.fails("ls", snap_path(snap, tree / "nope"))
    repo.fails("ls", snap_path(snap, tree / "etc" / "hosts" / "below"))
    repo.fails("ls", "ffffffffffff:/")
    # trailing slashes and an empty path are fine
    assert repo.ok("ls", snap_path(snap, str(tree) + "/etc/")).out.count("\n") == 2
    assert repo.ok("ls", snap + ":").out.count("\n") == 1
    repo.fails("diff", snap, code=2)
    repo.fails("diff", snap, snap, snap, code=2)
    repo.fails("diff", snap_path(snap, tree / "nope"), snap)
    repo.fails("locate", code=2)
    repo.fails("info", snap, snap, code=2)
    repo.fails("info", "ffffffffffff")
