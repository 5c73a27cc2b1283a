"""Every use of Optuna's private internals, in one place (``tests/study/test_optuna_private.py`` checks each
against the installed Optuna, so an upgrade that moves one fails there, not in the middle of a study).

Optuna's public API runs trials through ``study.optimize``; this tool runs its own loop (claims under a lock,
retries of dead trials, a heartbeat thread that outlives an outage), which needs a trial's storage id, the
study's storage, the database engine under it and the heartbeat helpers. Nothing else in the package
touches a private name of Optuna (``tests/study/test_optuna_boundary.py`` scans every module's syntax tree
for one). Where Optuna has a public way (``RetryHeartbeatStaleTrialCallback.retry_history``, ``Trial.number``,
``Study.get_trials``), the package uses it instead. ``pyproject.toml`` pins ``optuna<6`` for the same
reason.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import optuna
from optuna.storages._cached_storage import _CachedStorage, _StudyInfo
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.storages._rdb import models as _models
from optuna.trial import FrozenTrial, TrialState


def storage(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study object was opened on (Optuna keeps it as ``Study._storage``)."""
    return study._storage


def study_id(study: optuna.Study) -> int:
    return study._study_id


def trial_id(trial: optuna.trial.BaseTrial | FrozenTrial) -> int:
    """The storage's id of a trial (not its number), for ``Trial`` and ``FrozenTrial`` alike."""
    return trial._trial_id


def rdb_backend(storage: optuna.storages.BaseStorage) -> optuna.storages.RDBStorage | None:
    """The ``RDBStorage`` under a study's storage (Optuna wraps it in a ``_CachedStorage``, which keeps it as
    ``_backend``), or None for a storage that has none (the journal file, in memory, the gRPC proxy)."""
    backend = storage._backend if isinstance(storage, _CachedStorage) else storage
    return backend if isinstance(backend, optuna.storages.RDBStorage) else None


def rdb_engine(storage: optuna.storages.BaseStorage) -> Any:
    """The SQLAlchemy engine under a study's storage, or None (see ``rdb_backend``)."""
    backend = rdb_backend(storage)
    return backend.engine if backend is not None else None


def frozen(study: optuna.Study, tid: int) -> FrozenTrial:
    return storage(study).get_trial(tid)


def set_trial_attr(study: optuna.Study, tid: int, key: str, value: Any) -> None:
    """A user attribute on a trial by id: also on a trial this process did not ask for (recovery)."""
    storage(study).set_trial_user_attr(tid, key, value)


def trial_system_attrs(study: optuna.Study, tid: int) -> dict[str, Any]:
    return storage(study).get_trial_system_attrs(tid)


def set_study_system_attr(study: optuna.Study, key: str, value: Any) -> None:
    storage(study).set_study_system_attr(study_id(study), key, value)


def study_system_attrs(study: optuna.Study) -> dict[str, Any]:
    return storage(study).get_study_system_attrs(study_id(study))


def fail_if_running(study: optuna.Study, tid: int) -> bool:
    """RUNNING -> FAIL; False where the trial was already finished (another worker closed it first).
    ``study.tell`` cannot do this for a trial this process did not ask for without a warning per call."""
    try:
        return storage(study).set_trial_state_values(tid, state=TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False


# --- heartbeats (RDB storages have them; the journal file does not) -----------------------------------------

def heartbeat_enabled(study: optuna.Study) -> bool:
    return is_heartbeat_enabled(storage(study))


def record_heartbeat(study: optuna.Study, tid: int) -> None:
    storage(study).record_heartbeat(tid)  # type: ignore[attr-defined]


def stale_trial_ids(study: optuna.Study) -> list[int]:
    """RUNNING trials whose heartbeat is older than the storage's grace period."""
    return list(storage(study)._get_stale_trial_ids(study_id(study)))  # type: ignore[attr-defined]


# --- one transaction under the study's row lock (the claim, the retry of a dead trial) ---------------------
# Optuna's own ``create_new_trial`` locks the study's row (``SELECT ... FOR UPDATE``) to number a trial; the
# same lock, held for one short transaction on the worker's one connection, makes a count of the claims and
# the trial that follows from it one step. SQLite serialises the transaction with ``BEGIN IMMEDIATE``.

def trial_object(study: optuna.Study, tid: int, known: FrozenTrial | None = None) -> optuna.trial.Trial:
    """A live ``Trial`` for a trial claimed here, as ``Study.ask`` builds one: the trial entered in the
    storage's cache (as ``_CachedStorage.create_new_trial`` enters the trials it creates), the study's
    per-trial cache of the trial list reset, so the sampler sees the trials as they are now. ``known``: the
    trial as just created here, which saves reading it back."""
    store = storage(study)
    if isinstance(store, _CachedStorage):  # it learns of a trial only when it creates or reads it itself
        with store._lock:
            if tid not in store._trial_id_to_study_id_and_number:
                store._studies.setdefault(study_id(study), _StudyInfo())
                frozen = known if known is not None else store._backend.get_trial(tid)
                store._add_trials_to_cache(study_id(study), [frozen])
    study._thread_local.cached_all_trials = None
    return optuna.trial.Trial(study, tid)


@contextlib.contextmanager
def study_row_locked(study: optuna.Study) -> Iterator[Any]:
    """A SQLAlchemy session in one transaction that holds the study's row lock; committed on exit."""
    from sqlalchemy import orm

    backend = rdb_backend(storage(study))
    assert backend is not None, "only for a storage on a database"
    with orm.Session(bind=backend.engine, autoflush=False) as session, session.begin():
        _models.StudyModel.find_or_raise_by_id(study_id(study), session, for_update=True)
        yield session


def state_counts(session: Any, sid: int) -> dict[str, int]:
    """Trials of a study by state name, counted by the database (no trial is read)."""
    from sqlalchemy import func

    model = _models.TrialModel
    rows = session.query(model.state, func.count(model.trial_id)).filter(model.study_id == sid).group_by(
        model.state).all()
    return {state.name: n for state, n in rows}


def count_trials_of(store: optuna.storages.BaseStorage, sid: int) -> int | None:
    """All trials of a study, counted by the database; None for a storage without one."""
    backend = rdb_backend(store)
    if backend is None:
        return None
    from sqlalchemy import orm

    with orm.Session(bind=backend.engine) as session:
        return sum(state_counts(session, sid).values())


def first_waiting(session: Any, sid: int) -> int | None:
    """RUNNING now: the oldest WAITING trial of the study (a queued retry, an enqueued trial), by id."""
    model = _models.TrialModel
    trial = (session.query(model).filter(model.study_id == sid, model.state == TrialState.WAITING)
             .order_by(model.number).with_for_update().first())
    if trial is None:
        return None
    trial.state = TrialState.RUNNING
    trial.datetime_start = _now()
    return trial.trial_id


def running_trial(session: Any, sid: int, number: int) -> int:
    """A new RUNNING trial numbered ``number`` (the count of the study's trials: every trial is created
    under the study's row lock, Optuna's own too, so none can come between the count and this insert)."""
    trial = _models.TrialModel(study_id=sid, number=number, state=TrialState.RUNNING, datetime_start=_now())
    session.add(trial)
    session.flush()
    return trial.trial_id


def claimed_by(session: Any, tid: int, attrs: dict[str, Any], *, fresh: bool) -> None:
    """``attrs`` as the trial's system attributes and its first heartbeat (at the database's time, as
    ``record_heartbeat`` writes it), in as few statements as the driver allows; ``fresh``: a trial created
    in this transaction, which has neither yet."""
    import json

    from sqlalchemy import delete

    if not fresh:
        model = _models.TrialSystemAttributeModel
        session.execute(delete(model).where(model.trial_id == tid, model.key.in_(list(attrs))))
        beat = _models.TrialHeartbeatModel
        session.execute(delete(beat).where(beat.trial_id == tid))
    session.add_all([_models.TrialSystemAttributeModel(trial_id=tid, key=k, value_json=json.dumps(v))
                     for k, v in attrs.items()])
    session.add(_models.TrialHeartbeatModel(trial_id=tid))


def new_trial(study: optuna.Study, session: Any, template: FrozenTrial) -> int:
    """A trial made from ``template`` (state, params, attributes), numbered as Optuna numbers it."""
    backend = rdb_backend(storage(study))
    assert backend is not None
    trial = backend._get_prepared_new_trial(study_id(study), template, session)
    session.flush()
    return trial.trial_id


def fail_running_in(session: Any, tid: int, user_attrs: dict[str, Any]) -> bool:
    """RUNNING -> FAIL with ``user_attrs`` set, inside the transaction; False (nothing written) where the
    trial is no longer RUNNING."""
    import json

    from sqlalchemy import delete

    trial = _models.TrialModel.find_or_raise_by_id(tid, session, for_update=True)
    if trial.state != TrialState.RUNNING:
        return False
    model = _models.TrialUserAttributeModel
    session.execute(delete(model).where(model.trial_id == tid, model.key.in_(list(user_attrs))))
    session.add_all([model(trial_id=tid, key=k, value_json=json.dumps(v)) for k, v in user_attrs.items()])
    trial.state = TrialState.FAIL
    trial.datetime_complete = _now()
    return True


def _now() -> Any:
    import datetime

    return datetime.datetime.now()


# The claim on PostgreSQL through psycopg 3 in one round trip: lock, count and inserts run in the server one
# statement after another (each its own snapshot: the count sees every claim committed before the lock was
# granted), and the COMMIT ends it there: the lock is never held while the worker waits for a core.
_PG_CLAIM = """
SELECT study_id FROM studies WHERE study_id = {sid} FOR UPDATE;
WITH w AS (SELECT trial_id FROM trials WHERE study_id = {sid} AND state = 'WAITING'
           ORDER BY number LIMIT 1 FOR UPDATE),
popped AS (UPDATE trials SET state = 'RUNNING', datetime_start = {now}
           WHERE trial_id IN (SELECT trial_id FROM w) RETURNING trial_id, number),
c AS (SELECT count(*) AS total,
             count(*) FILTER (WHERE state IN ('COMPLETE', 'PRUNED', 'RUNNING', 'WAITING')) AS claims
      FROM trials WHERE study_id = {sid}),
created AS (INSERT INTO trials (number, study_id, state, datetime_start)
            SELECT c.total, {sid}, 'RUNNING', {now} FROM c
            WHERE c.claims < {target} AND NOT EXISTS (SELECT 1 FROM w)
              AND EXISTS (SELECT 1 FROM studies WHERE study_id = {sid})
            RETURNING trial_id, number),
got AS (SELECT trial_id, number, false AS fresh FROM popped
        UNION ALL SELECT trial_id, number, true FROM created),
attrs AS (INSERT INTO trial_system_attributes (trial_id, key, value_json)
          SELECT got.trial_id, a.key, a.value FROM got, (VALUES {attrs}) AS a (key, value)
          ON CONFLICT (trial_id, key) DO UPDATE SET value_json = EXCLUDED.value_json),
beat AS (INSERT INTO trial_heartbeats (trial_id, heartbeat) SELECT trial_id, now() FROM got
         ON CONFLICT (trial_id) DO UPDATE SET heartbeat = EXCLUDED.heartbeat)
SELECT trial_id, number, fresh FROM got;
COMMIT;
"""


def claims_in_one_round_trip(study: optuna.Study) -> bool:
    """Whether ``claim_on_postgres`` applies: PostgreSQL through psycopg 3, Optuna's tables as it names
    them."""
    engine = rdb_engine(storage(study))
    return (engine is not None and engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"
            and _models.TrialModel.__tablename__ == "trials"
            and _models.TrialSystemAttributeModel.__tablename__ == "trial_system_attributes"
            and _models.TrialHeartbeatModel.__tablename__ == "trial_heartbeats")


def claim_on_postgres(study: optuna.Study, *, target: int,
                      attrs: dict[str, Any]) -> tuple[int, FrozenTrial | None] | None:
    """``claims.claim_slot`` as one round trip (see ``_PG_CLAIM``): the id of the trial now RUNNING here,
    with the trial as stored where it was created here (else None: a queued trial, read back later); None
    when the claims reach ``target``; ``KeyError`` where the study is gone."""
    import datetime
    import json

    from psycopg import sql  # values rendered by psycopg's own quoting

    engine = rdb_engine(storage(study))
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        values = ", ".join(f"({sql.Literal(k).as_string(raw)}, {sql.Literal(json.dumps(v)).as_string(raw)})"
                           for k, v in attrs.items())
        now = datetime.datetime.now()
        text = _PG_CLAIM.format(sid=int(study_id(study)), target=int(target), attrs=values,
                                now=sql.Literal(now).as_string(raw) + "::timestamp")
        cursor = raw.cursor()
        try:
            cursor.execute(text.encode())
            study_row = cursor.fetchone()
            cursor.nextset()
            row = cursor.fetchone()
        finally:
            cursor.close()
        conn.commit()  # the server has committed already: nothing is sent
    if study_row is None:
        raise KeyError(f"study id {study_id(study)} no longer exists")
    if row is None:
        return None
    return int(row[0]), (running_frozen(int(row[0]), int(row[1]), now, attrs) if row[2] else None)


def running_frozen(tid: int, number: int, start: Any, system_attrs: dict[str, Any]) -> FrozenTrial:
    """A trial just created RUNNING with ``system_attrs`` and nothing else, as the database holds it."""
    return FrozenTrial(number=number, state=TrialState.RUNNING, value=None, values=None, datetime_start=start,
                       datetime_complete=None, params={}, distributions={}, user_attrs={},
                       system_attrs=dict(system_attrs), intermediate_values={}, trial_id=tid)
