"""The exact output formats of `version`, `ls` and `ls SNAP:PATH` (docs/cli.md)."""
import calendar
import grp
import os
import pwd
import time

from cliutil import IS_ROOT, snap_path

MTIME = 1637971924 * 10**9 + 123456789  # 2021-11-27T00:12:04.123456789Z
MTIME_TEXT = "2021-11-27T00:12:04Z"


def test_version(plakar):
    r = plakar.ok("version")
    assert r.out == "plakar 0.2.0\n"


def parse_time(text):
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def test_snapshot_list_lines(repo, tmp_path):
    eleven = tmp_path / "eleven"
    eleven.mkdir()
    (eleven / "zeros").write_bytes(bytes(11_000_000))
    small = tmp_path / "small"
    small.mkdir()
    (small / "f").write_bytes(b"x" * 512)
    other = tmp_path / "other"
    other.mkdir()
    (other / "g").write_bytes(b"y" * 488)

    before = time.time()
    first = repo.push(eleven)
    second = repo.push(small)
    third = repo.push(small, other)
    after = time.time()

    lines = repo.ok("ls").out.splitlines()
    assert len(lines) == 3
    t = [line[:20] for line in lines]
    for text in t:
        assert before - 1 <= parse_time(text) <= after + 1
    assert lines[0] == "%s  %s %10s %s" % (t[0], first, "11 MB", eleven)
    assert lines[0] == "%s  %s      11 MB %s" % (t[0], first, eleven)
    assert lines[1] == "%s  %s      512 B %s" % (t[1], second, small)
    # both paths, in the order the snapshot recorded them
    head = "%s  %s       1 kB " % (t[2], third)
    assert lines[2].startswith(head)
    assert sorted(lines[2][len(head):].split(", ")) == sorted([str(small), str(other)])


def test_entry_lines(repo, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    sizes = {"s0": 0, "s512": 512, "s999": 999, "s1000": 1000, "s4096": 4096, "s9960": 9960,
             "s123456": 123456, "s1500000": 1_500_000}
    for name, size in sizes.items():
        (d / name).write_bytes(b"z" * size)
    (d / "sub").mkdir()
    os.symlink("s0", d / "ln")
    (d / "setuid").write_bytes(b"")
    os.chmod(d / "setuid", 0o4755)
    (d / "sticky").mkdir()
    os.chmod(d / "sticky", 0o1777)
    os.chmod(d / "s512", 0o600)
    odd = os.fsencode(d) + b"/odd\x01\\name\x7f"
    with open(odd, "wb"):
        pass
    for p in list(d.iterdir()) + [d]:
        os.utime(p, ns=(MTIME, MTIME), follow_symlinks=False)
    if IS_ROOT:
        os.chown(d / "s999", 4321, 8765)
    snap = repo.push(d)

    user = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    lines = repo.ok("ls", snap_path(snap, d)).out.splitlines()

    def line(mode, size, name, u=user, g=group):
        return "%s %s %8s %8s %9s %s" % (MTIME_TEXT, mode, u, g, size, name)

    expected_files = [
        line("-rw-r--r--", "0 B", "s0"),
        line("-rw-r--r--", "1 kB", "s1000"),
        line("-rw-r--r--", "123 kB", "s123456"),
        line("-rw-r--r--", "1.5 MB", "s1500000"),
        line("-rw-r--r--", "4.1 kB", "s4096"),
        line("-rw-------", "512 B", "s512"),
        line("-rw-r--r--", "10 kB", "s9960"),
        line("-rwsr-xr-x", "0 B", "setuid"),
        line("-rw-r--r--", "0 B", "odd\\x01\\\\name\\x7f"),
    ]
    if IS_ROOT:
        expected_files.append(line("-rw-r--r--", "999 B", "s999", "4321", "8765"))
    else:
        expected_files.append(line("-rw-r--r--", "999 B", "s999"))
    for e in expected_files:
        assert e in lines, "missing %r in %r" % (e, lines)
    assert len(lines) == len(sizes) + 5

    def ending(suffix):
        found = [x for x in lines if x.endswith(suffix)]
        assert len(found) == 1, (suffix, lines)
        return found[0]
    assert ending(" sub").startswith(MTIME_TEXT + " drwxr-xr-x ")
    assert ending(" sticky").startswith(MTIME_TEXT + " drwxrwxrwt ")
    assert ending(" ln -> s0").startswith(MTIME_TEXT + " lrwxrwxrwx ")

    # ls of a file lists that file alone
    one = repo.ok("ls", snap_path(snap, d / "s4096")).out.splitlines()
    assert one == [line("-rw-r--r--", "4.1 kB", "s4096")]


def test_entry_lines_are_sorted(repo, tmp_path):
    d = tmp_path / "sorted"
    d.mkdir()
    for name in ["b", "a", "C", "\u00e9", "0"]:
        (d / name).write_bytes(b"")
    snap = repo.push(d)
    names = [line.split(" ")[-1] for line in repo.ok("ls", snap_path(snap, d)).out.splitlines()]
    assert names == sorted(names, key=lambda s: s.encode())


def test_ls_snapshot_root(repo, tmp_path):
    d = tmp_path / "rootcheck"
    d.mkdir()
    snap = repo.push(d)
    top = str(d).split("/")[1]
    for arg in (snap, snap + ":", snap + ":/"):
        lines = repo.ok("ls", arg).out.splitlines()
        assert len(lines) == 1 and lines[0].endswith(" " + top), lines
