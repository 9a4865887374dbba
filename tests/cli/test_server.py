"""`plakar server` and plakar:// repositories, end to end: real server processes on
127.0.0.1, real clients, killed at the worst moments."""
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from cliutil import IS_ROOT, Plakar, assert_one_error_line, make_tree_files, same_content, snap_path

ADDR_RE = re.compile(r"serving .* on (127\.0\.0\.1:\d+)")


class Server:
    """`plakar on STORE server` in its own process, on a free port of 127.0.0.1."""

    def __init__(self, plakar, store, tokens, listen="127.0.0.1:0", extra=()):
        self.plakar = plakar
        cmd = [plakar.binary, "on", str(store), "server", "-tokens", str(tokens), "-listen", listen]
        cmd += [str(a) for a in extra]
        self.proc = subprocess.Popen(cmd, env=plakar.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.first_line = self.proc.stderr.readline().decode()
        m = ADDR_RE.search(self.first_line)
        assert m, "server did not start: %r" % self.first_line
        self.addr = m.group(1)
        self.uri = "plakar://" + self.addr

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=30)
        self.log = self.proc.stderr.read().decode()
        return rc


@pytest.fixture
def tokens(plakar, tmp_path):
    """A tokens file with rw, ro and append tokens; their client forms by rights."""
    path = tmp_path / "tokens"
    out = {}
    for rights in ("rw", "ro", "append"):
        r = plakar.run("token", "-rights", rights, "-tokens", path, "client-" + rights, repo=None)
        assert r.returncode == 0, r
        out[rights] = r.out.strip()
        assert out[rights].startswith("client-%s:" % rights)
    assert os.stat(path).st_mode & 0o777 == 0o600
    return path, out


@pytest.fixture
def served(plakar, tmp_path, tokens):
    """A server on a fresh store, and a client bound to it with the rw token."""
    path, toks = tokens
    srv = Server(plakar, tmp_path / "store", path)
    env = dict(plakar.env)
    env["PLAKAR_TOKEN"] = toks["rw"]
    client = Plakar(plakar.binary, env, srv.uri)
    client.ok("create", "-kdf-log2-n", "10")
    yield srv, client, toks
    srv.stop(signal.SIGKILL)


def wait_for_pack(store, timeout=60):
    """Until the served store holds a pack: the push is under way."""
    end = time.time() + timeout
    while time.time() < end:
        packs = store / "packs"
        if packs.exists() and any(f.is_file() for f in packs.rglob("*")):
            return
        time.sleep(0.01)
    raise AssertionError("no pack appeared in %s" % store)


def push_under_way(client, src, seed, store):
    """A push of about 60 MB started in the background, once its first pack is stored."""
    make_tree_files(src, 60, 2_000_000, seed=seed)
    p = subprocess.Popen([client.binary, "on", client.repo, "push", str(src)], env=client.env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    wait_for_pack(store)
    return p


def as_token(client, token):
    env = dict(client.env)
    env["PLAKAR_TOKEN"] = token
    return Plakar(client.binary, env, client.repo)


def test_every_command_through_the_server(served, tmp_path):
    srv, client, _ = served
    src = tmp_path / "src"
    make_tree_files(src, 30, 50_000, seed=1)
    s1 = client.push(src)
    (src / "new").write_bytes(b"added later\n")
    s2 = client.push(src)
    assert set(client.snapshot_ids()) == {s1, s2}
    assert b"new" in client.ok("ls", s2 + ":" + str(src)).stdout
    assert client.ok("cat", s2 + ":" + str(src / "new")).stdout == b"added later\n"
    out = tmp_path / "out"
    client.ok("pull", "-to", out, s1)
    for f in src.rglob("*"):
        if f.is_file() and f.name != "new":
            assert same_content(f, out / f.relative_to("/"))
    assert "new" in client.ok("diff", s1, s2).out
    assert client.ok("locate", "new").out.strip()
    client.ok("info")
    client.ok("tarball", "-o", tmp_path / "a.tar", s2)
    assert (tmp_path / "a.tar").stat().st_size > 0
    client.ok("check", "-read-data")
    client.ok("rm", s1)
    client.ok("gc")
    client.ok("keep", "1")
    assert client.snapshot_ids() == [s2]
    client.ok("check", "-read-data")
    # The store the server holds is a plain repository: opened directly, it checks clean.
    direct = client.with_repo(tmp_path / "store")
    direct.ok("check")
    assert srv.stop() == 0
    assert "stopped" in srv.log


def test_several_clients_at_once(served, tmp_path):
    srv, client, _ = served
    procs = []
    for c in range(4):
        src = tmp_path / ("src%d" % c)
        make_tree_files(src, 20, 30_000, seed=10 + c)
        procs.append(subprocess.Popen([client.binary, "on", client.repo, "push", str(src)], env=client.env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True))
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    ids = client.snapshot_ids()
    assert len(ids) == 4
    for i, snap in enumerate(ids):
        client.ok("pull", "-to", tmp_path / ("out%d" % i), snap)
    client.ok("check", "-read-data")


def test_a_client_killed_mid_push(served, tmp_path):
    srv, client, _ = served
    src = tmp_path / "src"
    p = push_under_way(client, src, 2, tmp_path / "store")
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert srv.proc.poll() is None, "the server died with its client"
    client.ok("check")
    snap = client.push(src)
    client.ok("check", "-read-data")
    client.ok("pull", "-to", tmp_path / "out", snap)


def test_the_server_killed_mid_push(plakar, served, tmp_path, tokens):
    srv, client, _ = served
    src = tmp_path / "src"
    p = push_under_way(client, src, 3, tmp_path / "store")
    srv.stop(signal.SIGKILL)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 1, err
    lines = err.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("plakar: "), err
    assert "plakar://" in lines[0]
    # Restarted on the same store: it checks clean and the next push completes.
    again = Server(plakar, tmp_path / "store", tokens[0])
    try:
        c2 = client.with_repo(again.uri)
        c2.ok("check")
        snap = c2.push(src)
        c2.ok("check", "-read-data")
        c2.ok("pull", "-to", tmp_path / "out", snap)
    finally:
        again.stop()


def test_wrong_or_missing_token(served):
    srv, client, toks = served
    bad = as_token(client, "client-rw:" + "0" * 64)
    r = bad.fails("ls")
    assert "authentication failed" in r.stderr
    r = as_token(client, "client-nobody:" + "1" * 64).fails("ls")
    assert "authentication failed" in r.stderr
    env = dict(client.env)
    env.pop("PLAKAR_TOKEN", None)
    r = Plakar(client.binary, env, client.repo).fails("ls")
    assert "PLAKAR_TOKEN" in r.stderr
    r = as_token(client, "garbage").fails("ls")
    assert "NAME:SECRET" in r.stderr
    client.ok("ls")


def test_read_only_and_append_only_tokens(served, tmp_path):
    srv, client, toks = served
    src = tmp_path / "src"
    make_tree_files(src, 5, 10_000, seed=4)
    snap = client.push(src)
    ro = as_token(client, toks["ro"])
    assert ro.snapshot_ids() == [snap]
    ro.ok("pull", "-to", tmp_path / "out", snap)
    r = ro.fails("push", src)
    assert "read-only" in r.stderr
    ro.fails("rm", snap)
    ap = as_token(client, toks["append"])
    snap2 = ap.push(src)
    r = ap.fails("rm", snap)
    assert "append-only" in r.stderr
    ap.fails("gc")
    assert set(client.snapshot_ids()) == {snap, snap2}
    client.ok("check")


def test_bad_server_arguments(plakar, tmp_path, tokens):
    path, _ = tokens
    store = tmp_path / "store"
    r = plakar.fails("server", "-tokens", path, "-listen", "nonsense", repo=store)
    assert "HOST:PORT" in r.stderr
    r = plakar.fails("server", "-tokens", tmp_path / "missing", repo=store)
    assert "missing" in r.stderr
    os.chmod(path, 0o644)
    r = plakar.fails("server", "-tokens", path, repo=store)
    assert "chmod 600" in r.stderr
    os.chmod(path, 0o600)
    r = plakar.fails("server", "-tokens", path, repo="plakar://127.0.0.1:1")
    assert "local store" in r.stderr
    r = plakar.fails("token", "-rights", "admin", "-tokens", path, "x", repo=None)
    assert "rights" in r.stderr
    plakar.fails("token", "-tokens", path, repo=None, code=2)
    # The port is taken.
    srv = Server(plakar, store, path)
    try:
        r = plakar.fails("server", "-tokens", path, "-listen", srv.addr, repo=store)
        assert "cannot listen" in r.stderr
    finally:
        srv.stop()


def children_of(pid):
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        return [int(x) for x in f.read().split()]


def proc_info(pid):
    with open("/proc/%d/comm" % pid) as f:
        comm = f.read().strip()
    uid = None
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                uid = [int(x) for x in line.split()[1:]]
    return comm, uid, os.readlink("/proc/%d/root" % pid)


def test_processes_and_privileges(served, tmp_path):
    """The server runs as a parent, a network process and a store process. As root, the
    network process is unprivileged and chrooted to an empty directory, and the store process
    chrooted to the repository; otherwise the server says it runs without the drop."""
    srv, client, _ = served
    client.ok("ls")
    kids = {}
    for pid in children_of(srv.proc.pid):
        comm, uid, root = proc_info(pid)
        kids[comm] = (pid, uid, root)
    assert set(kids) == {"plakar: net", "plakar: store"}, kids
    net_pid, net_uid, net_root = kids["plakar: net"]
    store_pid, store_uid, store_root = kids["plakar: store"]
    # The network process: no new privileges, a system-call filter (Seccomp 2), and as root an
    # empty capability bounding set.
    status = {}
    with open("/proc/%d/status" % net_pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            status[k] = v.strip()
    assert status["NoNewPrivs"] == "1" and status["Seccomp"] == "2", status
    if IS_ROOT:
        assert int(status["CapBnd"], 16) == 0, status
    if IS_ROOT:
        import pwd
        expected = None
        for name in ("_plakar", "nobody"):
            try:
                expected = pwd.getpwnam(name).pw_uid
                break
            except KeyError:
                continue
        assert net_uid == [expected] * 4, net_uid
        assert net_root != "/"
        assert os.listdir("/proc/%d/root/" % net_pid) == []
        assert store_root == str(tmp_path / "store")
    else:
        assert net_root == "/" and store_root == "/"
        assert net_uid[0] == os.geteuid()
    # The network process killed: the whole server stops and says which process ended it.
    os.kill(net_pid, signal.SIGKILL)
    rc = srv.proc.wait(timeout=30)
    log = srv.proc.stderr.read().decode()
    assert rc == 1, log
    assert "net" in log and "killed by signal 9" in log, log
    assert len([l for l in log.splitlines() if l.startswith("plakar: ")]) == 1, log
    # The store is intact: a new server serves it and it checks clean.


@pytest.fixture
def certificate(plakar, tmp_path):
    """A certificate for 127.0.0.1 made by `plakar tls-cert`: (cert, key, pin)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    r = plakar.run("tls-cert", "-name", "127.0.0.1", "-days", "2", cert, key, repo=None)
    assert r.returncode == 0, r
    pin = r.out.strip()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", pin), pin
    assert os.stat(key).st_mode & 0o777 == 0o600
    return cert, key, pin


def test_tls_end_to_end(plakar, tmp_path, tokens, certificate):
    """Every connection in TLS, through the privilege-separated server (as root: the network
    process chrooted to an empty directory holds the TLS session)."""
    path, toks = tokens
    cert, key, pin = certificate
    srv = Server(plakar, tmp_path / "store", path, extra=("-tls-cert", cert, "-tls-key", key))
    try:
        assert "TLS, certificate " + pin in srv.first_line, srv.first_line
        env = dict(plakar.env)
        env["PLAKAR_TOKEN"] = toks["rw"]
        uri = "plakar+tls://%s?pin=%s" % (srv.addr, pin)
        client = Plakar(plakar.binary, env, uri)
        client.ok("create", "-kdf-log2-n", "10")
        src = tmp_path / "src"
        make_tree_files(src, 20, 40_000, seed=7)
        snap = client.push(src)
        client.ok("pull", "-to", tmp_path / "out", snap)
        for f in src.rglob("*"):
            if f.is_file():
                assert same_content(f, tmp_path / "out" / f.relative_to("/"))
        client.ok("check", "-read-data")
        # No pin: the certificate checked against the authorities in $PLAKAR_TLS_CA.
        env_ca = dict(env)
        env_ca["PLAKAR_TLS_CA"] = str(cert)
        by_ca = Plakar(plakar.binary, env_ca, "plakar+tls://" + srv.addr)
        assert by_ca.snapshot_ids() == [snap]
        # ... and against the system's authorities, which do not know it: refused.
        r = Plakar(plakar.binary, env, "plakar+tls://" + srv.addr).fails("ls")
        assert "TLS certificate is refused" in r.stderr
        assert len(r.stderr_lines()) == 1
        # Another pin: refused before the token is proven.
        other = "sha256:" + "0" * 64
        r = Plakar(plakar.binary, env, "plakar+tls://%s?pin=%s" % (srv.addr, other)).fails("ls")
        assert "not the pinned " + other in r.stderr
        assert len(r.stderr_lines()) == 1
        # A client in the clear is told what to use.
        r = Plakar(plakar.binary, env, "plakar://" + srv.addr).fails("ls")
        assert "TLS only" in r.stderr and "plakar+tls://" in r.stderr
        assert len(r.stderr_lines()) == 1
        client.ok("ls")
    finally:
        assert srv.stop() == 0, srv.log


def test_tls_bad_arguments(plakar, tmp_path, tokens, certificate):
    path, _ = tokens
    cert, key, pin = certificate
    store = tmp_path / "store"
    plakar.fails("server", "-tokens", path, "-tls-cert", cert, repo=store, code=2)
    r = plakar.fails("server", "-tokens", path, "-tls-cert", tmp_path / "none.pem", "-tls-key", key, repo=store)
    assert "none.pem" in r.stderr
    os.chmod(key, 0o644)
    r = plakar.fails("server", "-tokens", path, "-tls-cert", cert, "-tls-key", key, repo=store)
    assert "chmod 600" in r.stderr
    os.chmod(key, 0o600)
    other_cert, other_key = tmp_path / "c2.pem", tmp_path / "k2.pem"
    assert plakar.run("tls-cert", "-name", "localhost", other_cert, other_key, repo=None).returncode == 0
    r = plakar.fails("server", "-tokens", path, "-tls-cert", cert, "-tls-key", other_key, repo=store)
    assert "is not the key of" in r.stderr
    # A certificate or key is never replaced.
    before = key.read_bytes()
    r = plakar.fails("tls-cert", "-name", "127.0.0.1", tmp_path / "c3.pem", key, repo=None)
    assert "already exists" in r.stderr
    assert key.read_bytes() == before and not (tmp_path / "c3.pem").exists()
    plakar.fails("tls-cert", cert, repo=None, code=2)
    plakar.fails("tls-cert", "-days", "0", tmp_path / "c4.pem", tmp_path / "k4.pem", repo=None, code=2)
    r = plakar.fails("tls-cert", "-name", "a b", tmp_path / "c5.pem", tmp_path / "k5.pem", repo=None)
    assert "malformed name" in r.stderr
    r = plakar.fails("ls", repo="plakar+tls://127.0.0.1:1?pin=sha256:12")
    assert "pin" in r.stderr


def memory_holds(pid, needles):
    """Which of the byte strings appear in the writable memory of process pid (None when its
    memory cannot be read here)."""
    found = set()
    try:
        maps = open("/proc/%d/maps" % pid).read().splitlines()
        mem = open("/proc/%d/mem" % pid, "rb", buffering=0)
    except OSError:
        return None
    with mem:
        for line in maps:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            if "rw" not in fields[1] or hi - lo > 1 << 30:
                continue
            try:
                mem.seek(lo)
                data = mem.read(hi - lo)
            except OSError:
                continue
            for n in needles:
                if n in data:
                    found.add(n)
    return found


def test_the_network_process_holds_no_secret(served, tmp_path):
    """The tokens live in the store process, with the gate; the network process, which parses
    every byte from the network, wiped its inherited copy before serving."""
    srv, client, toks = served
    client.ok("ls")
    secrets = []
    for t in toks.values():
        hexsecret = t.split(":", 1)[1]
        secrets += [hexsecret.encode(), bytes.fromhex(hexsecret)]
    kids = {}
    for pid in children_of(srv.proc.pid):
        kids[proc_info(pid)[0]] = pid
    in_store = memory_holds(kids["plakar: store"], secrets)
    if in_store is None:
        pytest.skip("the memory of another process cannot be read here")
    assert any(len(s) == 32 for s in in_store), "the scan finds the gate's tokens in the store process"
    assert memory_holds(kids["plakar: net"], secrets) == set()


def test_a_damaged_pack_in_the_served_store(served, tmp_path):
    """A pack cut short in the store a privilege-separated server holds: ranged reads past its
    end fail in the store process and reach the client as one clear error; the rest of the
    snapshot still restores."""
    srv, client, _ = served
    src = tmp_path / "src"
    make_tree_files(src, 40, 200_000, seed=9)
    snap = client.push(src)
    packs = sorted((p for p in (tmp_path / "store" / "packs").rglob("*") if p.is_file()),
                   key=lambda p: p.stat().st_size)
    victim = packs[-1]
    with open(victim, "r+b") as f:
        f.truncate(victim.stat().st_size // 2)
    r = client.run("check", "-read-data")
    assert r.returncode == 1 and "is truncated" in r.stderr, r
    assert all(l.startswith("plakar: ") for l in r.stderr_lines()), r
    r = client.run("pull", "-to", tmp_path / "out", snap)
    assert r.returncode != 0, r
    assert r.stderr.strip(), r
    assert srv.proc.poll() is None, "the server died"
    restored = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    for p in restored:
        assert same_content(p, "/" / p.relative_to(tmp_path / "out")), p


def test_append_only_token_cannot_substitute_content(served, tmp_path):
    """An append-only token holder (who holds the key) stores other bytes under the ids of
    existing chunks, in a new pack, and an index segment listing its copies first: every
    later read still returns what the snapshot's writer stored (the plaintext is checked
    against its id, the genuine copy is used), and pull names the bad copies as warnings."""
    srv, client, toks = served
    src = tmp_path / "src"
    src.mkdir()
    (src / "small").write_text("genuine small file\n")
    big = os.urandom(3 << 20)
    (src / "big").write_bytes(big)
    snap = client.push(src)
    env = dict(client.env)
    env["PLAKAR_TOKEN"] = toks["append"]
    from conftest import PASSPHRASE
    r = subprocess.run([os.environ["PLAKAR_FORGE"], srv.uri, PASSPHRASE, "substitute", "-"], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert r.returncode == 0 and int(r.stdout) >= 2, r
    out = tmp_path / "out"
    r = client.run("pull", "-rebase", "-to", out, snap_path(snap, src), global_args=("-no-cache",))
    assert r.returncode == 0, r
    assert (out / "src" / "small").read_text() == "genuine small file\n"
    assert (out / "src" / "big").read_bytes() == big
    assert all("warning" in line and "does not match its id" in line for line in r.stderr_lines()), r
    r = client.run("cat", snap_path(snap, src / "small"), global_args=("-no-cache",))
    assert r.returncode == 0 and r.stdout == b"genuine small file\n", r
    r = client.run("check", "-read-data", global_args=("-no-cache",))
    assert r.returncode == 1 and "does not match its id" in r.stderr, r


@pytest.mark.skipif(not IS_ROOT, reason="the chroot of the network process is made only as root")
def test_stale_chroot_of_a_killed_server_is_removed(plakar, tmp_path, tokens):
    """kill -9 of the server's parent leaves its empty chroot directory in /tmp: the next
    server removes it (and only empty ones of processes that no longer run)."""
    path, toks = tokens
    srv = Server(plakar, tmp_path / "store", path)
    mine = [d for d in os.listdir("/tmp") if d.startswith("plakar-server-%d-" % srv.proc.pid)]
    assert len(mine) == 1, os.listdir("/tmp")
    srv.stop(signal.SIGKILL)
    # the parent is gone; its children follow once they notice
    deadline = time.time() + 10
    while time.time() < deadline and any(os.path.basename(os.readlink("/proc/%s/exe" % p)) == "plakar"
                                         for p in os.listdir("/proc") if p.isdigit()
                                         and os.path.exists("/proc/%s/exe" % p)
                                         and str(srv.proc.pid) in open("/proc/%s/stat" % p).read().split()[3:4]):
        time.sleep(0.1)
    assert os.path.isdir("/tmp/" + mine[0])
    busy = "/tmp/plakar-server-%d-keepme" % os.getpid()  # a live pid: kept
    os.makedirs(busy, exist_ok=True)
    try:
        srv2 = Server(plakar, tmp_path / "store", path)
        try:
            assert not os.path.exists("/tmp/" + mine[0])
            assert os.path.isdir(busy)
        finally:
            srv2.stop()
    finally:
        os.rmdir(busy)


class Relay:
    """A man in the middle between clients and a server on 127.0.0.1: it parses the frames
    each way (header, payload, and past the two handshake frames of each direction the tag it
    cannot forge) and hands each to rewrite(conn, way, n, frame), which returns the frames to
    pass on (a list of (type, flags, id, payload, tag)). way is "up" (client to server) or
    "down"; n counts the frames of that way on that connection; conn is a dict shared by both
    ways of one connection."""

    HEADER = struct.Struct("<IBBHQ")

    def __init__(self, target, rewrite):
        self.target = target
        self.rewrite = rewrite
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.uri = "plakar://" + self.addr
        self.threads = []
        self.stopping = False
        self.connections = 0
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            host, port = self.target.split(":")
            s = socket.create_connection((host, int(port)))
            self.connections += 1
            conn = {}
            for way, a, b in (("up", c, s), ("down", s, c)):
                t = threading.Thread(target=self._pump, args=(conn, way, a, b), daemon=True)
                t.start()
                self.threads.append(t)

    def _pump(self, conn, way, src, dst):
        buf = b""
        n = 0
        try:
            while True:
                data = src.recv(1 << 16)
                if not data:
                    break
                buf += data
                while True:
                    tag_len = 16 if n >= 2 else 0
                    if len(buf) < 16:
                        break
                    length, typ, flags, _, fid = self.HEADER.unpack_from(buf)
                    if len(buf) < 16 + length + tag_len:
                        break
                    payload = buf[16:16 + length]
                    tag = buf[16 + length:16 + length + tag_len]
                    buf = buf[16 + length + tag_len:]
                    for typ2, flags2, id2, payload2, tag2 in self.rewrite(conn, way, n, (typ, flags, fid, payload, tag)):
                        dst.sendall(self.HEADER.pack(len(payload2), typ2, flags2, 0, id2) + payload2 + tag2)
                    n += 1
        except OSError:
            pass
        # This way is over; the other goes on (what the server says before it closes reaches
        # the client).
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        self.stopping = True
        self.sock.close()


OK, OPEN, PUT, LIST = 8, 17, 18, 22


def passing(conn, way, n, frame):
    return [frame]


@pytest.mark.parametrize("attack", ["plaintext-config", "challenge-limits", "replayed-frame", "flipped-data",
                                    "dropped-frame", "reordered-frames"])
def test_a_rewriting_relay_is_caught(plakar, served, tmp_path, attack):
    """Without TLS, a relay that rewrites what travels is caught by the frame tags: the client
    fails with one line and nothing reaches the store. "plaintext-config" is the attack that
    made a client push plaintext: the open answer replaced by a plaintext CONFIG, the listings
    emptied. "flipped-data" changes a frame of an object a pull reads, once: the client drops
    that connection; a read ahead is read again on a new one, a read it waits for fails its
    file; every file it restores is right.
    The last two drop or swap frames of a pack a push sends: the server refuses the frame after,
    and the push fails."""
    srv, client, _ = served
    src = tmp_path / "src"
    make_tree_files(src, 10, 3_000_000, seed=3)
    snap = client.push(src)
    plain = tmp_path / "plain"
    plakar.ok("create", "-no-encryption", repo=plain, unset=["PLAKAR_PASSPHRASE"])
    plain_config = (plain / "CONFIG").read_bytes()

    once = {"done": False, "held": None}
    MORE = 1

    def rewrite(conn, way, n, frame):
        typ, flags, fid, payload, tag = frame
        # An object a pull reads; a frame of a pack a push sends, followed by others.
        data = way == "down" and typ == OK and len(payload) > 4096 and not once["done"]
        sent = way == "up" and typ == PUT and flags & MORE and not once["done"]
        if attack == "plaintext-config":
            if way == "up" and typ in (OPEN, LIST):
                conn.setdefault("ids", {})[fid] = typ
            if way == "down" and typ == OK and fid in conn.get("ids", {}):
                payload = plain_config if conn["ids"][fid] == OPEN else b"\x00"
        elif attack == "challenge-limits" and way == "down" and n == 0:
            # The challenge's frame limit halved: still a valid challenge.
            limit = struct.unpack_from("<I", payload, 6)[0]
            payload = payload[:6] + struct.pack("<I", limit // 2) + payload[10:]
        elif attack == "replayed-frame" and way == "down" and n == 3:
            return [frame, frame]
        elif attack == "flipped-data" and data:
            once["done"] = True
            payload = payload[:100] + bytes([payload[100] ^ 1]) + payload[101:]
        elif attack == "dropped-frame" and sent:
            once["done"] = True
            return []
        elif attack == "reordered-frames" and way == "up" and once["held"] is not None:
            held, once["held"] = once["held"], None
            return [frame, held]
        elif attack == "reordered-frames" and sent:
            once["done"] = True
            once["held"] = frame
            return []
        return [(typ, flags, fid, payload, tag)]

    relay = Relay(srv.addr, rewrite)
    try:
        # A client that never met this repository: no cache to tell it the repository is
        # encrypted (the frame tags alone must catch the downgrade).
        env = dict(client.env)
        env["XDG_CACHE_HOME"] = str(tmp_path / "fresh-cache")
        victim = Plakar(client.binary, env, relay.uri)
        before = sorted(p.relative_to(tmp_path / "store") for p in (tmp_path / "store").rglob("*"))
        if attack == "flipped-data":
            r = victim.run("pull", "-to", tmp_path / "out", snap)
            assert once["done"] and relay.connections >= 2
            # A read ahead is best-effort: read again on a new connection. A read the pull
            # waits for fails its file, named with the reason, and nothing else; never a
            # changed byte.
            if r.returncode != 0:
                assert r.returncode == 3, r
                lines = r.stderr_lines()
                assert len(lines) == 2 and "a frame failed authentication" in lines[0], r
                assert lines[1] == "plakar: pull: 1 item could not be restored", r
            for f in src.rglob("*"):
                out = tmp_path / "out" / f.relative_to("/")
                failed = r.returncode != 0 and ("pull: %s: " % out) in r.stderr
                if f.is_file() and not failed:
                    assert same_content(f, out)
        else:
            new = tmp_path / "new"
            make_tree_files(new, 10, 3_000_000, seed=4)
            r = victim.run("push", new)
            assert r.returncode != 0, r
            assert_one_error_line(r)
            assert "a frame failed authentication" in r.stderr, r
        after = sorted(p.relative_to(tmp_path / "store") for p in (tmp_path / "store").rglob("*"))
        if attack in ("plaintext-config", "challenge-limits", "replayed-frame"):
            # Caught at the first answer: nothing written at all.
            assert [p for p in after if "lock" not in str(p)] == [p for p in before if "lock" not in str(p)]
        client.ok("check")
        # The same client through a relay that changes nothing works.
        relay.close()
        relay = Relay(srv.addr, passing)
        victim = Plakar(client.binary, env, relay.uri)
        victim.ok("ls")
        assert client.snapshot_ids() == [snap]
    finally:
        relay.close()
