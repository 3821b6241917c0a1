"""A throw-away PostgreSQL cluster for tests: initdb, start, yield a URL, stop, remove.

The cluster trusts every local connection (no passwords), listens on a free TCP port on
127.0.0.1 and on a unix socket in its own directory, and runs with ``fsync=off``: it is fast
and must never hold data worth keeping. PostgreSQL refuses to run as root, so as root the
server runs as the ``postgres`` system user that Debian's ``postgresql`` package creates.

The binaries are looked up on ``PATH`` and then in ``/usr/lib/postgresql/<version>/bin``
(Debian keeps ``initdb`` and ``pg_ctl`` off ``PATH``). Without them
:class:`PostgresMissingError` is raised, naming the package to install: the fixtures turn it
into a failure, not a skip.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.pool import NullPool

__all__ = ["PostgresMissingError", "fresh_database", "postgres_cluster"]

#: The superuser the cluster is created with (``initdb -U``), whoever runs it.
SUPERUSER = "postgres"
#: The database :func:`postgres_cluster`'s URL names (created when the server is up).
DATABASE = "testbed"
#: The unprivileged system user the server runs as when the tests run as root.
_SYSTEM_USER = "postgres"
_DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
_CONF = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{socket_dir}'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 50
shared_buffers = 32MB
timezone = 'UTC'
log_min_messages = warning
"""


class PostgresMissingError(RuntimeError):
    """PostgreSQL's server binaries (or a user to run them as) are not on this machine."""


@dataclass(frozen=True)
class _Runner:
    """Runs the server's commands as ``user`` (None: as this process's user)."""

    bin_dir: Path
    user: str | None

    def run(self, tool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bin_dir / tool), *args]
        if self.user is not None:
            argv = ["runuser", "-u", self.user, "--", *argv]
        env = {**os.environ, "LC_ALL": "C", "LANG": "C", "TZ": "UTC"}
        return subprocess.run(
            argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
        )


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _bin_dir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``: PATH's (links resolved), else Debian's
    newest ``/usr/lib/postgresql/<version>/bin``."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).resolve().parent] if on_path is not None else []
    debian = sorted(Path("/").glob(_DEBIAN_BIN_GLOB.lstrip("/")), key=_version, reverse=True)
    for directory in [*candidates, *debian]:
        if all((directory / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return directory
    raise PostgresMissingError(
        "PostgreSQL's server binaries (initdb, pg_ctl, postgres) were not found on PATH or in "
        f"{_DEBIAN_BIN_GLOB}; install the Debian package `postgresql` "
        "(apt-get install postgresql, or run `make setup` as root)"
    )


def _version(bin_dir: Path) -> tuple[int, ...]:
    """``(15,)`` for ``/usr/lib/postgresql/15/bin``."""
    return tuple(int(part) for part in bin_dir.parent.name.split(".") if part.isdigit())


def _runner() -> _Runner:
    bin_dir = _bin_dir()
    if os.geteuid() != 0:
        return _Runner(bin_dir, None)
    try:
        pwd.getpwnam(_SYSTEM_USER)
    except KeyError:
        raise PostgresMissingError(
            f"PostgreSQL will not run as root and there is no `{_SYSTEM_USER}` user to run it "
            "as; install the Debian package `postgresql` (it creates the user)"
        ) from None
    if shutil.which("runuser") is None:
        raise PostgresMissingError("`runuser` is missing; install the Debian package `util-linux`")
    return _Runner(bin_dir, _SYSTEM_USER)


def _check(result: subprocess.CompletedProcess[str], what: str, log: Path | None = None) -> None:
    if result.returncode == 0:
        return
    tail = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
    raise RuntimeError(
        f"{what} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}{tail}"
    )


@contextmanager
def postgres_cluster(parent: Path | None = None) -> Iterator[str]:
    """Start a fresh cluster, yield ``postgresql+psycopg://postgres@127.0.0.1:PORT/testbed``.

    The cluster lives in a new directory under ``parent`` (default: the system's temp dir,
    which the ``postgres`` user can reach; pytest's ``tmp_path`` cannot be used as root, as it
    lies under a directory only root may enter). On exit the server is stopped with
    ``pg_ctl stop -m immediate`` and the directory removed.

    Raises:
        PostgresMissingError: no server binaries, or no unprivileged user to run them as root.
        RuntimeError: ``initdb`` or ``pg_ctl start`` failed (with their output and the log).
    """
    runner = _runner()
    root = Path(tempfile.mkdtemp(prefix="testbed-pg-", dir=parent))
    data, log = root / "data", root / "server.log"
    if runner.user is not None:
        entry = pwd.getpwnam(runner.user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    try:
        initdb_args = ("-D", str(data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8")
        result = runner.run("initdb", *initdb_args, "--locale=C", "--no-sync", cwd=root)
        _check(result, "initdb")
        port = _free_port()
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(_CONF.format(port=port, socket_dir=root))
        start = ("start", "-w", "-t", "60", "-D", str(data), "-l", str(log))
        _check(runner.run("pg_ctl", *start, cwd=root), "pg_ctl start", log)
        url = f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{port}/{DATABASE}"
        _create_database(url)
        yield url
    finally:
        if (data / "postmaster.pid").exists():  # also after a `pg_ctl start` that timed out
            runner.run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(data), cwd=root)
        shutil.rmtree(root, ignore_errors=True)


def _maintenance_engine(url: str) -> Engine:
    """An autocommit engine on the ``postgres`` database of ``url``'s server."""
    return create_engine(
        make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )


def _create_database(url: str) -> None:
    """``CREATE DATABASE`` the database ``url`` names."""
    name = make_url(url).database
    engine = _maintenance_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()


@contextmanager
def fresh_database(url: str, prefix: str = "t") -> Iterator[str]:
    """Create a new, empty database on ``url``'s server; yield its URL; drop it afterwards.

    ``CREATE DATABASE`` runs over a maintenance connection to the ``postgres`` database. The
    drop uses ``WITH (FORCE)``, so connections a test leaves open do not keep it alive.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    fresh = make_url(url).set(database=name).render_as_string(hide_password=False)
    _create_database(fresh)
    try:
        yield fresh
    finally:
        engine = _maintenance_engine(url)
        try:
            with engine.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            engine.dispose()
