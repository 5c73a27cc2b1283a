"""Creating, resuming and running a study: compatibility checks, the worker loop, recovery of trials whose
process died, parallel workers.

``n_trials`` is the study's total of finished trials (complete + pruned), whoever ran them. A worker
*claims* a trial (pops a queued retry or asks a new one) under a lock, only while the claims (finished,
running and queued trials) fall short of the target; a claimed trial that would still exceed the target
(possible only where no lock exists) is closed as FAIL with reason ``surplus`` before it runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages._heartbeat import get_heartbeat_thread, is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState

from study.comparison import DEFAULT_CONFIG_ATTR, DEFAULT_SAMPLED_ATTR
from study.config import Config, config_from_dict
from study.data.errors import UserInputError
from study.samplers import build_pruner, build_sampler
from study.storage import (
    HEARTBEAT_ATTR,
    RetryStaleTrial,
    StorageConfig,
    build_storage,
    claim_lock,
    redact,
    retrying,
)

logger = logging.getLogger(__name__)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
CLAIMED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
RETRIED_REASONS = ("interrupted", "process_died", "heartbeat_stale")  # fail reasons that queue a retry

Objective = Callable[[optuna.trial.Trial], Any]
TrialCallback = Callable[[optuna.Study, FrozenTrial], None]


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered like Ctrl-C so that the running trial is closed and queued again."""


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("study", "torch", "transformers", "optuna", "pandas", "scikit-learn", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def public_config(config: Config) -> Config:
    """The config as stored with the study and its trials: the storage password replaced by ``***``."""
    return dataclasses.replace(config, storage=dataclasses.replace(config.storage, url=redact(config.storage.url)))


def _directions(config: Config) -> list[str]:
    if config.study.second_objective:
        return ["maximize", "minimize"]
    return ["maximize"]


def load_existing(name: str, storage_url: str, *, config: Config | None = None) -> optuna.Study:
    """An existing study (for status, best, report, worker), or a clear error listing what exists."""
    base = config.storage if config is not None and config.storage.url == storage_url else StorageConfig(url=storage_url)
    storage = build_storage(base)

    def load() -> optuna.Study | list[str]:
        try:
            return optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]

    found = retrying(load, url=storage_url, what=f"load study {name!r}", attempts=base.connect_attempts)
    if isinstance(found, list):
        shown = ", ".join(found) if found else "none"
        raise UserInputError(f"There is no study named {name!r} in {redact(storage_url)} (studies there: {shown}).")
    return found


def stored_config(study: optuna.Study) -> Config:
    raw = study.user_attrs.get("config")
    if raw is None:
        raise UserInputError(f"Study {study.study_name!r} was not created by this tool (it has no stored config).")
    return config_from_dict(raw)


def _space_difference(stored: dict[str, Any], now: dict[str, Any]) -> str:
    parts = []
    added = sorted(set(now) - set(stored))
    removed = sorted(set(stored) - set(now))
    changed = sorted(k for k in set(now) & set(stored) if now[k] != stored[k])
    if added:
        parts.append("now also searches " + ", ".join(added))
    if removed:
        parts.append("no longer searches " + ", ".join(removed))
    for key in changed:
        parts.append(f"{key} was {stored[key]} and is now {now[key]}")
    return "; ".join(parts)


def check_compatible(study: optuna.Study, config: Config, fingerprint: str) -> None:
    attrs = study.user_attrs
    problems = []
    if attrs.get("dataset_fingerprint") not in (None, fingerprint):
        problems.append(f"the dataset differs (stored fingerprint {attrs['dataset_fingerprint']}, now {fingerprint})")
    if attrs.get("space_hash") not in (None, config.space_hash()):
        diff = _space_difference(attrs.get("search_space") or {}, config.search)
        problems.append("the search space differs" + (f" ({diff})" if diff else ""))
    elif attrs.get("training_hash") not in (None, config.training_hash()):
        problems.append("the data/model/training settings differ")
    if problems:
        raise UserInputError(
            f"Study {study.study_name!r} already exists and {' and '.join(problems)}, so its trials would not be "
            "comparable with new ones; nothing was changed. Resume it with the same config, or start a new study "
            "with another --name (or pass --new to replace this one)."
        )


def _in_spec(value: Any, spec: dict[str, Any]) -> bool:
    """Whether ``value`` is one the search-space entry ``spec`` can give (``study.space`` conventions)."""
    if "choices" in spec:
        return any(value == c and isinstance(value, bool) == isinstance(c, bool) for c in spec["choices"])
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    low, high = spec["low"], spec["high"]
    if not low <= value <= high:
        return False
    is_int = isinstance(low, int) and isinstance(high, int) and not isinstance(spec.get("step", 1), float)
    if is_int and value != int(value):
        return False
    step = spec.get("step")
    return not step or abs((value - low) / step - round((value - low) / step)) < 1e-9


def default_params(config: Config) -> tuple[dict[str, Any], list[str]]:
    """The config's own value of every searched field (``getattr(config.section, field)``), and the fields
    left out because that value lies outside the field's range or choices."""
    params: dict[str, Any] = {}
    outside: list[str] = []
    for name, spec in config.search.items():
        section, _, field_name = name.partition(".")
        value = getattr(getattr(config, section), field_name)
        if not _in_spec(value, spec):
            outside.append(name)
        elif "choices" in spec:
            params[name] = value
        else:
            is_int = isinstance(spec["low"], int) and isinstance(spec["high"], int)
            as_int = is_int and not isinstance(spec.get("step", 1), float)
            params[name] = int(value) if as_int else float(value)
    return params, outside


def enqueue_default(study: optuna.Study, config: Config) -> None:
    """Queue the untuned default config as the study's first trial, marked ``default_config`` (a user
    attribute its retries keep), so that the end of the run can show what tuning gained. Fields whose default
    lies outside their search range are left to the sampler. Once per study: a half-created study that is
    completed later does not get a second one."""
    if any(t.user_attrs.get(DEFAULT_CONFIG_ATTR) for t in study.get_trials(deepcopy=False)):
        return
    params, outside = default_params(config)
    attrs: dict[str, Any] = {DEFAULT_CONFIG_ATTR: True}
    if outside:
        logger.warning("untuned default trial: %s left to the sampler (the default lies outside the search "
                       "range)", ", ".join(outside))
        attrs[DEFAULT_SAMPLED_ATTR] = outside
    study.enqueue_trial(params, user_attrs=attrs)


def create_or_resume(
    config: Config, *, fingerprint: str, summary: dict[str, Any], replace: bool = False
) -> optuna.Study:
    """Create the study once (before any worker starts) or check that the existing one is compatible.

    The stored ``config`` attribute is written last: a study without it was interrupted while being created
    and is completed here, so a half-created study is never taken for a finished one."""
    storage = build_storage(config.storage)
    name = config.study.name

    def create() -> optuna.Study:
        if replace:
            try:
                optuna.delete_study(study_name=name, storage=storage)
                logger.info("deleted existing study %r (--new)", name)
            except KeyError:
                pass
        study = optuna.create_study(
            study_name=name, storage=storage, directions=_directions(config), load_if_exists=True,
            sampler=build_sampler(config.sampler, seed=config.study.seed, search_space=config.search),
            pruner=build_pruner(config.pruner, max_epochs=config.train.epochs),
        )
        if "config" in study.user_attrs:
            return study
        metric = config.study.metric
        names = [metric] + ({"latency": ["latency_ms_per_1000_pairs"], "model_size": ["model_size_m"]}
                            .get(config.study.second_objective, []))
        study.set_metric_names(names)
        study.set_user_attr("dataset_fingerprint", fingerprint)
        study.set_user_attr("space_hash", config.space_hash())
        study.set_user_attr("training_hash", config.training_hash())
        study.set_user_attr("search_space", config.search)
        study.set_user_attr("data_summary", summary)
        study.set_user_attr("versions", package_versions())
        study.set_user_attr("created_at", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        enqueue_default(study, config)
        study.set_user_attr("config", public_config(config).to_dict())
        return study

    study = retrying(create, url=config.storage.url, what=f"create or open study {name!r}",
                     attempts=config.storage.connect_attempts)
    check_compatible(study, config, fingerprint)
    return study


def counts(study: optuna.Study) -> dict[str, int]:
    out = {s.name: 0 for s in TrialState}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] += 1
    out["FINISHED"] = out["COMPLETE"] + out["PRUNED"]
    return out


# --- which process runs a trial, and whether it still exists ---------------------------------------------

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


def _is_local(trial: FrozenTrial) -> bool:
    attrs = trial.user_attrs
    return (attrs.get("host") == socket.gethostname() and attrs.get("pid") is not None
            and attrs.get("pid_namespace", _pid_namespace()) == _pid_namespace())


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
    """RUNNING -> FAIL with ``reason``, then queued again; False where another worker closed it first."""
    storage = study._storage
    try:
        storage.set_trial_user_attr(trial_id, "fail_reason", reason)
        if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
            return False
    except UpdateFinishedTrialError:
        return False
    RetryStaleTrial(max_retry=max_retry)(study, storage.get_trial(trial_id))
    return True


def process_gone(trial: FrozenTrial) -> bool:
    """A RUNNING trial started on this host whose process no longer exists (pid and start time checked)."""
    pid = trial.user_attrs.get("pid")
    return (_is_local(trial) and pid != os.getpid()
            and not _process_alive(int(pid), trial.user_attrs.get("process_start")))


def fail_dead_trials(study: optuna.Study, *, max_retry: int = 3) -> list[int]:
    """RUNNING trials started on this host by a process that no longer exists: FAIL and retry them now,
    without waiting out the heartbeat grace period."""
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not process_gone(t):
            continue
        if _fail_and_retry(study, t._trial_id, "process_died", max_retry):
            failed.append(t.number)
    if failed:
        logger.warning("trials %s were RUNNING in processes of this host that no longer exist: marked FAIL and "
                       "queued again", failed)
    return failed


def fail_stale_trials(study: optuna.Study, *, max_retry: int = 3, grace: float = 120) -> list[int]:
    """RUNNING trials whose heartbeat stopped for longer than the grace period (any host): FAIL and retry."""
    storage = study._storage
    if is_heartbeat_enabled(storage):
        stale = storage._get_stale_trial_ids(study._study_id)  # type: ignore[attr-defined]
    else:  # the journal file: the heartbeat is a user attribute, compared with this host's clock
        now = time.time()
        stale = [t._trial_id for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                 if isinstance(t.user_attrs.get(HEARTBEAT_ATTR), (int, float))
                 and now - t.user_attrs[HEARTBEAT_ATTR] > grace]
    failed = []
    for trial_id in stale:
        if _fail_and_retry(study, trial_id, "heartbeat_stale", max_retry):
            failed.append(storage.get_trial(trial_id).number)
    if failed:
        logger.warning("trials %s stopped sending heartbeats: marked FAIL and queued again", failed)
    return failed


def recover_trials(study: optuna.Study, config: StorageConfig) -> list[int]:
    """Fail and queue again the trials whose process died; under the claim lock, so that two workers never
    queue the same trial twice."""
    def recover() -> list[int]:
        with claim_lock(study._storage, config.url, study.study_name):
            return (fail_dead_trials(study, max_retry=config.max_retry)
                    + fail_stale_trials(study, max_retry=config.max_retry, grace=config.grace))

    return retrying(recover, url=config.url, what="check for dead trials", attempts=config.connect_attempts)


# --- claiming and running one trial --------------------------------------------------------------------------

def claim_trial(study: optuna.Study, config: Config, *, sampler_seed: int) -> optuna.trial.Trial | None:
    """The next trial to run (a queued retry first), or None while the claims already reach ``n_trials``."""
    target = config.study.n_trials
    claimed: list[optuna.trial.Trial] = []  # survives a retried attempt: a trial is asked for once

    def claim() -> optuna.trial.Trial | None:
        if not claimed:
            with claim_lock(study._storage, config.storage.url, study.study_name):
                c = counts(study)
                if c["WAITING"] == 0 and c["FINISHED"] + c["RUNNING"] >= target:
                    return None
                with warnings.catch_warnings():  # optuna expects heartbeats with optimize(); this loop sends them
                    warnings.filterwarnings("ignore", message="Heartbeat of storage")
                    claimed.append(study.ask())
                _mark_claimed(study, claimed[0], sampler_seed)
        else:
            _mark_claimed(study, claimed[0], sampler_seed)
        return claimed[0]

    try:
        trial = retrying(claim, url=config.storage.url, what="claim a trial",
                         attempts=config.storage.connect_attempts)
        if trial is None:
            return None
        ahead = sum(t.number < trial.number and t.state in CLAIMED for t in study.get_trials(deepcopy=False))
        if ahead >= target:  # another worker took the last slot at the same moment
            study._storage.set_trial_user_attr(trial._trial_id, "fail_reason", "surplus")
            study.tell(trial, state=TrialState.FAIL)
            logger.info("trial %d not run: the study already has %d trials finished or under way", trial.number,
                        ahead)
            return None
    except KeyboardInterrupt:
        if claimed:
            close_interrupted(study, claimed[0])
        raise
    return trial


def _mark_claimed(study: optuna.Study, trial: optuna.trial.Trial, sampler_seed: int) -> None:
    """Record who runs the trial (for the same-host process check) and a first heartbeat (a trial that never
    sent one is never found stale)."""
    attrs = {**process_identity(), "sampler_seed": sampler_seed}
    if is_heartbeat_enabled(study._storage):
        study._storage.record_heartbeat(trial._trial_id)  # type: ignore[attr-defined]
    else:
        attrs[HEARTBEAT_ATTR] = time.time()
    for key, value in attrs.items():
        study._storage.set_trial_user_attr(trial._trial_id, key, value)


class _AttrHeartbeat:
    """Heartbeats where the storage has none (the journal file): the time as a user attribute, every
    ``interval`` seconds, from a thread."""

    def __init__(self, study: optuna.Study, trial_id: int, interval: float) -> None:
        import threading

        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(study, trial_id, interval), daemon=True)

    def _beat(self, study: optuna.Study, trial_id: int, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                study._storage.set_trial_user_attr(trial_id, HEARTBEAT_ATTR, time.time())
            except UpdateFinishedTrialError:
                return

    def __enter__(self) -> None:
        self._thread.start()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _heartbeat(study: optuna.Study, trial_id: int, config: StorageConfig) -> Any:
    if is_heartbeat_enabled(study._storage):
        return get_heartbeat_thread(trial_id, study._storage)
    return _AttrHeartbeat(study, trial_id, config.heartbeat_interval)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Ctrl-C / SIGTERM ignored while a trial is being closed, so a second press cannot leave it RUNNING."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def close_interrupted(study: optuna.Study, trial: optuna.trial.Trial) -> None:
    """The trial Ctrl-C or SIGTERM stopped: FAIL with reason ``interrupted`` and queued again, so the next run
    continues from its checkpoint."""
    with _signals_deferred():
        frozen = study._storage.get_trial(trial._trial_id)
        if frozen.state != TrialState.RUNNING:
            return
        # a deliberate stop is no fault of the trial: it does not use up the retries (``max_retry=None``)
        if _fail_and_retry(study, trial._trial_id, "interrupted", None):
            logger.warning("trial %d interrupted: marked FAIL and queued again", trial.number)


def _tell(study: optuna.Study, trial: optuna.trial.Trial, state: TrialState, values: Any,
          config: StorageConfig) -> FrozenTrial | None:
    def tell() -> FrozenTrial:
        return study.tell(trial, values if state == TrialState.COMPLETE else None, state=state)

    try:
        return retrying(tell, url=config.url, what=f"record the result of trial {trial.number}",
                        attempts=config.connect_attempts)
    except UpdateFinishedTrialError:
        frozen = study._storage.get_trial(trial._trial_id)
        logger.warning("trial %d was already closed (%s) by another worker, probably because its heartbeat "
                       "stopped for longer than the grace period; its result is dropped", trial.number,
                       frozen.state.name)
        return None


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
        with _heartbeat(study, trial._trial_id, config):
            try:
                values = objective(trial)
                state = TrialState.COMPLETE
            except optuna.TrialPruned as exc:
                state = TrialState.PRUNED
                logger.info("trial %d pruned: %s", trial.number, exc)
            except catch as exc:
                state = TrialState.FAIL
                reason = study._storage.get_trial_user_attrs(trial._trial_id).get("fail_reason", type(exc).__name__)
                logger.warning("trial %d failed (%s); the study goes on", trial.number, reason)
        if state == TrialState.FAIL:
            _release_memory()  # only now: the traceback held the failed trial's tensors until here
        frozen = _tell(study, trial, state, values, config)
    except KeyboardInterrupt:
        close_interrupted(study, trial)
        raise
    except BaseException as exc:  # a bug or a storage failure: close the trial, then let it surface
        with contextlib.suppress(Exception), _signals_deferred():
            if study._storage.get_trial(trial._trial_id).state == TrialState.RUNNING:
                study._storage.set_trial_user_attr(trial._trial_id, "fail_reason",
                                                   f"error: {type(exc).__name__}: {redact(exc)[:300]}")
                study.tell(trial, state=TrialState.FAIL)
        raise
    if frozen is not None:
        for callback in callbacks:
            callback(study, frozen)
    return frozen


def _release_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _checkpoint_cleanup(config: Config) -> TrialCallback:
    """After a trial closes: drop its resume file once it finished, and the folders of failed trials that no
    retry will continue (a finished retry's predecessors, and failures that are not retried)."""
    import shutil

    from study.objective import LAST, trial_dir

    def cleanup(study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state in FINISHED:
            (trial_dir(config, trial.number) / LAST).unlink(missing_ok=True)
            dead = list(trial.system_attrs.get("retry_history", []))
        else:
            dead = [trial.number] if trial.user_attrs.get("fail_reason") not in RETRIED_REASONS else []
        for number in dead:
            shutil.rmtree(trial_dir(config, number), ignore_errors=True)

    return cleanup


def _can_wait(study: optuna.Study) -> bool:
    """Waiting for trials under way elsewhere is safe where a dead one will be noticed: heartbeats, or the
    process check for trials of this host."""
    if is_heartbeat_enabled(study._storage):
        return True
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return all(_is_local(t) or HEARTBEAT_ATTR in t.user_attrs for t in running)


def _n_trials_so_far(storage: optuna.storages.BaseStorage, config: Config) -> int:
    """Part of the sampler seed: a resumed study must not be offered the same first samples again."""
    def count() -> int:
        study_id = storage.get_study_id_from_name(config.study.name)
        return len(storage.get_all_trials(study_id, deepcopy=False))

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
    storage = build_storage(config.storage)
    seed = config.study.seed + 1000 * worker_index + 7919 * _n_trials_so_far(storage, config)
    study = retrying(
        lambda: optuna.load_study(
            study_name=config.study.name, storage=storage,
            sampler=build_sampler(config.sampler, seed=seed, search_space=config.search),
            pruner=build_pruner(config.pruner, max_epochs=config.train.epochs),
        ),
        url=config.storage.url, what=f"load study {config.study.name!r}", attempts=config.storage.connect_attempts,
    )
    objective = objective_factory(public_config(config))
    deadline = time.monotonic() + config.study.timeout if config.study.timeout else None
    callbacks = [_checkpoint_cleanup(config)] + ([on_trial_end] if on_trial_end is not None else [])
    poll = min(5.0, max(0.5, config.storage.heartbeat_interval / 2))
    waiting_since = None
    while True:
        recover_trials(study, config.storage)
        if deadline is not None and time.monotonic() > deadline:
            logger.info("timeout reached, starting no new trial")
            break
        trial = claim_trial(study, config, sampler_seed=seed)
        if trial is not None:
            waiting_since = None
            run_trial(study, trial, objective, config=config.storage, catch=(torch_oom(),), callbacks=callbacks)
            continue
        c = counts(study)
        if c["FINISHED"] >= config.study.n_trials:
            break
        if not _can_wait(study):
            logger.warning("%d/%d finished; trials running on other hosts send no heartbeats, so this worker "
                           "cannot tell whether they are alive and stops here", c["FINISHED"], config.study.n_trials)
            break
        if waiting_since is None:
            waiting_since = time.monotonic()
            logger.info("%d/%d finished, %d running elsewhere: waiting for them (a trial whose process dies is "
                        "retried here)", c["FINISHED"], config.study.n_trials, c["RUNNING"])
        time.sleep(poll)
    return study


def torch_oom() -> type[Exception]:
    import torch

    return torch.OutOfMemoryError


def install_sigterm() -> None:
    def handler(signum: int, frame: object) -> None:
        raise Terminated()

    signal.signal(signal.SIGTERM, handler)


def worker_index_for_this_process() -> int:
    """A sampler seed offset for ``study worker`` started without ``--worker-index``: distinct per host and
    process, and never one of the small indexes ``--workers K`` hands out."""
    return 1000 + zlib.crc32(f"{socket.gethostname()}:{os.getpid()}".encode()) % 1_000_000


def cpu_threads_per_worker(n_workers: int) -> int:
    """Intra-op threads for each of ``n_workers`` CPU workers: the usable cores split between them."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(n_workers, 1))


def spawn_workers(config: Config, *, n: int, quiet: bool = True) -> int:
    """K local worker processes on one storage, spread over the visible GPUs; returns the worst exit code.

    The storage URL travels in the environment, not on the command line, where ``ps`` would show a password."""
    import torch

    n_gpus = torch.cuda.device_count()
    on_cpu = n_gpus == 0 or config.study.device == "cpu"
    threads = cpu_threads_per_worker(n)
    procs = []
    for i in range(n):
        env = dict(os.environ, STUDY_STORAGE=config.storage.url)
        if n_gpus > 1 and "CUDA_VISIBLE_DEVICES" not in os.environ:
            env["CUDA_VISIBLE_DEVICES"] = str(i % n_gpus)
        if on_cpu and "OMP_NUM_THREADS" not in os.environ:  # K workers share the cores instead of fighting
            env["OMP_NUM_THREADS"] = str(threads)
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        cmd = [sys.executable, "-m", "study", "worker", "--name", config.study.name, "--worker-index", str(i + 1)]
        if config.study.timeout:
            cmd += ["--timeout", str(config.study.timeout)]
        if config.study.device != "auto":
            cmd += ["--device", config.study.device]
        if quiet:
            cmd.append("--quiet")
        procs.append(subprocess.Popen(cmd, env=env))
    codes = []
    try:
        for p in procs:
            codes.append(p.wait())
    except KeyboardInterrupt as exc:
        sig = signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT
        with _signals_deferred():
            for p in procs:
                if p.poll() is None:
                    p.send_signal(sig)
            for p in procs:
                p.wait()
        raise
    return max(codes, key=lambda code: (code != 0, code))
