"""One study run, for the CLI (``study run``) and the Python API (``study.run``) alike: from a resolved config
(``study.runtime.request``) through the checks, creation or resumption and the trials to the comparison on
the test split. Also a worker joining an existing study (``study worker``)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

import optuna

from study.config import Config
from study.dashboard.artifacts import write_study_note
from study.errors import UserInputError
from study.evaluation.held_out import compare_on_test
from study.models.device import enable_fast_math
from study.objective import Objective
from study.profiles import PROFILE_NOTES
from study.runtime.attrs import study_attr
from study.runtime.cache import trim_cache
from study.runtime.checkpoints import prune_checkpoints
from study.runtime.preflight import check_model, check_variants, describe_variant, device_for
from study.runtime.progress import Progress
from study.runtime.request import RunRequest, check_data, load_config, resolve_config
from study.runtime.signals import Terminated
from study.runtime.spawn import spawn_workers
from study.runtime.studies import create_or_resume, load_existing, stored_config
from study.runtime.trackers import check_tracker, tracker_callback
from study.runtime.trials import counts
from study.runtime.worker import run_worker, worker_index_for_this_process
from study.storage.identity import holding
from study.storage.urls import redact
from study.toml_out import toml_value
from study.views import summary_table
from study.workspace import Workspace, prepare_workspace

__all__ = ["RunRequest", "finish", "join_study", "load_config", "resolve_config", "run_study", "work"]


def _objective_factory(ws: Workspace, progress: Progress):
    def make(config: Config) -> Objective:
        return Objective(config, ws, on_trial_start=progress.trial_started, on_step=progress.on_step,
                         on_epoch=progress.epoch_done)

    return make


def _trial_end_callback(config: Config, progress: Progress):
    tracker = tracker_callback(config.study.tracker, uri=config.study.tracker_uri,
                               study_name=config.study.name, metric_names=config.study.metric_names)

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        prune_checkpoints(study, config)
        if tracker is not None and trial.values:
            tracker(study, trial)
        progress.trial_ended(study, trial)

    return callback


def prepare_inputs(config: Config, ws: Workspace, progress: Progress) -> None:
    """The one-off work of a run, each a visible step with its duration, before the first trial (which would
    otherwise sit silent in its first epoch): the zero-shot cosine of the pretrained encoder, the lexical
    match features, the tokens and device tensors of the training and validation splits. Each is cached
    (memory, and on disk where it says so), so later trials and runs find them ready."""
    model = config.model
    n_pairs = len(ws.split("train")) + len(ws.split("val"))
    if model.uses_prior:
        with progress.step(f"zero-shot cosine of the pretrained encoder, {n_pairs:,} pairs (once; cached)"):
            for name in ("train", "val"):
                ws.prior(name, model.encoder)
    if model.uses_match or "model.match_features" in config.search:
        with progress.step(f"lexical match features, {n_pairs:,} pairs (once)"):
            for name in ("train", "val"):
                ws.match(name)
    what = "tokens and tensors" if model.uses_encoder else "feature tensors"
    with progress.step(f"{what} of the training and validation splits (once; tokens cached)"):
        for name in ("train", "val"):
            ws.tensors(name, model)


def work(config: Config, ws: Workspace, *, worker_index: int, quiet: bool,
         prepare: bool = True) -> optuna.Study:
    progress = Progress(target=config.study.n_trials, epochs=config.train.epochs, metric=config.study.metric,
                        quiet=quiet, architecture=config.model.architecture)
    if prepare:
        prepare_inputs(config, ws, progress)
    return run_worker(config, worker_index=worker_index, objective_factory=_objective_factory(ws, progress),
                      on_trial_end=_trial_end_callback(config, progress))


def finish(study: optuna.Study, config: Config, ws: Workspace, *, quiet: bool) -> None:
    """Evaluate the best trial and the untuned default once on the test split, score the baselines on the same
    test queries, store the comparison (tuned minus each, paired bootstrap intervals) and print it."""
    progress = Progress(target=config.study.n_trials, epochs=config.train.epochs, metric=config.study.metric,
                        quiet=quiet)
    n_queries = ws.split("test").n_queries
    with progress.step(f"test evaluation: the best trial, the untuned default and the baselines on "
                       f"{n_queries:,} held-out queries"):
        compare_on_test(study, ws, baselines=config.study.baselines, seed=config.study.seed)
    write_study_note(study, study_attr(study, "data_summary") or ws.summary(), config)
    if not quiet:
        print(summary_table(study, config.study.metric))


def run_study(config: Config, *, cuts: Sequence[tuple[str, Any, Any]] = (), new: bool = False,
              force: bool = False, quiet: bool = False) -> optuna.Study:
    """Check everything, create or resume the study, run its trials (here or in ``study.workers`` processes)
    and end with the test-split comparison. ``new`` replaces an existing study of the name, only once every
    check has passed, and (unless ``force``) only while none of its trials is running."""
    check_data(config.data)  # a missing data path, before any note about the profile
    trim_cache()  # the per-user cache stays under STUDY_CACHE_GB
    device = device_for(config.study.device)
    enable_fast_math(device)  # TF32 matmuls on CUDA; nothing on the CPU
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    for key, _, _ in cuts:
        if key in PROFILE_NOTES:
            say(f"{device.type.upper()}: {PROFILE_NOTES[key]}")
    cuts = [c for c in cuts if c[0] not in PROFILE_NOTES]
    if cuts:  # values as --set reads them back: true, 3, "x"
        say(f"{device.type} profile for a data file: "
            + ", ".join(f"{k} {toml_value(v)} (default {toml_value(d)})" for k, v, d in cuts)
            + f"; change with --set, e.g. --set {cuts[0][0]}={toml_value(cuts[0][2])}")
    ws = prepare_workspace(config, device)
    check_variants(config, ws.pairs)
    say(describe_variant(config, ws.pairs))
    check_model(config, n_features=ws.scaler.n_outputs_)
    check_tracker(config.study.tracker)  # all checked: only now may --new delete a study
    summary = ws.summary()
    study = create_or_resume(config, fingerprint=summary["fingerprint"], summary=summary, replace=new,
                             force=force)
    with holding(study):  # from here on, a study deleted or re-created by another process stops this one
        return _run_created(study, config, ws, summary, device=device, quiet=quiet, say=say)


def _run_created(study: optuna.Study, config: Config, ws: Workspace, summary: dict[str, Any], *,
                 device: Any, quiet: bool, say: Any) -> optuna.Study:
    write_study_note(study, summary, config)
    c = counts(study)
    say(f"study {config.study.name!r} in {redact(config.storage.url)}: "
        f"{c['FINISHED']}/{config.study.n_trials} finished; data {summary['name']} ({summary['pairs']} "
        f"pairs, {summary['queries']} queries); device {device.type}; {config.study.workers} worker(s)")
    if config.study.workers > 1:
        code = spawn_workers(config, n=config.study.workers, quiet=quiet)
        if code in (130, 143):
            raise Terminated() if code == 143 else KeyboardInterrupt()
        if code and counts(study)["FINISHED"] < config.study.n_trials:
            raise UserInputError(f"A worker of study {config.study.name!r} stopped with exit code {code} "
                                 "before the study reached its target (its error is printed above); run the "
                                 "same command again to continue.")
    else:
        study = work(config, ws, worker_index=0, quiet=quiet,
                     prepare=c["FINISHED"] < config.study.n_trials or c["WAITING"] > 0)
    finish(study, config, ws, quiet=quiet)
    return study


def join_study(name: str, storage: str, *, worker_index: int = 0, timeout: float | None = None,
               device: str | None = None, quiet: bool = False) -> int:
    """``study worker``: run trials of an existing study with its stored config, on this machine's copy of
    the data (refused when it differs from the study's)."""
    study = load_existing(name, storage, writes=True)
    config = stored_config(study)
    changes: dict[str, Any] = {"timeout": timeout, "device": device}
    config = dataclasses.replace(
        config,
        study=dataclasses.replace(config.study, **{k: v for k, v in changes.items() if v is not None}),
        storage=dataclasses.replace(config.storage, url=storage),
    )
    c = counts(study)
    if c["FINISHED"] >= config.study.n_trials and c["WAITING"] == 0:
        print(f"study {name!r} already has {c['FINISHED']}/{config.study.n_trials} finished trials: nothing "
              f"to do here (raise the target with `study run --name {name} --n-trials N`)", file=sys.stderr)
        return 0
    run_device = device_for(config.study.device)  # no CUDA here: one paragraph, exit 2
    enable_fast_math(run_device)  # TF32 matmuls on CUDA; nothing on the CPU
    ws = prepare_workspace(config, run_device)
    fingerprint = ws.pairs.fingerprint()
    if study_attr(study, "dataset_fingerprint") not in (None, fingerprint):
        raise UserInputError(
            f"This machine's copy of the data for study {name!r} differs from the one the study was "
            f"created with (fingerprint {fingerprint} vs {study_attr(study, 'dataset_fingerprint')}); "
            "not joining."
        )
    work(config, ws, worker_index=worker_index or worker_index_for_this_process(), quiet=quiet)
    return 0
