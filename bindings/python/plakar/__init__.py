"""plakar: deduplicating, encrypted, compressed backups.

    import plakar

    with plakar.create("/backups/repo", "passphrase") as repo:
        snap = repo.push("/home/me/projects", tags=["daily"])
        for entry in snap.ls(snap.paths[0]):
            print(entry.name, entry.size)
        data = snap.cat(snap.paths[0] + "/README")

The package wraps libplakar's C ABI. Every blocking call releases the GIL. Errors are
raised as PlakarError subclasses (see plakar._errors). Paths and names are str decoded
with os.fsdecode (undecodable bytes become surrogates); str, bytes and os.PathLike are
accepted wherever a path is expected.
"""

from __future__ import annotations

import os
from typing import Iterable, Optional, Tuple, Union

from . import _plakar
from ._check import CheckProblem, CheckReport, GcReport
from ._entry import Entry, EntryType
from ._errors import (
    AmbiguousError,
    AuthError,
    CanceledError,
    CorruptError,
    ExistsError,
    InvalidArgumentError,
    LockedError,
    NotFoundError,
    PartialError,
    PlakarError,
    UnsupportedError,
    VersionError,
)
from ._progress import Event, EventKind, ProgressCallback
from ._repository import Passphrase, Repository, SnapshotRef, _passphrase
from ._snapshot import Change, PathArg, Snapshot, SnapshotFile

__all__ = [
    "__version__", "version", "FORMAT_VERSION",
    "create", "open", "push", "default_repository", "run_agent", "stop_agent",
    "Server", "new_token", "add_token", "new_tls_cert",
    "Repository", "Snapshot", "SnapshotFile", "Change", "Entry", "EntryType", "Event", "EventKind",
    "CheckReport", "CheckProblem", "GcReport",
    "PlakarError", "NotFoundError", "AuthError", "CorruptError", "LockedError", "ExistsError",
    "InvalidArgumentError", "AmbiguousError", "CanceledError", "PartialError", "VersionError",
    "UnsupportedError",
    "PathArg", "SnapshotRef", "Passphrase", "ProgressCallback",
]

#: The version of these bindings (and of the C header they were built against).
__version__: str = _plakar.__version__
#: The repository format version the library writes.
FORMAT_VERSION: int = _plakar.FORMAT_VERSION


# The public classes present themselves as plakar.X (reprs, tracebacks, pickling).
for _cls in (Repository, Snapshot, SnapshotFile, Entry, EntryType, Event, EventKind, CheckReport, CheckProblem, GcReport,
             PlakarError, NotFoundError, AuthError, CorruptError, LockedError, ExistsError,
             InvalidArgumentError, AmbiguousError, CanceledError, PartialError, VersionError,
             UnsupportedError):
    _cls.__module__ = __name__
del _cls


def version() -> tuple[int, int, int]:
    """The (major, minor, patch) version of the libplakar loaded at run time."""
    major, minor, patch = _plakar.version()
    return (major, minor, patch)


def default_repository() -> str:
    """The default repository: $PLAKAR_REPOSITORY if set, else ~/.plakar (as the command line).
    The library itself reads no environment: this module does, and passes what it found."""
    env = os.environ.get("PLAKAR_REPOSITORY")
    if env:
        return env
    home = os.environ.get("HOME")
    if not home:
        raise InvalidArgumentError("neither PLAKAR_REPOSITORY nor HOME is set")
    return os.path.join(home, ".plakar")


def _uri(uri: PathArg) -> bytes:
    return os.fsencode(uri)


def _opt_path(value: Optional[PathArg], variable: Optional[str] = None) -> Optional[bytes]:
    """value, else $variable when set and not empty, as bytes; None when neither."""
    if value is None and variable is not None:
        value = os.environ.get(variable) or None
    return None if value is None else os.fsencode(value)


def _credentials(token: Optional[Union[str, bytes]], token_file: Optional[PathArg],
                 tls_ca: Optional[PathArg]) -> tuple[Optional[bytes], Optional[bytes], Optional[bytes]]:
    """The credentials of a plakar:// store: the arguments, else $PLAKAR_TOKEN,
    $PLAKAR_TOKEN_FILE (else ~/.config/plakar/token) and $PLAKAR_TLS_CA, as the command line."""
    tok = _opt_path(token, "PLAKAR_TOKEN")
    tok_file = None
    if tok is None:
        tok_file = _opt_path(token_file, "PLAKAR_TOKEN_FILE")
        if tok_file is None and os.environ.get("HOME"):
            tok_file = os.fsencode(os.path.join(os.environ["HOME"], ".config", "plakar", "token"))
    return tok, tok_file, _opt_path(tls_ca, "PLAKAR_TLS_CA")


def _cache_dir(cache_dir: Optional[PathArg]) -> Optional[bytes]:
    if cache_dir is not None:
        return os.fsencode(cache_dir)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return os.fsencode(os.path.join(xdg, "plakar")) if xdg and xdg.startswith("/") else None


def create(uri: PathArg, passphrase: Optional[Passphrase] = None, *, encryption: bool = True,
           kdf_log2_n: int = 0, compression_level: int = 0, chunk_min: int = 0,
           chunk_avg: int = 0, chunk_max: int = 0, pack_size: int = 0,
           token: Optional[Union[str, bytes]] = None, token_file: Optional[PathArg] = None,
           tls_ca: Optional[PathArg] = None) -> Repository:
    """Creates a repository at uri and returns it open.

    An encrypted repository (the default) needs a passphrase; ``encryption=False`` makes
    a plaintext one (still keyed and checked). kdf_log2_n is the scrypt cost (log2 N;
    0 = the default, 16; lower values only for tests). compression_level is the zstd
    level (1..19, 0 = 3). chunk_* and pack_size are in bytes, 0 meaning the defaults.
    token, token_file, tls_ca: as for open(), on a plakar:// server.
    Raises ExistsError when a repository or a non-empty directory is already there.
    """
    return Repository(_plakar.create(_uri(uri), _passphrase(passphrase),
                                     bool(encryption), kdf_log2_n, compression_level,
                                     chunk_min, chunk_avg, chunk_max, pack_size,
                                     *_credentials(token, token_file, tls_ca)))


def open(uri: Optional[PathArg] = None, passphrase: Optional[Passphrase] = None, *,
         cpu: int = 0, cache: bool = True, cache_dir: Optional[PathArg] = None,
         agent: Optional[PathArg] = None, token: Optional[Union[str, bytes]] = None,
         token_file: Optional[PathArg] = None, tls_ca: Optional[PathArg] = None) -> Repository:
    """Opens an existing repository (default: default_repository()).

    Plaintext repositories need no passphrase, and refuse one (AuthError: a replaced CONFIG
    must not make a client that expects encryption store plaintext); one this client saw
    encrypted before is refused as plaintext (CorruptError). cpu is the CPU budget of push and pull:
    threads computing at once (0: one less than the cores, at least one; clamped to the
    cores). cache=False bypasses the local cache. agent: a key agent's socket
    (`plakar agent`, run_agent()): the master key is asked there first, so no passphrase
    is needed and no key derivation runs; a passphrase that opens the repository hands the
    key to it. cache_dir: where the caches of repositories live (default $XDG_CACHE_HOME/plakar,
    else ~/.cache/plakar). On a plakar:// or plakar+tls:// server: token ("NAME:SECRET") or
    token_file (default $PLAKAR_TOKEN, else $PLAKAR_TOKEN_FILE, else ~/.config/plakar/token),
    tls_ca: PEM authorities for a certificate without a pin (default $PLAKAR_TLS_CA). Each
    handle has its own: a program may talk to several servers with different tokens.
    Raises NotFoundError when nothing is there, AuthError on a wrong or missing passphrase
    or token, CorruptError when what is there is not a repository.
    """
    return Repository(_plakar.open(_uri(default_repository() if uri is None else uri), _passphrase(passphrase),
                                   cpu, cache, _cache_dir(cache_dir), None if agent is None else _uri(agent),
                                   *_credentials(token, token_file, tls_ca)))


def run_agent(socket: PathArg, idle_timeout: int = 3600) -> None:
    """Runs a key agent on a new UNIX socket at `socket` until stop_agent() or until
    idle_timeout seconds pass without a request (0: never); blocks, with the GIL released,
    so run it in a thread or a process of its own. Only processes of the same user get
    answers. Raises ExistsError when something is already at that path."""
    _plakar.run_agent(_uri(socket), int(idle_timeout))


def stop_agent(socket: PathArg) -> None:
    """Asks the agent at `socket` to forget its keys and exit. NotFoundError when none answers."""
    _plakar.stop_agent(_uri(socket))


def push(uri: Optional[PathArg], path_or_paths: Union[PathArg, Iterable[PathArg]],
         passphrase: Optional[Passphrase] = None, *, cpu: int = 0, cache: bool = True,
         tags: Iterable[Union[str, bytes]] = (), progress: Optional[ProgressCallback] = None,
         command_line: Optional[Union[str, bytes]] = None) -> Snapshot:
    """Opens the repository at uri, pushes the path(s) into a new snapshot, closes the
    repository and returns the snapshot (still usable: it keeps what it needs open)."""
    with open(uri, passphrase, cpu=cpu, cache=cache) as repo:
        return repo.push(path_or_paths, tags=tags, progress=progress, command_line=command_line)


class Server:
    """A plakar server (`plakar server`): serves the store at `repository` to plakar://
    clients that prove a token of `tokens_file` (lines "NAME RIGHTS SECRET", mode 0600;
    new_token() makes them). The server never needs the passphrase: it carries encrypted
    objects only. `listen` is "HOST:PORT" (default 127.0.0.1:9876; port 0 picks a free one).

    With `tls_cert` and `tls_key` (PEM files; new_tls_cert() makes them) every connection is
    TLS 1.3, and clients reach it as plakar+tls://HOST:PORT?pin=PIN (`uri` says it whole).

    run() serves until stop() is called from another thread. As a context manager it serves
    from a thread of its own and stops on exit::

        with plakar.Server("/backups/repo", "/etc/plakar/tokens", "127.0.0.1:0") as srv:
            print(srv.uri)
    """

    def __init__(self, repository: PathArg, tokens_file: PathArg, listen: Optional[str] = None,
                 workers: int = 0, max_connections: int = 0, *, tls_cert: Optional[PathArg] = None,
                 tls_key: Optional[PathArg] = None) -> None:
        self._h = _plakar.server_new(_uri(repository), _uri(tokens_file), listen, int(workers),
                                     int(max_connections),
                                     None if tls_cert is None else _uri(tls_cert),
                                     None if tls_key is None else _uri(tls_key))
        self._thread: Optional["threading.Thread"] = None

    @property
    def address(self) -> str:
        """HOST:PORT listened on."""
        return self._h.address

    @property
    def tls_pin(self) -> Optional[str]:
        """The pin of the TLS certificate ("sha256:..."), None without TLS."""
        return self._h.tls_pin or None

    @property
    def uri(self) -> str:
        """plakar://HOST:PORT, or with TLS plakar+tls://HOST:PORT?pin=PIN, for plakar.open()."""
        pin = self.tls_pin
        if pin:
            return "plakar+tls://" + self.address + "?pin=" + pin
        return "plakar://" + self.address

    def run(self) -> None:
        """Serves until stop(); blocks (the GIL is released)."""
        self._h.run()

    def stop(self) -> None:
        """Makes run() return; open connections are closed. Any thread."""
        self._h.stop()

    def __enter__(self) -> "Server":
        import threading
        self._thread = threading.Thread(target=self.run, name="plakar-server", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


def new_tls_cert(cert_file: PathArg, key_file: PathArg, name: str = "localhost",
                 days: int = 3650) -> str:
    """Writes a new self-signed TLS certificate for a server (cert_file, mode 0644) and its key
    (key_file, mode 0600); neither may exist. name: the host name or IP address clients use.
    Returns the certificate's pin, "sha256:..."."""
    return _plakar.tls_cert_new(_uri(cert_file), _uri(key_file), name, int(days))


def new_token(name: str, rights: str = "rw") -> Tuple[str, str]:
    """A new random token: (the line for the server's tokens file, the client's
    "NAME:SECRET", given to open() as token=). rights: "rw", "ro" or "append"."""
    return _plakar.token_new(name, rights)


def add_token(tokens_file: PathArg, name: str, rights: str = "rw") -> str:
    """A new random token added to a server's tokens file (created with mode 0600 when absent,
    rewritten whole and renamed, so a running server never reads half of it); returns the
    client's "NAME:SECRET". ExistsError when the file already has a token of that name."""
    return _plakar.token_add(os.fsencode(tokens_file), name, rights)
