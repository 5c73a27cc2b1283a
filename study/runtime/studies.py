"""Creating a study, or resuming one, and what is stored with it (the check that a resumed study's trials stay
comparable with new ones is ``study.runtime.compat``)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import platform
import shutil
import time
from importlib import metadata
from typing import Any

import optuna
from optuna.trial import TrialState

from study.config import Config, config_from_dict
from study.dashboard.artifacts import artifact_dir
from study.errors import UserInputError
from study.runtime.attrs import set_study_attr, study_attr
from study.runtime.compat import check_compatible
from study.runtime.liveness import refuse_while_running
from study.runtime.trials import DEFAULT_CONFIG_ATTR, DEFAULT_SAMPLED_ATTR, inside, study_folder
from study.samplers import build_pruner, build_sampler
from study.space import in_spec
from study.storage import optuna_private as private
from study.storage.database import StorageConfig, open_storage, retrying
from study.storage.identity import GENERATION_ATTR, generation, new_generation, release
from study.storage.locks import claim_lock
from study.storage.urls import redact

logger = logging.getLogger(__name__)


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
    return dataclasses.replace(config,
                               storage=dataclasses.replace(config.storage, url=redact(config.storage.url)))


def _directions(config: Config) -> list[str]:
    if config.study.second_objective:
        return ["maximize", "minimize"]
    return ["maximize"]


def load_existing(name: str, storage_url: str, *, config: Config | None = None,
                  writes: bool = False) -> optuna.Study:
    """An existing study (for status, best, report, worker), or a clear error listing what exists;
    ``writes`` for the commands that write to it (worker, delete), refused in a read-only place."""
    base = (config.storage if config is not None and config.storage.url == storage_url
            else StorageConfig(url=storage_url))
    storage = open_storage(base, must_exist=True, writes=writes)

    def load() -> optuna.Study | list[str]:
        try:
            return optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]

    found = retrying(load, url=storage_url, what=f"load study {name!r}", attempts=base.connect_attempts)
    if isinstance(found, list):
        shown = ", ".join(found) if found else "none"
        raise UserInputError(f"There is no study named {name!r} in {redact(storage_url)} (studies there: "
                             f"{shown}).")
    return found


def stored_config(study: optuna.Study) -> Config:
    raw = study_attr(study, "config")
    if raw is None:
        raise UserInputError(f"Study {study.study_name!r} was not created by this tool (it has no stored "
                             "config).")
    return config_from_dict(raw)


def store_run_settings(study: optuna.Study, config: Config) -> None:
    """Settings a resume may change (``n_trials``, ``timeout``) are stored, so that ``status`` and a worker
    that joins later see the new target."""
    stored = dict(study_attr(study, "config") or {})
    now = public_config(config).to_dict()["study"]
    changed = {k: now[k] for k in ("n_trials", "timeout") if stored.get("study", {}).get(k) != now[k]}
    if not stored or not changed:
        return
    for key, value in changed.items():
        logger.info("study %r: %s %s -> %s (stored)", study.study_name, key, stored["study"].get(key), value)
    stored["study"] = {**stored["study"], **changed}
    set_study_attr(study, "config", stored)



def default_params(config: Config) -> tuple[dict[str, Any], list[str]]:
    """The config's own value of every searched field (``getattr(config.section, field)``), and the fields
    left out because that value lies outside the field's range or choices."""
    params: dict[str, Any] = {}
    outside: list[str] = []
    for name, spec in config.search.items():
        section, _, field_name = name.partition(".")
        value = getattr(getattr(config, section), field_name)
        if not in_spec(value, spec):
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


def remove_study(storage: optuna.storages.BaseStorage, name: str, *, force: bool = False,
                 grace: float = StorageConfig().grace) -> bool:
    """Delete a study with everything it left on disk: its trials' artifacts and its ``runs/<name>`` folder
    (checkpoints). Returns False where there was no such study. Never deletes outside ``study.runs_dir``.

    Refused while a trial of the study runs with a live heartbeat (``refuse_while_running``), unless
    ``force``: that process then finds its study gone at its next write and stops (``storage.identity``)."""
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return False
    if not force:
        refuse_while_running(study, grace=grace, action="deleting or replacing")
    release(storage, private.study_id(study))
    runs_dir = (study_attr(study, "config") or {}).get("study", {}).get("runs_dir")
    if runs_dir:
        store_dir = artifact_dir(runs_dir)
        if store_dir.is_dir():
            store = optuna.artifacts.FileSystemArtifactStore(str(store_dir))
            for trial in study.get_trials(deepcopy=False):
                for meta in optuna.artifacts.get_all_artifact_meta(trial, storage=storage):
                    with contextlib.suppress(FileNotFoundError):
                        store.remove(meta.artifact_id)
        folder = study_folder(runs_dir, name)
        if folder.is_dir() and inside(folder, runs_dir):
            shutil.rmtree(folder, ignore_errors=True)
    optuna.delete_study(study_name=name, storage=storage)
    logger.debug("deleted study %r with its checkpoints and artifacts", name)  # the caller says so, once
    return True


def create_or_resume(
    config: Config, *, fingerprint: str, summary: dict[str, Any], replace: bool = False, force: bool = False
) -> optuna.Study:
    """Create the study once (before any worker starts) or check that the existing one is compatible.
    ``replace`` (``--new``) deletes an existing one first, refused while one of its trials runs unless
    ``force``.

    The stored ``config`` attribute is written last: a study without it was interrupted while being created
    and is completed here, so a half-created study is never taken for a finished one."""
    storage = open_storage(config.storage)
    name = config.study.name
    retrying(lambda: check_warm_start(config, storage), url=config.storage.url,
             what="read the warm-start study", attempts=config.storage.connect_attempts)

    def create() -> optuna.Study:
        if replace and remove_study(storage, name, force=force, grace=config.storage.grace):
            logger.info("replaced study %r: its trials, checkpoints and artifacts were deleted", name)
        study = optuna.create_study(
            study_name=name, storage=storage, directions=_directions(config), load_if_exists=True,
            sampler=build_sampler(config.sampler, seed=config.study.seed, search_space=config.search),
            pruner=build_pruner(config.pruner, max_epochs=config.train.epochs),
        )
        if study_attr(study, "config") is not None:
            return study
        if generation(study) is None:  # this study's identity, whatever id the database gives it
            private.set_study_system_attr(study, GENERATION_ATTR, new_generation())
        study.set_metric_names(config.study.metric_names)
        set_study_attr(study, "dataset_fingerprint", fingerprint)
        set_study_attr(study, "space_hash", config.space_hash())
        set_study_attr(study, "training_hash", config.training_hash())
        set_study_attr(study, "search_space", config.search)
        set_study_attr(study, "data_summary", summary)
        study.set_user_attr("data", f"{summary.get('name', '?')}: {summary.get('pairs', '?')} pairs, "
                                    f"{summary.get('queries', '?')} queries")
        set_study_attr(study, "versions", package_versions())
        study.set_user_attr("created_at", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        enqueue_default(study, config)
        set_study_attr(study, "config", public_config(config).to_dict())
        return study

    def create_locked() -> optuna.Study:
        # several `study run` of one new study started at once: one creates it (and queues the untuned
        # default once), the others find it complete
        with claim_lock(storage, config.storage.url, name):
            return create()

    study = retrying(create_locked, url=config.storage.url, what=f"create or open study {name!r}",
                     attempts=config.storage.connect_attempts)
    check_compatible(study, config, fingerprint)
    retrying(lambda: store_run_settings(study, config), url=config.storage.url, what="store the run settings",
             attempts=config.storage.connect_attempts)
    with claim_lock(storage, config.storage.url, name):
        enqueue_known(study, config, storage)
    return study


def check_warm_start(config: Config, storage: optuna.storages.BaseStorage) -> None:
    """``--warm-start-from``: the other study exists and has finished parameters that fit this study's space,
    checked before anything is created (a refusal leaves no new study behind)."""
    source = config.study.warm_start_from
    if not source:
        return
    if source == config.study.name:
        raise UserInputError(f"study.warm_start_from names the study itself ({source!r}).")
    try:
        other = optuna.load_study(study_name=source, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
        raise UserInputError(f"--warm-start-from {source!r}: there is no such study in "
                             f"{redact(config.storage.url)} (studies there: "
                             f"{', '.join(names) or 'none'}); nothing was created.") from None
    finished = [t for t in other.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values]
    if finished and not any(k in config.search and in_spec(v, config.search[k])
                            for t in finished for k, v in t.params.items()):
        raise UserInputError(f"--warm-start-from {source!r}: none of its trials' parameters fit this study's "
                             "search space, so there is nothing to start from; nothing was created.")


def enqueue_known(study: optuna.Study, config: Config, storage: optuna.storages.BaseStorage) -> None:
    """Queue the config's ``[[enqueue]]`` entries, then the best finished configs of
    ``study.warm_start_from``, each once (an entry whose params any trial already has is skipped). The
    warm-start configs are run again here, on this study's data: another study's values are not this one's."""
    for entry in config.enqueue:
        study.enqueue_trial(entry, user_attrs={"enqueued": True}, skip_if_exists=True)
    source = config.study.warm_start_from
    if not source:
        return
    other = optuna.load_study(study_name=source, storage=storage)  # there: ``check_warm_start``
    ranked = sorted((t for t in other.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values),
                    key=lambda t: t.values[0], reverse=True)
    taken = 0
    for t in ranked:
        params = {k: v for k, v in t.params.items() if k in config.search and in_spec(v, config.search[k])}
        if not params:
            continue
        study.enqueue_trial(params, user_attrs={"warm_start_from": f"{source}#{t.number}"},
                            skip_if_exists=True)
        taken += 1
        if taken >= config.study.warm_start_trials:
            break
    logger.info("warm start: %d best configs of study %r queued first", taken, source)
