"""Locks between processes: the creation lock (``study run`` creates a study and queues its first trials
while no other process can; on a journal file, also a worker's claim) and the file locks it is built from,
which also serialise a new SQLite file's schema creation. A worker's claim on a database takes no lock of
this module: it is one transaction under the study's row lock (``study.storage.claims``)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import optuna

from study.storage import optuna_private as private
from study.storage.urls import is_journal, journal_path, sqlite_path


@contextlib.contextmanager
def claim_lock(storage: optuna.storages.BaseStorage, url: str, study_name: str) -> Iterator[None]:
    """Held while a process creates a study (or, on a journal file, counts the trials and creates the next
    one), so that processes doing it at the same moment cannot both do it. A file lock for SQLite and journal
    files (one host), a PostgreSQL advisory lock for PostgreSQL (every host); elsewhere no lock, and the
    runner's rank check decides. The advisory lock holds a connection of its own, outside the storage's
    one-connection pool, for as long as the block runs: creation only, never a worker's claim."""
    engine = private.rdb_engine(storage)
    if engine is not None and engine.dialect.name == "postgresql":
        import sqlalchemy  # ~0.15 s: only PostgreSQL needs it here; journal storages never load it
        from sqlalchemy.pool import NullPool

        key = zlib.crc32(f"study-claim:{study_name}".encode()) - 2**31
        own = sqlalchemy.create_engine(engine.url, poolclass=NullPool)
        with own.connect() as conn:  # a transaction-scoped lock: a pooler in transaction mode keeps it
            conn.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
            try:
                yield
            finally:
                conn.rollback()  # ends the transaction, and the lock with it
        return
    path = journal_path(url) if is_journal(url) else (sqlite_path(url) if url.startswith("sqlite") else None)
    if path is None:
        yield
        return
    with file_lock(str(path), study_name):
        yield


@contextlib.contextmanager
def file_lock(path: str, name: str) -> Iterator[None]:
    """An exclusive lock named after a database file and ``name``, in the temp folder (every process of the
    host that opens the same file sees the same lock)."""
    digest = hashlib.sha256(f"{Path(path).resolve()}\0{name}".encode()).hexdigest()[:20]
    lock_path = Path(tempfile.gettempdir()) / f"study-claim-{digest}.lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:  # created by another user: a read-only descriptor can hold the lock too
        fd = os.open(lock_path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock
