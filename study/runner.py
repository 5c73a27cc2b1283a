"""Creating, resuming and running a study: compatibility checks, the worker loop, parallel workers,
the final test evaluation of the best trial.

``n_trials`` is the study's total of finished trials (complete + pruned), whoever ran them.
"""

from __future__ import annotations

import logging
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from importlib import metadata
from typing import Any, Callable

import optuna
from optuna.trial import TrialState

from data.errors import UserInputError
from study.config import Config, config_from_dict
from study.samplers import build_pruner, build_sampler
from study.storage import build_storage, redact

logger = logging.getLogger(__name__)

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered like Ctrl-C so that Optuna closes the running trial."""


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("study", "torch", "transformers", "optuna", "pandas", "scikit-learn", "numpy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _directions(config: Config) -> list[str]:
    if config.study.second_objective:
        return ["maximize", "minimize"]
    return ["maximize"]


def load_existing(name: str, storage_url: str, *, config: Config | None = None) -> optuna.Study:
    """An existing study (for status, best, report, worker), or a clear error listing what exists."""
    from study.storage import StorageConfig

    base = config.storage if config is not None else StorageConfig(url=storage_url)
    storage = build_storage(base if base.url == storage_url else StorageConfig(url=storage_url))
    names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
    if name not in names:
        shown = ", ".join(names) if names else "none"
        raise UserInputError(f"There is no study named {name!r} in {redact(storage_url)} (studies there: {shown}).")
    return optuna.load_study(study_name=name, storage=storage)


def stored_config(study: optuna.Study) -> Config:
    raw = study.user_attrs.get("config")
    if raw is None:
        raise UserInputError(f"Study {study.study_name!r} was not created by this tool (it has no stored config).")
    return config_from_dict(raw)


def check_compatible(study: optuna.Study, config: Config, fingerprint: str) -> None:
    attrs = study.user_attrs
    problems = []
    if attrs.get("dataset_fingerprint") not in (None, fingerprint):
        problems.append(f"the dataset differs (stored fingerprint {attrs['dataset_fingerprint']}, now {fingerprint})")
    if attrs.get("space_hash") not in (None, config.space_hash()):
        problems.append("the search space differs")
    elif attrs.get("training_hash") not in (None, config.training_hash()):
        problems.append("the data/model/training settings differ")
    if problems:
        raise UserInputError(
            f"Study {study.study_name!r} already exists and {' and '.join(problems)}, so its trials would not be "
            "comparable with new ones; nothing was changed. Resume it with the same config, or start a new study "
            "with another --name (or pass --new to replace this one)."
        )


def create_or_resume(
    config: Config, *, fingerprint: str, summary: dict[str, Any], replace: bool = False
) -> optuna.Study:
    """Create the study once (before any worker starts) or check that the existing one is compatible."""
    storage = build_storage(config.storage)
    name = config.study.name
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
        check_compatible(study, config, fingerprint)
        return study
    metric = config.study.metric
    names = [metric] + ({"latency": ["latency_ms_per_1000_pairs"], "model_size": ["model_size_m"]}
                        .get(config.study.second_objective, []))
    study.set_metric_names(names)
    study.set_user_attr("config", config.to_dict())
    study.set_user_attr("dataset_fingerprint", fingerprint)
    study.set_user_attr("space_hash", config.space_hash())
    study.set_user_attr("training_hash", config.training_hash())
    study.set_user_attr("search_space", config.search)
    study.set_user_attr("data_summary", summary)
    study.set_user_attr("versions", package_versions())
    study.set_user_attr("created_at", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    return study


def counts(study: optuna.Study) -> dict[str, int]:
    out = {s.name: 0 for s in TrialState}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] += 1
    out["FINISHED"] = out["COMPLETE"] + out["PRUNED"]
    return out


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_dead_trials(study: optuna.Study, *, max_retry: int = 3) -> list[int]:
    """RUNNING trials started on this host by a process that no longer exists: FAIL and retry them now,
    without waiting out the heartbeat grace period."""
    host = socket.gethostname()
    failed = []
    retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get("pid")
        if t.user_attrs.get("host") != host or pid is None or pid == os.getpid() or _pid_alive(int(pid)):
            continue
        try:
            study._storage.set_trial_user_attr(t._trial_id, "fail_reason", "process_died")
            if study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                retry(study, study._storage.get_trial(t._trial_id))
                failed.append(t.number)
        except RuntimeError:  # another worker closed it first
            continue
    if failed:
        logger.warning("trials %s were RUNNING in processes that no longer exist: marked FAIL and queued again",
                       failed)
    return failed


def run_worker(
    config: Config,
    *,
    worker_index: int = 0,
    objective_factory: Callable[[Config], Callable[[optuna.trial.Trial], Any]],
    on_trial_end: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None,
) -> optuna.Study:
    """Run trials until the study has ``n_trials`` finished ones (counting every worker's), or timeout."""
    storage = build_storage(config.storage)
    study = optuna.load_study(
        study_name=config.study.name, storage=storage,
        sampler=build_sampler(config.sampler, seed=config.study.seed + 1000 * worker_index, search_space=config.search),
        pruner=build_pruner(config.pruner, max_epochs=config.train.epochs),
    )
    objective = objective_factory(config)
    deadline = time.monotonic() + config.study.timeout if config.study.timeout else None
    catch: tuple[type[Exception], ...] = (torch_oom(),)
    callbacks = [on_trial_end] if on_trial_end is not None else []
    while True:
        fail_dead_trials(study, max_retry=config.storage.max_retry)
        c = counts(study)
        if c["FINISHED"] + c["RUNNING"] >= config.study.n_trials and c["WAITING"] == 0:
            break
        if c["FINISHED"] >= config.study.n_trials:
            break
        if deadline is not None and time.monotonic() > deadline:
            logger.info("timeout reached, starting no new trial")
            break
        try:
            study.optimize(objective, n_trials=1, catch=catch, callbacks=callbacks, gc_after_trial=False)
        except KeyboardInterrupt:
            _requeue_interrupted(study, config)
            raise
    return study


def torch_oom() -> type[Exception]:
    import torch

    return torch.OutOfMemoryError


def _requeue_interrupted(study: optuna.Study, config: Config) -> None:
    """The trial Ctrl-C stopped is FAIL now; queue it again so the next run continues its checkpoint."""
    pid = os.getpid()
    trials = study.get_trials(deepcopy=False)
    retried = {t.system_attrs.get("failed_trial") for t in trials} | {
        n for t in trials for n in t.system_attrs.get("retry_history", [])}
    retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=config.storage.max_retry)
    for t in trials:
        if (t.state == TrialState.FAIL and t.user_attrs.get("pid") == pid
                and t.user_attrs.get("fail_reason") == "interrupted" and t.number not in retried):
            retry(study, t)


def install_sigterm() -> None:
    def handler(signum: int, frame: object) -> None:
        raise Terminated()

    signal.signal(signal.SIGTERM, handler)


def spawn_workers(config: Config, *, n: int, quiet: bool = True) -> int:
    """K local worker processes on one storage, spread over the visible GPUs; returns the worst exit code."""
    import torch

    n_gpus = torch.cuda.device_count()
    procs = []
    for i in range(n):
        env = dict(os.environ)
        if n_gpus > 1 and "CUDA_VISIBLE_DEVICES" not in os.environ:
            env["CUDA_VISIBLE_DEVICES"] = str(i % n_gpus)
        cmd = [sys.executable, "-m", "study", "worker", "--name", config.study.name, "--storage", config.storage.url,
               "--worker-index", str(i + 1)]
        if config.study.timeout:
            cmd += ["--timeout", str(config.study.timeout)]
        if quiet:
            cmd.append("--quiet")
        procs.append(subprocess.Popen(cmd, env=env))
    code = 0
    try:
        for p in procs:
            code = max(code, p.wait())
    except KeyboardInterrupt:
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            p.wait()
        raise
    return code
