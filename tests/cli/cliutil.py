"""Helpers for the end-to-end tests of the `plakar` command.

Plakar runs the real binary (PLAKAR_BIN) in a new session, with stdin from /dev/null, so it
never has a controlling terminal: a passphrase prompt fails instead of waiting for a human.
"""
import errno
import os
import re
import stat
import subprocess

ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIME_RE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
SIZE_RE = r"\d+(?:\.\d)? (?:B|kB|MB|GB|TB|PB|EB)"
# `ls`: "2021-11-27T00:12:04Z  99e53a9c-e503-4c32-8622-924bf966f15b     11 MB /bin"
SNAPSHOT_LINE_RE = re.compile(
    r"(?P<time>" + TIME_RE + r")  (?P<id>" + ID_RE.pattern + r") (?P<size>[ ]*" + SIZE_RE + r") (?P<paths>.*)")
# `ls SNAP:PATH`: "2021-11-27T00:12:04Z drwxr-xr-x     root     root    4.1 kB name"
ENTRY_LINE_RE = re.compile(
    r"(?P<time>" + TIME_RE + r") (?P<mode>[-dlpcbs][-rwxsStT]{9}) (?P<user>[ ]*\S+) (?P<group>[ ]*\S+) "
    r"(?P<size>[ ]*" + SIZE_RE + r") (?P<name>.*)")

IS_ROOT = os.geteuid() == 0


def to_bytes(x):
    if isinstance(x, bytes):
        return x
    return os.fsencode(str(x))


class Result:
    def __init__(self, args, proc):
        self.args = args
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr.decode("utf-8", "replace")

    @property
    def out(self):
        return self.stdout.decode("utf-8", "replace")

    def stderr_lines(self):
        return self.stderr.splitlines()

    def __repr__(self):
        return "Result(args=%r, rc=%d, stdout=%r, stderr=%r)" % (
            self.args, self.returncode, self.stdout[:2000], self.stderr[:2000])


class Plakar:
    """The binary bound to one environment and (optionally) one repository."""

    def __init__(self, binary, env, repo=None):
        self.binary = binary
        self.env = env
        self.repo = repo

    def with_repo(self, repo):
        return Plakar(self.binary, self.env, repo)

    def run(self, *args, repo="default", env=None, extra_env=None, unset=(), global_args=(),
            input=None, cwd=None, timeout=300, preexec=()):
        """Runs `[preexec...] plakar [global_args] [on REPO] args...`.

        repo="default" uses self.repo; None leaves `on` out."""
        if repo == "default":
            repo = self.repo
        cmd = list(preexec) + [self.binary] + [to_bytes(a) for a in global_args]
        if repo is not None:
            cmd += [b"on", to_bytes(repo)]
        cmd += [to_bytes(a) for a in args]
        e = dict(self.env if env is None else env)
        for k in unset:
            e.pop(k, None)
        e.update(extra_env or {})
        proc = subprocess.run(cmd, env=e, cwd=cwd, timeout=timeout, start_new_session=True,
                              stdin=subprocess.DEVNULL if input is None else None,
                              input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return Result(cmd, proc)

    def ok(self, *args, **kw):
        """Runs and asserts success with nothing on stderr."""
        r = self.run(*args, **kw)
        assert r.returncode == 0, r
        assert r.stderr == "", r
        return r

    def fails(self, *args, code=1, **kw):
        """Runs and asserts exit code `code` and exactly one error line on stderr."""
        r = self.run(*args, **kw)
        assert r.returncode == code, r
        assert_one_error_line(r)
        return r

    def push(self, *paths, **kw):
        r = self.ok("push", *paths, **kw)
        snap = r.out.strip()
        assert ID_RE.fullmatch(snap), r
        return snap

    def snapshot_lines(self, **kw):
        lines = self.ok("ls", **kw).out.splitlines()
        out = []
        for line in lines:
            m = SNAPSHOT_LINE_RE.fullmatch(line)
            assert m, "bad snapshot line: %r" % line
            assert len(m.group("size")) == 10, "size field not 10 wide: %r" % line
            out.append(m)
        return out

    def snapshot_ids(self, **kw):
        return [m.group("id") for m in self.snapshot_lines(**kw)]


def assert_one_error_line(r):
    lines = r.stderr_lines()
    assert len(lines) == 1, "expected one error line: %r" % (r,)
    assert lines[0].startswith("plakar: "), r
    assert r.stderr.endswith("\n"), r


def reachable_copy(plakar, top):
    """The binary (and the libplakar it links) copied under `top`, for runs as another user:
    the build tree may sit where that user cannot reach it (a checkout under /root)."""
    import shutil
    bindir = os.path.join(top, "bin")
    os.makedirs(bindir, exist_ok=True)
    binary = shutil.copy2(plakar.binary, bindir)
    out = subprocess.run(["ldd", plakar.binary], stdout=subprocess.PIPE, check=True).stdout.decode()
    for line in out.splitlines():
        m = re.match(r"\s*(libplakar\S*) => (\S+)", line)
        if m:
            shutil.copy2(m.group(2), os.path.join(bindir, m.group(1)))
    for n in os.listdir(bindir):
        os.chmod(os.path.join(bindir, n), 0o755)
    os.chmod(bindir, 0o755)
    env = dict(plakar.env)
    env["LD_LIBRARY_PATH"] = bindir
    return Plakar(binary, env, plakar.repo)


def create_repo(plakar, path, *flags):
    plakar.ok("create", "-kdf-log2-n", "10", *flags, repo=path)
    return plakar.with_repo(path)


def snap_path(snap, path):
    """SNAP:PATH as bytes (paths may not be UTF-8)."""
    return to_bytes(snap) + b":" + to_bytes(path)


def repo_size(repo):
    """Apparent bytes of the repository directory, like `du -sb`: files and directories."""
    total = os.lstat(repo).st_size
    for dirpath, dirnames, filenames in os.walk(repo):
        for name in dirnames + filenames:
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def largest_pack(repo):
    """The largest pack file: REPO/packs/XX/<64 hex digits>."""
    packs = []
    root = os.path.join(repo, "packs")
    for sub in os.listdir(root):
        if not re.fullmatch(r"[0-9a-f]{2}", sub):
            continue
        for name in os.listdir(os.path.join(root, sub)):
            if re.fullmatch(r"[0-9a-f]{64}", name):
                p = os.path.join(root, sub, name)
                packs.append((os.path.getsize(p), p))
    assert packs, "no pack under %s" % root
    return max(packs)[1]


def flip_byte(path, offset=None):
    """Inverts one byte (the middle one by default); returns its offset."""
    size = os.path.getsize(path)
    if offset is None:
        offset = size // 2
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0xFF]))
    return offset


def write_random(path, size, seed=0):
    """Writes `size` pseudo-random (incompressible) bytes; returns them."""
    import random
    data = random.Random(seed).randbytes(size)
    with open(path, "wb") as f:
        f.write(data)
    return data


def read_all(path):
    with open(path, "rb") as f:
        return f.read()


def same_content(a, b, block=1 << 20):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x = fa.read(block)
            y = fb.read(block)
            if x != y:
                return False
            if not x:
                return True


def xattrs(path):
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    return {n: os.getxattr(path, n, follow_symlinks=False) for n in names if n.startswith("user.")}


def compare_trees(src, dst, check_owner=IS_ROOT):
    """Asserts that dst reproduces src: names, types, permissions, owners (as root), sizes,
    mtimes (ns; lstat for symlinks), contents, symlink targets, user xattrs, and hard links
    (names sharing an inode in src share one in dst). Returns the number of entries checked."""
    src, dst = to_bytes(src), to_bytes(dst)
    src_groups, dst_inode = {}, {}
    checked = 0

    def walk(s, d, rel):
        nonlocal checked
        ss, ds = os.lstat(s), os.lstat(d)
        where = rel.decode("utf-8", "backslashreplace") or "."
        assert stat.S_IFMT(ss.st_mode) == stat.S_IFMT(ds.st_mode), "type differs: %s" % where
        assert stat.S_IMODE(ss.st_mode) == stat.S_IMODE(ds.st_mode) or stat.S_ISLNK(ss.st_mode), \
            "mode differs: %s %o != %o" % (where, stat.S_IMODE(ss.st_mode), stat.S_IMODE(ds.st_mode))
        if check_owner:
            assert (ss.st_uid, ss.st_gid) == (ds.st_uid, ds.st_gid), "owner differs: %s" % where
        assert ss.st_mtime_ns == ds.st_mtime_ns, "mtime differs: %s %d != %d" % (where, ss.st_mtime_ns, ds.st_mtime_ns)
        if not stat.S_ISLNK(ss.st_mode):
            assert xattrs(s) == xattrs(d), "xattrs differ: %s" % where
        checked += 1
        if stat.S_ISREG(ss.st_mode):
            assert ss.st_size == ds.st_size, "size differs: %s" % where
            assert same_content(s, d), "content differs: %s" % where
            if ss.st_nlink > 1:
                src_groups.setdefault((ss.st_dev, ss.st_ino), []).append(rel)
                dst_inode[rel] = (ds.st_dev, ds.st_ino)
        elif stat.S_ISLNK(ss.st_mode):
            assert os.readlink(s) == os.readlink(d), "symlink target differs: %s" % where
        elif stat.S_ISDIR(ss.st_mode):
            names = sorted(os.listdir(s))
            assert names == sorted(os.listdir(d)), "entries differ in %s: %r != %r" % (
                where, names, sorted(os.listdir(d)))
            for n in names:
                walk(os.path.join(s, n), os.path.join(d, n), os.path.join(rel, n) if rel else n)

    walk(src, dst, b"")
    for names in src_groups.values():
        inodes = {dst_inode[n] for n in names}
        assert len(inodes) == 1, "hard links not restored as links: %r" % names
    return checked


def set_xattr(path, name, value):
    """Sets a user xattr; returns False when the filesystem refuses user xattrs."""
    try:
        os.setxattr(path, name, value, follow_symlinks=False)
        return True
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM):
            return False
        raise


def make_tree_files(root, files, max_size, seed=0):
    """files random files of 1..max_size bytes under root, spread over three directories."""
    import random
    rnd = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        sub = root / ("d%d" % (i % 3))
        sub.mkdir(exist_ok=True)
        write_random(sub / ("f%d" % i), rnd.randint(1, max_size), seed=seed * 1000 + i)
