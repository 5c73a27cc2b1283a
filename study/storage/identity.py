"""A study's identity, which outlives a reused id: a generation token written when the study is created and
checked before every write of a process that holds the study.

SQLite gives a deleted study's id (and its trials' ids) to the next study created in the file, so a process
still running a trial of a study that another process deleted or re-created (``study delete``, ``study run
--new``) would write its epochs into the new study's trials by id. Every process that works on a study
*holds* it (``holding``): before each INSERT, UPDATE or DELETE on that database, in the same transaction as
the write (SQLite's ``BEGIN IMMEDIATE`` holds the write lock from the first statement), the study's name and
token are read back by its id (once per transaction, at its first write); a study gone, renamed or of another
generation stops the write with ``StudyReplacedError`` (one paragraph, exit code 2), so nothing of the old
process reaches the new study.
Optuna's journal file and PostgreSQL never reuse an id; the check runs on every SQL database alike.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import optuna

from study.errors import UserInputError
from study.storage import optuna_private as private

GENERATION_ATTR = "generation"  # a study system attribute: a random token written once, at creation

_HELD: dict[int, dict[int, tuple[str, str | None]]] = {}  # id(engine) -> study id -> (name, token)
_LISTENING: set[int] = set()
_LOCK = threading.Lock()
_WRITES = ("insert", "update", "delete")


class StudyReplacedError(UserInputError):
    """The study this process works on was deleted or re-created by another process."""

    def __init__(self, name: str, what: str) -> None:
        super().__init__(
            f"Study {name!r} was deleted or re-created by another process ({what}) while this process was "
            "running one of its trials; this trial's result is dropped and nothing more is written to the "
            "database (the new study, if there is one, keeps only its own trials). Run `study status "
            f"{name}` to see what is there now."
        )
        self.name = name


def new_generation() -> str:
    return uuid.uuid4().hex


def generation(study: optuna.Study) -> str | None:
    """The study's token (None for a study created before tokens existed)."""
    return private.study_system_attrs(study).get(GENERATION_ATTR)


@contextlib.contextmanager
def holding(study: optuna.Study) -> Iterator[None]:
    """While inside, every write of this process to the study's database first checks that the study is still
    the one it was on entry (same id, name and token); released on exit, also when this process deletes it."""
    engine = private.rdb_engine(private.storage(study))
    if engine is None:  # the journal file never reuses an id: a write to a deleted study fails by itself
        yield
        return
    key, sid = id(engine), private.study_id(study)
    with _LOCK:
        if key not in _LISTENING:
            _listen(engine)
            _LISTENING.add(key)
        previous = _HELD.setdefault(key, {}).get(sid)
        _HELD[key][sid] = (study.study_name, generation(study))
    try:
        yield
    finally:
        with _LOCK:
            if previous is None:
                _HELD[key].pop(sid, None)
            else:
                _HELD[key][sid] = previous


def release(storage: optuna.storages.BaseStorage, study_id: int) -> None:
    """This process deletes the study itself (``--new`` in the same process): no longer held."""
    engine = private.rdb_engine(storage)
    if engine is not None:
        with _LOCK:
            _HELD.get(id(engine), {}).pop(study_id, None)


def _listen(engine: Any) -> None:
    import sqlalchemy  # ~0.15 s: only SQL storages come here

    placeholder = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    query = ("SELECT s.study_name, a.value_json FROM studies s LEFT JOIN study_system_attributes a "
             f"ON a.study_id = s.study_id AND a.key = '{GENERATION_ATTR}' WHERE s.study_id = {placeholder}")

    @sqlalchemy.event.listens_for(engine, "before_cursor_execute")
    def _check(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if not statement.lstrip()[:6].lower().startswith(_WRITES):
            return
        held = _HELD.get(id(engine))
        if not held:
            return
        transaction = conn.get_transaction()  # checked once per transaction: at its first write
        if transaction is not None and conn.info.get("study_checked") is transaction:
            return
        check = cursor.connection.cursor()  # the same connection, so the same transaction as the write
        try:
            for sid, (name, token) in list(held.items()):
                check.execute(query, (sid,))
                _compare(check.fetchone(), name, token)
        finally:
            check.close()
        conn.info["study_checked"] = transaction


def _compare(row: Any, name: str, token: str | None) -> None:
    """``row``: the (name, token JSON) stored under the held study's id now, or None."""
    import json

    if row is None:
        raise StudyReplacedError(name, "it no longer exists")
    if row[0] != name or (None if row[1] is None else json.loads(row[1])) != token:
        raise StudyReplacedError(name, "another study now has its place in the database")


def check_held(study: optuna.Study) -> None:
    """Raise ``StudyReplacedError`` now if the study this process holds was deleted or re-created (asked
    after a write was refused for another reason: a trial found finished, a record gone)."""
    engine = private.rdb_engine(private.storage(study))
    held = _HELD.get(id(engine), {}).get(private.study_id(study)) if engine is not None else None
    if held is None:
        return
    import sqlalchemy  # ~0.15 s: only SQL storages come here

    with engine.connect() as conn:
        row = conn.execute(sqlalchemy.text(
            "SELECT s.study_name, a.value_json FROM studies s LEFT JOIN study_system_attributes a "
            f"ON a.study_id = s.study_id AND a.key = '{GENERATION_ATTR}' WHERE s.study_id = :sid"),
            {"sid": private.study_id(study)}).fetchone()
        conn.rollback()
    _compare(row, *held)
