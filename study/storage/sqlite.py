"""SQLite files: refused before anything writes to them when they are not a usable database, then opened in
WAL mode with ``BEGIN IMMEDIATE`` transactions (readers beside writers, no lock upgrades).

A database in a place this process cannot write (a read-only file, folder or mount) is opened read-only and
immutable for the commands that only read; a command that writes is told the place is read-only, by path.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

from study.errors import UserInputError


def read_only_place(path: str) -> str | None:
    """Why the SQLite file at ``path`` cannot be written here (SQLite also writes its journal files beside
    it), or None. ``os.access`` asks the kernel, so a read-only mount counts for root too."""
    file = Path(path).absolute()
    if file.exists() and not os.access(file, os.W_OK):
        return f"{file} is read-only"
    folder = file.parent
    if folder.is_dir() and not os.access(folder, os.W_OK):
        return f"its folder {folder} is read-only"
    return None


def read_only_uri(path: str) -> str:
    """SQLite's URI for reading a file in a read-only place: read-only, and immutable (no locks, no
    ``-shm`` to create) unless a ``-wal`` file beside it holds recent writes, which SQLite then reads too."""
    file = Path(path).resolve()
    wal = Path(f"{file}-wal").is_file() and Path(f"{file}-shm").is_file()
    return f"file:{file}?mode=ro" + ("" if wal else "&immutable=1")


def check_sqlite_file(path: str, timeout: float = 5.0, *, read_only: bool = False) -> None:
    """A file that is not a usable SQLite database (random bytes, a text file, a database cut short) is
    refused before anything writes to it: read-only checks, the file left byte for byte as it was."""
    file = Path(path)
    if not file.is_file() or file.stat().st_size == 0:
        return  # none yet (or an empty file): SQLite creates the database
    with file.open("rb") as fh:
        header = fh.read(16)
    problem = None if header == b"SQLite format 3\x00" else "it is not a SQLite database (wrong file header)"
    if problem is None:
        try:
            uri = read_only_uri(path) if read_only else f"file:{file.resolve()}?mode=ro"
            con = sqlite3.connect(uri, uri=True, timeout=timeout)
            try:
                con.execute("SELECT count(*) FROM sqlite_master").fetchone()
                result = con.execute("PRAGMA quick_check").fetchone()
                if result is None or result[0] != "ok":
                    problem = f"SQLite's integrity check failed ({result[0] if result else 'no answer'})"
            finally:
                con.close()
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                return  # busy, not broken: the retries that follow handle a lock
            problem = f"SQLite cannot read it ({exc})"
        except sqlite3.DatabaseError as exc:
            problem = f"SQLite cannot read it ({exc})"
    if problem:
        raise UserInputError(
            f"{file} is not a usable study database: {problem}. It was left exactly as it is. If you have a "
            "copy, restore it; otherwise move this file away and start again with `study run` (or point "
            "--storage at another database, e.g. sqlite:///other.db)."
        )


def prepare_sqlite(path: str, timeout: float) -> None:
    """WAL mode lets readers (the dashboard, ``study status``) read while a worker writes."""
    check_sqlite_file(path, timeout)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=timeout)
    try:
        con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()


def immediate_transactions(engine: Any) -> None:
    """Every SQLite transaction takes the write lock when it begins, so that the busy timeout applies.

    With SQLite's default deferred transactions a worker that read and then writes fails at once with
    "database is locked" when another worker committed in between; the busy timeout never gets a chance.
    """
    import sqlalchemy  # ~0.15 s: journal-file storages never load SQLAlchemy (see study.storage)

    @sqlalchemy.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver issues no BEGIN of its own

    @sqlalchemy.event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the listeners existed are replaced
