"""A trial's liveness record, in one place: who runs it (host, process id and start time, recorded when the
trial is claimed, with its first heartbeat), its heartbeats (Optuna's table, or a timestamp attribute on the
journal file), stale detection (a dead process on this host at once, a silent heartbeat anywhere after the
grace period), and the retry chain (a failed trial queued again with the same parameters, as
``retry_history`` in Optuna's own vocabulary, read back through its public ``retry_history``)."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from study.errors import UserInputError
from study.runtime.attrs import HEARTBEAT_ATTR, set_trial_attr, trial_attr
from study.runtime.signals import signals_deferred
from study.storage import claims
from study.storage import optuna_private as private
from study.storage.database import StorageConfig, retrying
from study.storage.locks import claim_lock

logger = logging.getLogger(__name__)

# User attributes that describe one run of a trial; a retry starts without them (it records its own).
RUN_ATTRS = frozenset({
    "fail_reason", "prune_reason", "pid", "host", HEARTBEAT_ATTR, "pid_namespace", "process_start",
    "sampler_seed", "resumed_from", "device", "checkpoint", "curve", "val_metrics", "best_epoch",
    "epochs_run", "wall_time_s", "pairs_per_second", "tokens_per_second", "peak_gpu_memory_mb",
    "val_metrics_all", "val_per_query_ndcg", "damaged_checkpoints", "latency_ms_per_1000_pairs",
    "model_size_m",
})


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (tells a live process from a later one with the same id)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def process_identity() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "pid_namespace": _pid_namespace(),
            "process_start": _process_start(os.getpid())}


def mark_claimed(study: optuna.Study, trial: optuna.trial.Trial, sampler_seed: int) -> None:
    """Record who runs the trial (for the same-host process check) and a first heartbeat (a trial that never
    sent one is never found stale)."""
    attrs = {**process_identity(), "sampler_seed": sampler_seed}
    if private.heartbeat_enabled(study):
        private.record_heartbeat(study, private.trial_id(trial))
    else:
        attrs[HEARTBEAT_ATTR] = time.time()
    for key, value in attrs.items():
        set_trial_attr(trial, key, value)


def is_local(trial: FrozenTrial) -> bool:
    return (trial_attr(trial, "host") == socket.gethostname() and trial_attr(trial, "pid") is not None
            and trial_attr(trial, "pid_namespace", _pid_namespace()) == _pid_namespace())


def _process_alive(pid: int, start: str | None) -> bool:
    if Path("/proc/self/stat").exists():
        now = _process_start(pid)
        return now is not None and (start is None or now == start)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fail_and_retry(study: optuna.Study, trial_id: int, reason: str, max_retry: int | None) -> bool:
    """RUNNING -> FAIL with ``reason``, then queued again; False where another worker closed it first. On a
    database both commit in one transaction (``claims.requeue``): a claim never finds the slot free between
    them, and two workers that find the same dead trial queue it once."""
    if claims.on_database(study):
        return claims.requeue(study, trial_id, reason=reason,
                              retry=retry_template(private.frozen(study, trial_id), max_retry=max_retry))
    try:
        private.set_trial_attr(study, trial_id, "fail_reason", reason)
    except UpdateFinishedTrialError:
        return False
    if not private.fail_if_running(study, trial_id):
        return False
    queue_retry(study, private.frozen(study, trial_id), max_retry=max_retry)
    return True


def retry_chain(trial: optuna.trial.Trial | FrozenTrial) -> list[int]:
    """The trials this one retries, oldest first (empty for a first attempt)."""
    if not isinstance(trial, FrozenTrial):  # a live Trial: Optuna 5 shows only its user attributes
        trial = private.frozen(trial.study, private.trial_id(trial))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return [int(n) for n in optuna.storages.RetryHeartbeatStaleTrialCallback.retry_history(trial)]


def queue_retry(study: optuna.Study, trial: FrozenTrial, *, max_retry: int | None) -> None:
    """Queue a failed trial again with the same parameters (up to ``max_retry`` times in a chain; ``None``:
    no limit), without the attributes of the failed run (its fail reason, process, curve), which the retry
    records anew; the chain is kept in Optuna's ``failed_trial`` and ``retry_history``."""
    retry = retry_template(trial, max_retry=max_retry)
    if retry is not None:
        study.add_trial(retry)


def retry_template(trial: FrozenTrial, *, max_retry: int | None) -> FrozenTrial | None:
    """The WAITING trial that retries ``trial`` (see ``queue_retry``), or None once the chain is used up."""
    history = [*retry_chain(trial), trial.number]
    if max_retry is not None and len(history) > max_retry:
        logger.warning("trial %d failed and was already retried %d times: not retrying it again",
                       trial.number, max_retry)
        return None
    system_attrs = {"failed_trial": history[0],
                    **{k: v for k, v in trial.system_attrs.items() if k not in RUN_ATTRS},
                    "retry_history": history}
    return optuna.create_trial(
        state=TrialState.WAITING, params=trial.params, distributions=trial.distributions,
        user_attrs={k: v for k, v in trial.user_attrs.items() if k not in RUN_ATTRS},
        system_attrs=system_attrs,
    )


def process_gone(trial: FrozenTrial) -> bool:
    """A RUNNING trial started on this host whose process no longer exists (pid and start time checked)."""
    pid = trial_attr(trial, "pid")
    return (is_local(trial) and pid != os.getpid()
            and not _process_alive(int(pid), trial_attr(trial, "process_start")))


def _alive_here(trial: FrozenTrial) -> bool:
    """A trial run by a live process of this host (its heartbeat may lag through an outage or a pause)."""
    return is_local(trial) and not process_gone(trial)


def fail_dead_trials(study: optuna.Study, *, max_retry: int = 3) -> list[int]:
    """RUNNING trials started on this host by a process that no longer exists: FAIL and retry them now,
    without waiting out the heartbeat grace period."""
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not process_gone(t):
            continue
        if _fail_and_retry(study, private.trial_id(t), "process_died", max_retry):
            failed.append(t.number)
    if failed:
        logger.warning("trials %s were RUNNING in processes of this host that no longer exist: marked FAIL "
                       "and queued again", failed)
    return failed


def fail_stale_trials(study: optuna.Study, *, max_retry: int = 3, grace: float = 120) -> list[int]:
    """RUNNING trials whose heartbeat stopped for longer than the grace period (any host): FAIL and retry."""
    if private.heartbeat_enabled(study):
        stale = private.stale_trial_ids(study)
    else:  # the journal file: the heartbeat is a user attribute, compared with this host's clock
        now = time.time()
        stale = [private.trial_id(t) for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                 if isinstance(trial_attr(t, HEARTBEAT_ATTR), (int, float))
                 and now - trial_attr(t, HEARTBEAT_ATTR) > grace]
    failed = []
    for trial_id in stale:
        if _alive_here(private.frozen(study, trial_id)):
            continue  # paused or cut off from the database, not dead: its process is right here
        if _fail_and_retry(study, trial_id, "heartbeat_stale", max_retry):
            failed.append(private.frozen(study, trial_id).number)
    if failed:
        logger.warning("trials %s stopped sending heartbeats: marked FAIL and queued again", failed)
    return failed


def can_wait_for_others(study: optuna.Study) -> bool:
    """Waiting for trials under way elsewhere is safe where a dead one will be noticed: heartbeats, or the
    process check for trials of this host."""
    if private.heartbeat_enabled(study):
        return True
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return all(is_local(t) or trial_attr(t, HEARTBEAT_ATTR) is not None for t in running)


def recover_trials(study: optuna.Study, config: StorageConfig) -> list[int]:
    """Fail and queue again the trials whose process died. On a database each retry is one transaction
    (``_fail_and_retry``), so no lock is taken; on a journal file, under the claim lock, so that two workers
    never queue the same trial twice."""
    def recover() -> list[int]:
        lock = (contextlib.nullcontext() if claims.on_database(study)
                else claim_lock(private.storage(study), config.url, study.study_name))
        with lock:
            return (fail_dead_trials(study, max_retry=config.max_retry)
                    + fail_stale_trials(study, max_retry=config.max_retry, grace=config.grace))

    return retrying(recover, url=config.url, what="check for dead trials", attempts=config.connect_attempts)


def live_trials(study: optuna.Study, *, grace: float) -> list[FrozenTrial]:
    """RUNNING trials that someone is running right now: a live process on this host, or (elsewhere) a
    heartbeat younger than the grace period."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if private.heartbeat_enabled(study):
        stale = set(private.stale_trial_ids(study))
    else:
        now = time.time()
        stale = {private.trial_id(t) for t in running
                 if not isinstance(trial_attr(t, HEARTBEAT_ATTR), (int, float))
                 or now - trial_attr(t, HEARTBEAT_ATTR) > grace}
    out = []
    for t in running:
        if is_local(t):
            if _alive_here(t):
                out.append(t)
        elif private.trial_id(t) not in stale:
            out.append(t)
    return out


def refuse_while_running(study: optuna.Study, *, grace: float, action: str) -> None:
    """``delete`` and ``run --new`` without ``--force``: refused while a trial of the study is under way."""
    live = live_trials(study, grace=grace)
    if not live:
        return
    who = "; ".join(f"trial {t.number} on host {trial_attr(t, 'host', '?')} (pid {trial_attr(t, 'pid', '?')})"
                    for t in live)
    raise UserInputError(
        f"Study {study.study_name!r} has {len(live)} trial{'s' if len(live) != 1 else ''} running right now "
        f"({who}), with a live heartbeat; {action} it under a running process is refused and nothing was "
        "changed. Stop that process first (Ctrl-C closes its trial), or pass --force to go ahead: the "
        "process then stops its trial at its next write and writes nothing more."
    )


def close_interrupted(study: optuna.Study, trial: optuna.trial.Trial, reason: str = "interrupted") -> None:
    """The trial Ctrl-C or SIGTERM stopped (or a full disk): FAIL with ``reason`` and queued again, so the
    next run continues from its checkpoint."""
    with signals_deferred():
        frozen = private.frozen(study, private.trial_id(trial))
        if frozen.state != TrialState.RUNNING:
            return
        # no fault of the trial: it does not use up the retries (``max_retry=None``)
        if _fail_and_retry(study, private.trial_id(trial), reason, None):
            logger.warning("trial %d stopped (%s): marked FAIL and queued again", trial.number, reason)
