"""What this tool records on studies and trials, and where.

User attributes are what a person reads in optuna-dashboard's tables and in ``optuna trials``: a trial's main
validation metrics, best epoch, epochs run, duration, device, fail or prune reason, second-objective value and
where it came from (untuned default, ``--enqueue``, warm start); a study's data name, test metrics and
creation time. Everything else (resolved configs, learning curves, hashes, process identity, heartbeats,
checkpoint paths, per-query scores, the comparison table) is a system attribute. Readers look at both, so
studies recorded before this split read the same.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial

from study.storage import optuna_private as private

HEARTBEAT_ATTR = "heartbeat_at"  # where the storage has no heartbeat table (journal file): the time, by us

TRIAL_INTERNAL = frozenset({
    "host", "pid", "pid_namespace", "process_start", HEARTBEAT_ATTR, "sampler_seed", "checkpoint", "config",
    "curve", "resumed_from", "pairs_per_second", "tokens_per_second", "peak_gpu_memory_mb", "val_metrics_all",
    "val_per_query_ndcg", "damaged_checkpoints",
})
STUDY_INTERNAL = frozenset({
    "config", "dataset_fingerprint", "space_hash", "training_hash", "search_space", "versions", "comparison",
    "test_default", "baselines", "test_per_query", "data_summary",
})


def trial_attr(trial: FrozenTrial | optuna.trial.Trial, key: str, default: Any = None) -> Any:
    """One recorded value of a trial (system attributes first, then user attributes)."""
    system = getattr(trial, "system_attrs", None)
    if system is None:  # a live Trial: Optuna 5 shows only its user attributes
        system = private.frozen(trial.study, private.trial_id(trial)).system_attrs
    if key in system:
        return system[key]
    return trial.user_attrs.get(key, default)


def set_trial_attr(trial: optuna.trial.Trial, key: str, value: Any) -> None:
    if key in TRIAL_INTERNAL:
        private.storage(trial.study).set_trial_system_attr(private.trial_id(trial), key, value)
    else:
        trial.set_user_attr(key, value)


def set_trial_attr_by_id(study: optuna.Study, trial_id: int, key: str, value: Any) -> None:
    """The same for a trial this process did not ask for (recovery, heartbeats of the journal file)."""
    if key in TRIAL_INTERNAL:
        private.storage(study).set_trial_system_attr(trial_id, key, value)
    else:
        private.set_trial_attr(study, trial_id, key, value)


def study_attrs(study: optuna.Study) -> dict[str, Any]:
    """Everything recorded on a study, user and system attributes together."""
    return {**study.user_attrs, **private.study_system_attrs(study)}


def study_attr(study: optuna.Study, key: str, default: Any = None) -> Any:
    system = private.study_system_attrs(study)
    return system[key] if key in system else study.user_attrs.get(key, default)


def set_study_attr(study: optuna.Study, key: str, value: Any) -> None:
    if key in STUDY_INTERNAL:
        private.set_study_system_attr(study, key, value)
    else:
        study.set_user_attr(key, value)
