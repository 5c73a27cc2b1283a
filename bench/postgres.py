"""A throwaway PostgreSQL server for benchmarks and tests, started as ``tests/study/test_postgres.py`` starts
one: ``initdb`` into a temp folder, password authentication, a free port on 127.0.0.1, ``fsync=off``; run as
the ``postgres`` user when we are root. Stopped and deleted on exit."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

PASSWORD = "Zq7pgSecret42"


class NoPostgres(RuntimeError):
    """The server binaries are missing, or the server did not start."""


def pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres(*, max_connections: int = 100, settings: tuple[str, ...] = ()) -> Iterator[str]:
    """The URL of a fresh server (database ``postgres``, user ``study``); ``NoPostgres`` where none starts."""
    with postgres_server(max_connections=max_connections, settings=settings) as (url, _):
        yield url


@contextlib.contextmanager
def postgres_server(*, max_connections: int = 100, settings: tuple[str, ...] = ()
                    ) -> Iterator[tuple[str, Callable[[float], None]]]:
    """A fresh server on a free port with password authentication, run as ``postgres`` when we are root: its
    URL, and ``outage(seconds)``, which stops it (clients cut off) and starts it again. ``NoPostgres`` where
    none starts."""
    initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise NoPostgres("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    prefix: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="study-pg-"))
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise NoPostgres("running as root and there is no 'postgres' user to run the server") from None
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    (folder / "pw").write_text(PASSWORD)
    os.chmod(folder / "pw", 0o644)
    port, data = free_port(), folder / "data"
    options = " ".join([f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off",
                        f"-c max_connections={max_connections}", *(f"-c {s}" for s in settings)])
    start = (pg_ctl, "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t", "60", "start",
             "-o", options)

    def run(*cmd: str) -> None:
        subprocess.run([*prefix, *cmd], check=True, capture_output=True, timeout=120)

    def outage(seconds: float) -> None:
        run(pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop")
        time.sleep(seconds)
        run(*start)

    try:
        run(initdb, "-D", str(data), "-U", "study", f"--pwfile={folder / 'pw'}", "--auth=scram-sha-256",
            "-E", "UTF8", "--no-sync")
        run(*start)
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise NoPostgres(f"could not start PostgreSQL: {exc.stderr.decode(errors='replace')[-300:]}"
                         ) from None
    try:
        yield f"postgresql://study:{PASSWORD}@127.0.0.1:{port}/postgres", outage
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], check=False,
                       capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def pgbouncer(url: str, *, pool_size: int = 4) -> Iterator[str]:
    """PgBouncer in transaction mode in front of ``url`` (a server of ``postgres``): its URL, where the
    clients share ``pool_size`` server connections. ``NoPostgres`` where PgBouncer is not installed."""
    binary = shutil.which("pgbouncer") or next(iter(glob.glob("/usr/sbin/pgbouncer")), None)
    if binary is None:
        raise NoPostgres("PgBouncer is not installed")
    server = url.rsplit("@", 1)[1]  # 127.0.0.1:PORT/postgres
    host_port, _, database = server.partition("/")
    host, _, port = host_port.partition(":")
    folder = Path(tempfile.mkdtemp(prefix="study-pgbouncer-"))
    listen = free_port()
    (folder / "users.txt").write_text(f'"study" "{PASSWORD}"\n')
    (folder / "pgbouncer.ini").write_text(
        f"[databases]\n{database} = host={host} port={port} dbname={database}\n[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {listen}\nauth_type = plain\n"
        f"auth_file = {folder / 'users.txt'}\npool_mode = transaction\nmax_client_conn = 1000\n"
        f"default_pool_size = {pool_size}\nunix_socket_dir =\nlogfile = {folder / 'log'}\n"
        f"pidfile = {folder / 'pid'}\n")
    prefix: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        for path in (folder, *folder.iterdir()):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    proc = subprocess.Popen([*prefix, binary, str(folder / "pgbouncer.ini")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", listen), timeout=1):
                break
            if proc.poll() is not None:
                raise NoPostgres(f"PgBouncer did not start: {(folder / 'log').read_text()[-300:]}")
            time.sleep(0.1)
        yield f"postgresql://study:{PASSWORD}@127.0.0.1:{listen}/{database}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
