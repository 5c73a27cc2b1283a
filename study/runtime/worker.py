"""The worker loop: claim a trial (``study.runtime.claim``: a queued retry first), run it with heartbeats,
close it, clean up its checkpoints; until the study has ``n_trials`` finished trials, whoever ran them. Now
and then (every half grace period, and while waiting for others) the worker sweeps the study for trials
whose process died and queues them again; never on every claim.

``n_trials`` is the study's total of finished trials (complete + pruned). A worker *claims* a trial only while
the claims (finished, running and queued trials) fall short of the target; a claimed trial that would still
exceed the target (possible only where no lock exists) is closed as FAIL with reason ``surplus``.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import random
import socket
import time
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import optuna
import torch
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from study.config import Config
from study.models.checkpoint import DISK_FULL_REASON, DiskFullError
from study.runtime.checkpoints import UNWRITABLE_REASON, trial_closed, unwritable_place
from study.runtime.claim import claim_trial
from study.runtime.heartbeats import heartbeat
from study.runtime.liveness import can_wait_for_others, close_interrupted, recover_trials
from study.runtime.signals import signals_deferred
from study.runtime.studies import public_config
from study.runtime.trials import counts
from study.samplers import build_pruner, build_sampler
from study.storage import optuna_private as private
from study.storage.database import (
    StorageConfig,
    StorageUnavailableError,
    is_transient,
    open_storage,
    retrying,
    unavailable,
)
from study.storage.identity import StudyReplacedError, check_held, generation, holding
from study.storage.urls import redact

logger = logging.getLogger(__name__)

Objective = Callable[[optuna.trial.Trial], Any]
TrialCallback = Callable[[optuna.Study, FrozenTrial], None]


def _tell(study: optuna.Study, trial: optuna.trial.Trial, state: TrialState, values: Any,
          config: StorageConfig) -> FrozenTrial | None:
    def tell() -> FrozenTrial:
        return study.tell(trial, values if state == TrialState.COMPLETE else None, state=state)

    try:
        return retrying(tell, url=config.url, what=f"record the result of trial {trial.number}",
                        attempts=config.connect_attempts)
    except (UpdateFinishedTrialError, ValueError):  # Optuna 5's tell: "Cannot tell a FAIL trial"
        check_held(study)
        if private.frozen(study, private.trial_id(trial)).state == TrialState.RUNNING:
            raise
        _closed_elsewhere(study, trial, config)
        return None


def _closed_elsewhere(study: optuna.Study, trial: optuna.trial.Trial, config: StorageConfig) -> None:
    state = private.frozen(study, private.trial_id(trial)).state.name
    logger.warning(
        "Trial %d was closed (%s) by another worker while this process ran it: no heartbeat of it reached "
        "the database for longer than the grace period (%d s; a paused process, or an outage longer than "
        "that). Its result is dropped here, a retry with the same parameters is queued by the worker that "
        "closed it, and this worker goes on with the next trial.", trial.number, state, config.grace)


def run_trial(
    study: optuna.Study,
    trial: optuna.trial.Trial,
    objective: Objective,
    *,
    config: StorageConfig,
    catch: tuple[type[Exception], ...] = (),
    callbacks: Sequence[TrialCallback] = (),
) -> FrozenTrial | None:
    """Run the objective on a claimed trial with heartbeats, close it, run the callbacks."""
    values: Any = None
    try:
        with heartbeat(study, private.trial_id(trial), config):
            try:
                values = objective(trial)
                state = TrialState.COMPLETE
            except optuna.TrialPruned as exc:
                state = TrialState.PRUNED
                logger.info("trial %d pruned: %s", trial.number, exc)
                if not trial.user_attrs.get("prune_reason"):  # stored for `study trials`, as printed here
                    trial.set_user_attr("prune_reason", str(exc)[:300] or "pruned")
            except catch as exc:
                state = TrialState.FAIL
                reason = trial.user_attrs.get("fail_reason") or f"{type(exc).__name__}: {redact(exc)[:300]}"
                if not trial.user_attrs.get("fail_reason"):
                    trial.set_user_attr("fail_reason", reason)
                logger.warning("trial %d failed (%s); the study goes on", trial.number, reason)
        if state == TrialState.FAIL:
            _release_memory()  # only now: the traceback held the failed trial's tensors until here
        frozen = _tell(study, trial, state, values, config)
    except KeyboardInterrupt:
        close_interrupted(study, trial)
        raise
    except DiskFullError:  # queued again for when there is space; the run stops with the message, exit 2
        close_interrupted(study, trial, DISK_FULL_REASON)
        raise
    except StudyReplacedError:  # deleted or re-created by another process: nothing more is written
        raise
    except StorageUnavailableError:  # the database itself is full or gone: close and queue it if it can be
        with contextlib.suppress(Exception):  # written, else the next start finds its process gone
            close_interrupted(study, trial, "storage_unavailable")
        raise
    except UpdateFinishedTrialError:  # another worker closed it (found stale) while it ran here
        check_held(study)  # or the whole study was replaced: StudyReplacedError
        _closed_elsewhere(study, trial, config)
        return None
    except BaseException as exc:  # a bug or a storage failure: close the trial, then let it surface
        if isinstance(exc, KeyError):  # a record gone: the study deleted under this process?
            check_held(study)
        place = unwritable_place(exc)
        if place is not None:  # a read-only runs_dir, or a file where its folder must be: queued again
            with contextlib.suppress(Exception):
                close_interrupted(study, trial, UNWRITABLE_REASON)
            raise place from None
        if is_transient(exc):  # a full disk or an outage outside the retried writes (suggesting a value)
            with contextlib.suppress(Exception):
                retrying(lambda: close_interrupted(study, trial, "storage_unavailable"), url=config.url,
                         what=f"close trial {trial.number}", attempts=config.connect_attempts)
            cut = unavailable(exc, url=config.url, what=f"write trial {trial.number}")
            raise TrialCutOffError(str(cut)) from None
        with contextlib.suppress(Exception), signals_deferred():
            if private.frozen(study, private.trial_id(trial)).state == TrialState.RUNNING:
                trial.set_user_attr("fail_reason", f"error: {type(exc).__name__}: {redact(exc)[:300]}")
                study.tell(trial, state=TrialState.FAIL)
        raise
    if frozen is not None:
        for callback in callbacks:  # they read the study: an outage right after the trial is waited out
            retrying(lambda cb=callback: cb(study, frozen), url=config.url, what="tidy up after the trial",
                     attempts=config.connect_attempts)
    return frozen


class TrialCutOffError(StorageUnavailableError):
    """A write of a running trial that the database refused (full, or away) outside the retried writes: the
    trial is closed and queued again where the database lets it; the worker goes on once, then stops."""


def _release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _checkpoint_cleanup(config: Config) -> TrialCallback:
    """After a trial closes, its checkpoints and its chain's are tidied (``checkpoints.trial_closed``)."""

    def cleanup(study: optuna.Study, trial: FrozenTrial) -> None:
        trial_closed(config, trial, generation(study))

    return cleanup


def _n_trials_so_far(storage: optuna.storages.BaseStorage, config: Config) -> int:
    """Part of the sampler seed: a resumed study must not be offered the same first samples again."""
    def count() -> int:
        study_id = storage.get_study_id_from_name(config.study.name)
        counted = private.count_trials_of(storage, study_id)  # by the database: no trial is read
        return counted if counted is not None else len(storage.get_all_trials(study_id, deepcopy=False))

    return retrying(count, url=config.storage.url, what=f"load study {config.study.name!r}",
                    attempts=config.storage.connect_attempts)


def run_worker(
    config: Config,
    *,
    worker_index: int = 0,
    objective_factory: Callable[[Config], Objective],
    on_trial_end: TrialCallback | None = None,
) -> optuna.Study:
    """Run trials until the study has ``n_trials`` finished ones (counting every worker's), or timeout.

    When the remaining trials are all under way in other processes, the worker waits for them: if one of
    them dies it is retried here."""
    storage = open_storage(config.storage)
    seed = config.study.seed + 1000 * worker_index + 7919 * _n_trials_so_far(storage, config)
    study = retrying(
        lambda: optuna.load_study(
            study_name=config.study.name, storage=storage,
            sampler=build_sampler(config.sampler, seed=seed, search_space=config.search),
            pruner=build_pruner(config.pruner, max_epochs=config.train.epochs),
        ),
        url=config.storage.url, what=f"load study {config.study.name!r}",
        attempts=config.storage.connect_attempts,
    )
    objective = objective_factory(public_config(config))
    with holding(study):  # a study deleted or re-created by another process stops this one, writing nothing
        _work(study, config, objective, on_trial_end=on_trial_end, seed=seed)
    return study


def _work(study: optuna.Study, config: Config, objective: Objective, *, on_trial_end: TrialCallback | None,
          seed: int) -> None:
    deadline = time.monotonic() + config.study.timeout if config.study.timeout else None
    callbacks = [_checkpoint_cleanup(config)] + ([on_trial_end] if on_trial_end is not None else [])
    poll = min(5.0, max(0.5, config.storage.heartbeat_interval / 2))
    waiting_since = None
    cut_off = False  # the last trial was stopped by the database (TrialCutOffError)
    sweep_every = config.storage.grace / 2  # a trial is stale only after the grace period anyway
    next_sweep = 0.0  # at once; then every half grace period, spread so that a fleet does not sweep together

    def read(action: Callable[[], Any], what: str) -> Any:  # an outage between trials is waited out too
        return retrying(action, url=config.storage.url, what=what, attempts=config.storage.connect_attempts)

    while True:
        if time.monotonic() >= next_sweep:
            recover_trials(study, config.storage)
            next_sweep = time.monotonic() + sweep_every * random.uniform(0.5, 1.5)
        if deadline is not None and time.monotonic() > deadline:
            logger.info("timeout reached, starting no new trial")
            break
        trial = claim_trial(study, config, sampler_seed=seed)
        if trial is not None:
            waiting_since = None
            try:
                run_trial(study, trial, objective, config=config.storage, catch=(torch_oom(),),
                          callbacks=callbacks)
            except TrialCutOffError as exc:
                if cut_off:  # twice in a row: not a passing outage
                    raise StorageUnavailableError(str(exc)) from None
                logger.warning("trial %d stopped: %s It was queued again; this worker goes on.",
                               trial.number, exc)
                cut_off = True
                continue
            cut_off = False
            continue
        c = read(lambda: counts(study), "count the trials")
        if c["FINISHED"] >= config.study.n_trials:
            break
        if not read(lambda: can_wait_for_others(study), "read the running trials"):
            logger.warning("%d/%d finished; trials running on other hosts send no heartbeats, so this worker "
                           "cannot tell whether they are alive and stops here", c["FINISHED"],
                           config.study.n_trials)
            break
        if waiting_since is None:
            waiting_since = time.monotonic()
            logger.info("%d/%d finished, %d running elsewhere: waiting for them (a trial whose process "
                        "dies is retried here)", c["FINISHED"], config.study.n_trials, c["RUNNING"])
        next_sweep = 0.0  # waiting: each poll looks for dead trials
        time.sleep(poll)


def torch_oom() -> type[Exception]:
    return torch.OutOfMemoryError


def worker_index_for_this_process() -> int:
    """A sampler seed offset for ``study worker`` started without ``--worker-index``: distinct per host and
    process, and never one of the small indexes ``--workers K`` hands out."""
    return 1000 + zlib.crc32(f"{socket.gethostname()}:{os.getpid()}".encode()) % 1_000_000
