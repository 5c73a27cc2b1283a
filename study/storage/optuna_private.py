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

from typing import Any

import optuna
from optuna.storages._cached_storage import _CachedStorage
from optuna.storages._heartbeat import is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState


def storage(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study object was opened on (Optuna keeps it as ``Study._storage``)."""
    return study._storage


def study_id(study: optuna.Study) -> int:
    return study._study_id


def trial_id(trial: optuna.trial.BaseTrial | FrozenTrial) -> int:
    """The storage's id of a trial (not its number), for ``Trial`` and ``FrozenTrial`` alike."""
    return trial._trial_id


def rdb_engine(storage: optuna.storages.BaseStorage) -> Any:
    """The SQLAlchemy engine under a study's storage (Optuna wraps an ``RDBStorage`` in a ``_CachedStorage``,
    which keeps it as ``_backend``), or None for a storage that has none (the journal file, in memory)."""
    backend = storage._backend if isinstance(storage, _CachedStorage) else storage
    return backend.engine if isinstance(backend, optuna.storages.RDBStorage) else None


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
