"""Storage: SQLite by default (busy timeout, WAL), any SQLAlchemy URL, or Optuna's journal file.

Also the one place that hides passwords in storage URLs before anything is printed or stored.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import optuna

from data.errors import UserInputError

logger = logging.getLogger(__name__)

DEFAULT_STORAGE = "sqlite:///studies.db"
_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]+:)(?P<pw>[^@\s]+)(?P<tail>@)")


@dataclass(frozen=True)
class StorageConfig:
    url: str = DEFAULT_STORAGE
    heartbeat_interval: int = 30  # seconds between a running trial's heartbeats
    grace_period: int = 0  # seconds without a heartbeat before a trial is stale; 0 = 4 x interval
    max_retry: int = 3  # how often a stale trial is retried with the same parameters
    sqlite_timeout: float = 60.0  # seconds SQLite waits on a lock before giving up


def redact(text: str) -> str:
    """Replace the password of every URL in ``text`` by ``***``."""
    return _PASSWORD.sub(lambda m: f"{m['head']}***{m['tail']}", str(text))


def is_journal(url: str) -> bool:
    return url.startswith("journal://") or url.endswith((".log", ".journal"))


def _journal_path(url: str) -> Path:
    return Path(url.removeprefix("journal:///").removeprefix("journal://"))


def _prepare_sqlite(url: str, timeout: float) -> None:
    """WAL mode lets readers (the dashboard, ``study status``) read while a worker writes."""
    path = url.removeprefix("sqlite:///")
    if path in ("", ":memory:") or path.startswith("file:"):
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=timeout)
    try:
        con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()


def build_storage(config: StorageConfig, *, attempts: int = 5) -> optuna.storages.BaseStorage:
    """The storage with heartbeats and stale-trial retry, retrying a locked or unreachable database."""
    url = config.url
    if is_journal(url):
        path = _journal_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(
            str(path), lock_obj=optuna.storages.journal.JournalFileOpenLock(str(path))
        )
        return optuna.storages.JournalStorage(backend)
    engine_kwargs: dict = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        engine_kwargs = {"connect_args": {"timeout": config.sqlite_timeout}}
    grace = config.grace_period or 4 * config.heartbeat_interval
    delay = 1.0
    for attempt in range(1, attempts + 1):
        try:
            if url.startswith("sqlite"):
                _prepare_sqlite(url, config.sqlite_timeout)
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=config.heartbeat_interval,
                grace_period=grace,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                    max_retry=config.max_retry, inherit_intermediate_values=False
                ),
            )
        except (sqlite3.OperationalError, ImportError, ModuleNotFoundError) as exc:
            if isinstance(exc, (ImportError, ModuleNotFoundError)):
                raise UserInputError(
                    f"The storage {redact(url)} needs a database driver that is not installed ({exc}). "
                    "For PostgreSQL install the extra: pip install 'study[postgres]'."
                ) from None
            err: Exception = exc
        except Exception as exc:  # SQLAlchemy OperationalError and friends: retried, then reported
            if "OperationalError" not in type(exc).__name__ and "locked" not in str(exc):
                raise
            err = exc
        logger.warning("storage %s not ready (attempt %d/%d): %s", redact(url), attempt, attempts,
                       redact(str(err).splitlines()[0]))
        time.sleep(delay)
        delay = min(delay * 2, 10.0)
    raise UserInputError(
        f"Could not open the storage {redact(url)} after {attempts} attempts: {redact(str(err).splitlines()[0])}. "
        "Check that the database is reachable and not locked by another program; nothing was written."
    )
