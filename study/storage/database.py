"""Opening a storage: SQLite by default (busy timeout, WAL, immediate transactions, see ``sqlite``), any
SQLAlchemy URL, or Optuna's journal file; once per process, with the heartbeat interval and grace period
set, a locked or unreachable database retried with backoff (``retrying``) and then reported as one
paragraph. A stale trial is failed and retried by the worker loop (``study.runtime.liveness``), never by
Optuna's ``optimize``, which this tool does not run, so the storage gets no stale-trial callback. URLs and
their redaction are in ``urls``, the locks in ``locks``.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import optuna

from study.errors import UserInputError
from study.storage.locks import file_lock
from study.storage.sqlite import (
    check_sqlite_file,
    immediate_transactions,
    prepare_sqlite,
    read_only_place,
    read_only_uri,
)
from study.storage.urls import (
    DEFAULT_STORAGE,
    engine_url,
    file_of,
    grpc_address,
    is_grpc,
    is_journal,
    journal_path,
    redact,
    sqlite_path,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

@dataclass(frozen=True)
class StorageConfig:
    url: str = DEFAULT_STORAGE
    heartbeat_interval: int = 30  # seconds between a running trial's heartbeats
    grace_period: int = 0  # seconds without a heartbeat before a trial is stale; 0 = 4 x interval
    max_retry: int = 3  # how often a failed (killed, interrupted) trial is retried with the same parameters
    sqlite_timeout: float = 60.0  # seconds SQLite waits on a lock before giving up
    # tries to open (or write to) an unreachable or locked database, 1 s, 2 s, 4 s ... apart
    connect_attempts: int = 5

    def __post_init__(self) -> None:
        if self.heartbeat_interval < 1:
            raise ValueError(f"heartbeat_interval must be >= 1 second, got {self.heartbeat_interval}")
        if self.grace_period and self.grace_period <= self.heartbeat_interval:
            raise ValueError(f"grace_period must exceed heartbeat_interval, got {self.grace_period} "
                             f"with {self.heartbeat_interval}")
        if self.max_retry < 0:
            raise ValueError(f"max_retry must be >= 0, got {self.max_retry}")
        if self.connect_attempts < 1:
            raise ValueError(f"connect_attempts must be >= 1, got {self.connect_attempts}")

    @property
    def grace(self) -> int:
        return self.grace_period or 4 * self.heartbeat_interval


class StorageUnavailableError(UserInputError):
    """The database could not be opened or written after the configured attempts."""


def retrying(action: Callable[[], T], *, url: str, what: str, attempts: int = 5) -> T:
    """Run ``action``; a locked, full or unreachable database is retried with backoff, then reported as a
    ``StorageUnavailableError`` naming the (redacted) storage."""
    delay = 1.0
    err: BaseException | None = None
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except UserInputError:  # already one paragraph (a study replaced under this process, a refusal)
            raise
        except (ImportError, ModuleNotFoundError) as exc:
            extra = "grpc" if is_grpc(url) else "postgres"
            raise UserInputError(
                f"The storage {redact(url)} needs a driver that is not installed ({redact(exc)}). Install "
                f"the extra: pip install 'study[{extra}]'."
            ) from None
        except Exception as exc:
            if _refused(exc, url):  # a wrong password or a missing database: at once, no retries
                raise StorageUnavailableError(
                    f"The database server {redact(url)} refused the connection: {_first_line(exc)}. Check "
                    "the user, password and database name in the storage URL (retrying would not help); "
                    "nothing was written."
                ) from None
            if not is_transient(exc):
                raise
            err = exc
        if attempt < attempts:
            logger.warning("storage %s not available to %s (attempt %d/%d): %s; retrying in %.0f s",
                           redact(url), what, attempt, attempts, _first_line(err), delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
    raise unavailable(err, url=url, what=what, attempts=attempts)


def unavailable(err: BaseException | None, *, url: str, what: str,
                attempts: int = 1) -> StorageUnavailableError:
    """The one paragraph for a database that stayed locked, full or unreachable."""
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    return StorageUnavailableError(
        f"Could not {what} in the storage {redact(url)}{tries}: {_first_line(err)}. Check that the database "
        "server is running and reachable, that the disk is not full and that no other program holds a lock "
        "on it; nothing was written."
    )


def _first_line(exc: BaseException | None) -> str:
    """The message of the database error itself (optuna wraps it in a generic one)."""
    while isinstance(exc, optuna.exceptions.StorageInternalError) and (exc.__cause__ or exc.__context__):
        exc = exc.__cause__ or exc.__context__
    text = str(exc).strip().splitlines()
    return redact(text[0] if text else type(exc).__name__)


# a server that answered "no": retrying cannot help (the password, the database name, the user's rights)
_PERMANENT = ("password authentication failed", "does not exist", "permission denied", "no password supplied",
              "no pg_hba.conf entry", "role \"", "authentication failed")


def _refused(exc: BaseException, url: str) -> bool:
    return not url.startswith("sqlite") and any(p in _first_line(exc).lower() for p in _PERMANENT)


def is_transient(exc: BaseException) -> bool:
    """Errors of the database connection itself (as opposed to a bug or a bad value)."""
    if isinstance(exc, (sqlite3.OperationalError, optuna.exceptions.StorageInternalError)):
        return True
    if isinstance(exc, ConnectionError) or type(exc).__module__.startswith("grpc"):  # the proxy away
        return True
    try:
        import sqlalchemy.exc as sa_exc  # ~0.15 s: journal-file storages never load SQLAlchemy
    except ImportError:  # pragma: no cover - SQLAlchemy is a dependency
        return False
    return isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError))


# A worker holds one connection to a database server, never more: its claims, writes and heartbeats take turns
# on it (each is one short transaction), so N workers need N connections (README, "Many workers").
# Optuna's schema set-up on a new database nests a second connection, so the pool allows one more while the
# storage is built and none after (``_one_connection``).
SERVER_POOL: dict[str, Any] = {"pool_size": 1, "max_overflow": 1, "pool_timeout": 120}


def _one_connection(engine: Any) -> None:
    """From now on the engine's pool opens no connection beyond its one (SQLAlchemy's ``QueuePool`` keeps
    the limit as ``_max_overflow``; an extra connection opened during set-up was closed when returned)."""
    if engine.dialect.name != "sqlite" and hasattr(engine.pool, "_max_overflow"):
        engine.pool._max_overflow = 0


def _grpc_proxy(url: str) -> optuna.storages.BaseStorage:
    host, port = grpc_address(url)
    proxy = optuna.storages.GrpcStorageProxy(host=host, port=port)
    proxy.wait_server_ready(timeout=10)
    return proxy


_OPENED: dict[tuple[StorageConfig, str | None], optuna.storages.BaseStorage] = {}


def open_storage(config: StorageConfig, *, must_exist: bool = False,
                 writes: bool = True) -> optuna.storages.BaseStorage:
    """The storage of ``config``, opened once per process (every later call returns the same object).

    ``must_exist``: for commands that only read (status, best, report, dashboard, export), a SQLite or
    journal file that is not there is an error rather than a new empty database. ``writes``: False for
    those commands, which then read a SQLite file in a read-only place; a command that writes is refused
    there, naming the path."""
    if must_exist:
        path = file_of(config.url)
        if path is not None and not Path(path).is_file():
            raise UserInputError(
                f"There is no study database at {Path(path).resolve()} ({redact(config.url)}). Check the "
                "--storage URL (a SQLite URL is sqlite:///relative.db or sqlite:////absolute.db), or run "
                "`study run` first to create it."
            )
    path = file_of(config.url)
    read_only = read_only_place(path) if path and config.url.startswith("sqlite") else None
    if read_only and writes:
        raise UserInputError(
            f"The study database {Path(path).absolute()} is in a read-only place ({read_only}); this "
            "command writes to it, so nothing was done. Reading commands (status, best, list, trials, "
            "report, export) work there as they are; to run trials, copy the file somewhere writable and "
            "point --storage at the copy.")
    key = (config, str(Path(path).resolve()) if path else None, bool(read_only))
    if key not in _OPENED or (path and not Path(path).exists()):  # a file deleted since: open it afresh
        _OPENED[key] = build_storage(config, read_only=bool(read_only))
    return _OPENED[key]


def _check_schema(storage: optuna.storages.RDBStorage, url: str) -> None:
    """Optuna's schema check, one connection at a time (its own holds a session while it opens another)."""
    current, head = storage.get_current_version(), storage.get_head_version()
    if current != head:
        raise UserInputError(
            f"The database {redact(url)} was set up by another Optuna version (schema {current}, this "
            f"Optuna {optuna.__version__} uses {head}); nothing was written. Upgrade it with `optuna storage "
            "upgrade --storage URL` if it is older, or install the Optuna version that set it up.")


def _engine_kwargs(config: StorageConfig, connections: int) -> dict[str, Any]:
    url = config.url
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": config.sqlite_timeout}}
    # a database server: one connection per process, shared by the worker and its heartbeat thread
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True, **SERVER_POOL, "pool_size": connections}
    if url.startswith(("postgresql", "postgres")):
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
        if engine_url(url).startswith("postgresql+psycopg://"):  # no server-side prepared statements: a
            engine_kwargs["connect_args"]["prepare_threshold"] = None  # pooler in transaction mode has none
    return engine_kwargs


def build_storage(config: StorageConfig, *, read_only: bool = False,
                  connections: int = 1) -> optuna.storages.BaseStorage:
    """The storage with heartbeats and stale-trial retry, retrying a locked or unreachable database;
    ``read_only``: a SQLite file opened for reading only (no schema creation, no WAL, no locks);
    ``connections``: to a database server (one for a worker, more for the gRPC proxy's threads)."""
    url = config.url
    if is_grpc(url):
        return retrying(lambda: _grpc_proxy(url), url=url, what="reach the gRPC storage proxy",
                        attempts=config.connect_attempts)
    if is_journal(url):
        path = journal_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(
            str(path), lock_obj=optuna.storages.journal.JournalFileOpenLock(str(path))
        )
        return optuna.storages.JournalStorage(backend)
    db_file = sqlite_path(url) if url.startswith("sqlite") else None
    engine_kwargs = _engine_kwargs(config, connections)

    def open_read_only() -> optuna.storages.RDBStorage:
        check_sqlite_file(db_file, config.sqlite_timeout, read_only=True)
        return optuna.storages.RDBStorage(f"sqlite:///{read_only_uri(db_file)}&uri=true",
                                          engine_kwargs=engine_kwargs, skip_table_creation=True)

    def open_rdb() -> optuna.storages.RDBStorage:
        if db_file is not None:
            prepare_sqlite(db_file, config.sqlite_timeout)
        # several `study run` started at once on a new file would race to create the schema (alembic's
        # version row is unique): the first creates it under the file lock, the others then find it
        with file_lock(db_file, "schema") if db_file else contextlib.nullcontext():
            storage = optuna.storages.RDBStorage(
                engine_url(url),
                engine_kwargs=engine_kwargs,
                heartbeat_interval=config.heartbeat_interval,
                grace_period=config.grace,
                skip_compatibility_check=True,  # Optuna's check nests two connections: ours takes one
            )
        _check_schema(storage, url)
        _one_connection(storage.engine)
        if url.startswith("sqlite"):
            immediate_transactions(storage.engine)
        return storage

    try:
        return retrying(open_read_only if read_only and db_file else open_rdb, url=url,
                        what="open the database", attempts=config.connect_attempts)
    except UserInputError:
        raise
    except Exception as exc:  # a malformed URL, an unknown dialect: the message may quote the URL
        import sqlalchemy.exc as sa_exc  # lazy: see is_transient

        if isinstance(exc, (sa_exc.ArgumentError, sa_exc.NoSuchModuleError, ValueError)):
            raise UserInputError(f"The storage URL {redact(url)} is not usable: "
                                 f"{_first_line(exc)}.") from None
        raise




def serve_proxy(url: str, *, host: str, port: int, threads: int, on_ready: Callable[[], None]) -> None:
    """Optuna's gRPC storage proxy on ``url`` (``study proxy``), until Ctrl-C or SIGTERM."""
    from concurrent.futures import ThreadPoolExecutor

    try:
        import grpc  # noqa: F401 - the extra: a clear message now rather than at the first request
        from optuna.storages import run_grpc_proxy_server
    except ImportError as exc:
        raise UserInputError(f"study proxy needs grpcio ({exc}). Install the extra: pip install "
                             "'study[grpc]'.") from None
    storage = optuna.storages.get_storage(build_storage(StorageConfig(url=url), connections=threads))
    on_ready()
    run_grpc_proxy_server(storage, host=host, port=port, thread_pool=ThreadPoolExecutor(max_workers=threads))
