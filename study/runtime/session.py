"""One study run, for the CLI (``study run``) and the Python API (``study.run``) alike: the config resolved
from a request (a config file, a data file, an existing study of that name, the built-in default), then
checks, creation or resumption, the trials, and the comparison on the test split."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from study.config import (
    Config,
    build_config,
    check_enqueue,
    parse_override,
    profile_cuts,
    read_toml,
)
from study.dashboard.artifacts import write_study_note
from study.data.config import is_builtin_catalogue
from study.errors import UserInputError
from study.evaluation.held_out import compare_on_test
from study.models.device import enable_fast_math
from study.objective import Objective
from study.profiles import PROFILE_NOTES
from study.runtime.attrs import study_attr
from study.runtime.checkpoints import prune_checkpoints
from study.runtime.liveness import Terminated
from study.runtime.preflight import check_model, check_variants, describe_variant, device_for
from study.runtime.progress import Progress
from study.runtime.spawn import spawn_workers
from study.runtime.studies import create_or_resume, load_existing
from study.runtime.trackers import check_tracker, tracker_callback
from study.runtime.trials import counts
from study.runtime.worker import run_worker
from study.show import summary_table
from study.storage.database import StorageConfig, StorageUnavailableError
from study.storage.urls import redact
from study.toml_out import toml_value
from study.workspace import Workspace, prepare_workspace


@dataclass(frozen=True)
class RunRequest:
    """What a user asked for: ``study run``'s flags, or the API's keyword arguments."""

    config: str | None = None  # a TOML file
    data: str | None = None  # a data file or folder (data.path)
    source: str | None = None
    map: Sequence[str] = ()  # CANONICAL=COLUMN
    name: str | None = None
    n_trials: int | None = None
    workers: int | None = None
    timeout: float | None = None
    device: str | None = None
    storage: str | None = None
    overrides: Sequence[str] = field(default_factory=tuple)  # KEY=VALUE
    new: bool = False
    enqueue: Sequence[str] = ()  # JSON objects of searched fields, run first
    warm_start_from: str | None = None
    tracker: str | None = None


def _flag_overrides(args: RunRequest) -> list[str]:
    out = []
    for flag, key in (("name", "study.name"), ("n_trials", "study.n_trials"), ("workers", "study.workers"),
                      ("timeout", "study.timeout"), ("device", "study.device"),
                      ("warm_start_from", "study.warm_start_from"), ("tracker", "study.tracker")):
        value = getattr(args, flag, None)
        if value is not None:
            out.append(f"{key}={json.dumps(value)}")
    if getattr(args, "storage", None):
        out.append(f"storage.url={json.dumps(args.storage)}")
    return out + _data_overrides(args)


def parse_column_maps(items: list[str]) -> dict[str, str]:
    """``--map query=search_term`` (repeatable) -> {"query": "search_term"}."""
    columns = {}
    for item in items:
        canonical, sep, column = item.partition("=")
        if not sep or not canonical.strip() or not column.strip():
            raise UserInputError("--map expects CANONICAL=COLUMN (for example query=search_term), got "
                                 f"{item!r}.")
        columns[canonical.strip()] = column.strip()
    return columns


def _data_path(args: RunRequest) -> str | None:
    """The data file asked for: --data, or --set data.path=... (the same request spelt two ways)."""
    if getattr(args, "data", None) is not None:
        return str(args.data)
    for item in getattr(args, "overrides", []):
        key, value = parse_override(item)
        if key == "data.path" and value:
            return str(value)
    return None


def _data_overrides(args: RunRequest) -> list[str]:
    """--data, --source and --map as data.* overrides; a run on a file is named after it unless named."""
    out = []
    path = _data_path(args)
    if getattr(args, "data", None) is not None:
        out.append(f"data.path={toml_value(str(args.data))}")
    if path is not None and _named_study(args) is None and getattr(args, "config", None) is None:
        out.append(f"study.name={toml_value(_name_of_data(path))}")
    if getattr(args, "source", None):
        out.append(f"data.source={toml_value(args.source)}")
    columns = parse_column_maps(getattr(args, "map", None) or [])
    if columns:
        out.append(f"data.columns={toml_value(columns)}")
    return out


def _name_of_data(path: str) -> str:
    """``pairs.csv`` -> ``pairs``, ``train.csv.zip`` -> ``train``, a folder -> its name."""
    stem = Path(path).name.split(".")[0] or Path(path).resolve().name
    return re.sub(r"[^A-Za-z0-9_-]+", "-", stem) or "data"


def _named_study(args: RunRequest) -> str | None:
    """The study name given with --name or --set study.name=..., else None."""
    if getattr(args, "name", None):
        return args.name
    for item in getattr(args, "overrides", []):
        key, value = parse_override(item)
        if key == "study.name":
            return str(value)
    return None


def _may_hold_studies(url: str) -> bool:
    """False for a SQLite file that does not exist yet: no study to resume, and no file created just to
    look."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///").split("?")[0]
        return path in ("", ":memory:") or Path(path).exists()
    return True


def _refuse_other_data(args: RunRequest, stored: dict[str, Any], name: str) -> None:
    data = stored.get("data", {})
    path = _data_path(args)
    if path is not None and is_builtin_catalogue(data.get("source"), data.get("path")):
        raise UserInputError(
            f"Study {name!r} runs on the built-in catalogue, so it cannot continue on {path}; nothing "
            "was changed. Give the run on your file its own name (--name NAME), or pass --new to replace "
            f"{name!r}."
        )


def _resolve(args: RunRequest) -> tuple[Config, list[tuple[str, Any, Any]]]:
    """--config given: that file. Else an existing study of this name resumes with its stored config.
    Else the built-in default for this machine's device and the data (demo or file profile).
    Also returns what a file profile cuts below the defaults (empty when nothing is cut)."""
    device = device_for(args.device or "auto")
    profile = "cuda" if device.type == "cuda" else "cpu"
    overrides = list(args.overrides) + _flag_overrides(args)
    env_storage = None if args.storage else os.environ.get("STUDY_STORAGE")
    if env_storage:  # --storage, then $STUDY_STORAGE, then the config file
        overrides.append(f"storage.url={json.dumps(env_storage)}")
    if args.config is None and not args.new:
        url = args.storage or env_storage or StorageConfig().url
        path = _data_path(args)
        name = _named_study(args) or (_name_of_data(path) if path is not None else "default")
        try:
            study = load_existing(name, url) if _may_hold_studies(url) else None
        except StorageUnavailableError:
            raise
        except UserInputError:
            study = None
        if study is not None and study_attr(study, "config") is not None:
            _refuse_other_data(args, study_attr(study, "config"), name)
            # the stored config shows the URL without its password: connect with the one given here
            return build_config(study_attr(study, "config"), source=f"study {name!r}",
                                overrides=overrides + [f"storage.url={json.dumps(url)}"], profile=profile), []
    raw = read_toml(Path(args.config)) if args.config else {}
    source = args.config or "built-in config"
    return (build_config(raw, source=source, overrides=overrides, profile=profile),
            profile_cuts(raw, overrides=overrides, profile=profile))


def resolve_config(args: RunRequest) -> tuple[Config, list[tuple[str, Any, Any]]]:
    """--config given: that file. Else an existing study of this name resumes with its stored config. Else
    the built-in default for this machine's device and the data (demo or file profile). ``--enqueue``
    entries are added to the config's. Also returns what a file profile cuts below the defaults."""
    config, cuts = _resolve(args)
    if args.enqueue:
        extra = []
        for item in args.enqueue:
            try:
                extra.append(json.loads(item))
            except json.JSONDecodeError as exc:
                raise UserInputError("--enqueue expects a JSON object such as '{\"train.head_lr\": 0.01}', "
                                     f"got {item!r} ({exc.msg}).") from None
        try:
            config = dataclasses.replace(config, enqueue=config.enqueue + check_enqueue(extra, config.search))
        except (ValueError, TypeError) as exc:
            raise UserInputError(f"--enqueue: {exc}.") from None
    return config, cuts


def _objective_factory(ws: Workspace, progress: Progress):
    def make(config: Config) -> Objective:
        return Objective(config, ws, on_trial_start=progress.trial_started, on_step=progress.step,
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


def work(config: Config, ws: Workspace, *, worker_index: int, quiet: bool) -> optuna.Study:
    progress = Progress(target=config.study.n_trials, epochs=config.train.epochs, metric=config.study.metric,
                        quiet=quiet)
    return run_worker(config, worker_index=worker_index, objective_factory=_objective_factory(ws, progress),
                      on_trial_end=_trial_end_callback(config, progress))


def finish(study: optuna.Study, config: Config, ws: Workspace, *, quiet: bool) -> None:
    """Evaluate the best trial and the untuned default once on the test split, score the baselines on the same
    test queries, store the comparison (tuned minus each, paired bootstrap intervals) and print it."""
    compare_on_test(study, ws, baselines=config.study.baselines, seed=config.study.seed)
    write_study_note(study, study_attr(study, "data_summary") or ws.summary(), config)
    if not quiet:
        print(summary_table(study, config.study.metric))


def run_study(config: Config, *, cuts: Sequence[tuple[str, Any, Any]] = (), new: bool = False,
              quiet: bool = False) -> optuna.Study:
    """Check everything, create or resume the study, run its trials (here or in ``study.workers`` processes)
    and end with the test-split comparison. ``new`` replaces an existing study of the name, only once every
    check has passed."""
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
    study = create_or_resume(config, fingerprint=summary["fingerprint"], summary=summary, replace=new)
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
        study = work(config, ws, worker_index=0, quiet=quiet)
    finish(study, config, ws, quiet=quiet)
    return study
