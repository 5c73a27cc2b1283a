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
from collections.abc import Iterator
from pathlib import Path

PASSWORD = "Zq7pgSecret42"


class NoPostgres(RuntimeError):
    """The server binaries are missing, or the server did not start."""


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgres(*, max_connections: int = 100, settings: tuple[str, ...] = ()) -> Iterator[str]:
    """The URL of a fresh server (database ``postgres``, user ``study``); ``NoPostgres`` where none starts."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
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
    port, data = _free_port(), folder / "data"
    options = " ".join([f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off",
                        f"-c max_connections={max_connections}", *(f"-c {s}" for s in settings)])

    def run(*cmd: str) -> None:
        subprocess.run([*prefix, *cmd], check=True, capture_output=True, timeout=120)

    try:
        run(initdb, "-D", str(data), "-U", "study", f"--pwfile={folder / 'pw'}", "--auth=scram-sha-256",
            "-E", "UTF8", "--no-sync")
        run(pg_ctl, "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t", "60", "start",
            "-o", options)
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise NoPostgres(f"could not start PostgreSQL: {exc.stderr.decode(errors='replace')[-300:]}"
                         ) from None
    try:
        yield f"postgresql://study:{PASSWORD}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], check=False,
                       capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)
