"""The Python API: what a notebook user needs, with keyword-only arguments and no global side effects (no
stdout swapped, no signal handler unless asked, no environment variable set).

    import study
    cfg = study.load_config(data="pairs.csv", overrides={"train.epochs": 3})   # or ["train.epochs=3"]
    s = study.run(cfg, n_trials=12)                # an optuna.Study
    study.trials_dataframe("pairs")                # one row per trial
    study.test_results("pairs")                    # tuned vs untuned default vs zero-shot vs baselines
    study.export_model("pairs", out="models/pairs")
    study.rank("models/pairs", candidates_df)      # candidates plus score and rank
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from study.config import Config
from study.errors import UserInputError
from study.export.model_dir import export_best
from study.export.scoring import Ranker, read_candidates
from study.runtime.request import load_config
from study.runtime.session import run_study
from study.runtime.signals import Terminated
from study.runtime.studies import load_existing
from study.storage.urls import DEFAULT_STORAGE
from study.views import stored_comparison, trial_rows

__all__ = ["export_model", "load_config", "rank", "run", "test_results", "trials_dataframe"]


def _check_run_arguments(**given: Any) -> None:
    """The CLI's refusals for the API's arguments: a TypeError or ValueError naming the argument and value,
    before anything is read or created."""
    kinds: dict[str, tuple[type, ...]] = {"config": (Config,), "data": (str, Path), "name": (str,),
                                          "storage": (str,)}
    for key, value in given.items():
        if key == "n_trials":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise TypeError("study.run: n_trials must be a whole number of trials, got "
                                f"n_trials={value!r}")
            if value is not None and value < 1:
                raise ValueError(f"study.run: n_trials must be at least 1, got n_trials={value!r}")
        elif key in kinds:
            if value is not None and not isinstance(value, kinds[key]):
                expected = " or ".join(k.__name__ for k in kinds[key])
                raise TypeError(f"study.run: {key} must be a {expected} or None, got {key}={value!r}")
        elif not isinstance(value, bool):
            raise TypeError(f"study.run: {key} must be True or False, got {key}={value!r}")


def run(config: Config | None = None, *, data: str | Path | None = None, name: str | None = None,
        n_trials: int | None = None, storage: str | None = None, new: bool = False, quiet: bool = False,
        handle_signals: bool = False) -> optuna.Study:
    """Create or resume a study and run it to ``n_trials`` finished trials; returns the ``optuna.Study``.

    Without ``config``, one is built from ``data`` (or the built-in catalogue). ``n_trials``, ``name`` and
    ``storage`` replace the config's. ``handle_signals`` delivers SIGTERM like Ctrl-C for the duration (the
    running trial is closed and resumes next time); off by default, as a library should leave signals alone.
    ``quiet`` prints nothing but errors: no progress, no summary, no log line, warning or loading bar.
    A KeyboardInterrupt closes the running trial the same way and is re-raised."""
    _check_run_arguments(config=config, data=data, name=name, n_trials=n_trials, storage=storage, new=new,
                         quiet=quiet, handle_signals=handle_signals)
    if config is None:
        config = load_config(data=data, name=name, storage=storage)
    changes = {"n_trials": n_trials, "name": name}
    study_changes = {k: v for k, v in changes.items() if v is not None}
    if study_changes:
        config = dataclasses.replace(config, study=dataclasses.replace(config.study, **study_changes))
    if storage is not None:
        config = dataclasses.replace(config, storage=dataclasses.replace(config.storage, url=storage))
    with (_sigterm_as_interrupt() if handle_signals else contextlib.nullcontext(),
          _silenced() if quiet else contextlib.nullcontext()):
        return run_study(config, new=new, quiet=quiet)


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    """``quiet=True``: nothing on stdout or stderr but errors, for the duration only (everything is put back
    after): Optuna's log lines ("A new study created ...") and its ExperimentalWarnings, any other Python
    warning, this package's info and warning lines, and Hugging Face's log lines and loading bars."""
    from transformers.utils import logging as hf_logging  # loaded by the run anyway

    # this package's loggers, the children whose level was set on their own (the CLI sets study.data's) too
    ours = [logging.getLogger("study"), *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict)
                                          if n.startswith("study."))]
    levels = [logger.level for logger in ours]
    before = (optuna.logging.get_verbosity(), hf_logging.get_verbosity(),
              hf_logging.is_progress_bar_enabled())
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    for logger in ours:
        logger.setLevel(logging.ERROR)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        optuna.logging.set_verbosity(before[0])
        for logger, level in zip(ours, levels, strict=True):
            logger.setLevel(level)
        hf_logging.set_verbosity(before[1])
        if before[2]:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _load(name: str, storage: str) -> optuna.Study:
    return load_existing(name, storage)


def trials_dataframe(name: str = "default", *, storage: str = DEFAULT_STORAGE) -> pd.DataFrame:
    """One row per trial: number, state, values, duration, epochs run, fail/prune reason, params."""
    return pd.DataFrame(trial_rows(_load(name, storage))).set_index("trial")


def test_results(name: str = "default", *, storage: str = DEFAULT_STORAGE) -> pd.DataFrame:
    """The held-out test comparison stored at the end of the run: one row per model (tuned best, untuned
    default, zero-shot encoder, TF-IDF, random, behaviour only) with NDCG, MRR, and tuned minus the row
    with its paired bootstrap interval."""
    comparison = stored_comparison(_load(name, storage))
    if comparison is None:
        raise UserInputError(f"Study {name!r} has no test results yet: they are stored when a run finishes.")
    rows = [{"model": r.label, "key": r.key, comparison.metric: r.ndcg, "mrr": r.mrr, "tuned_minus": r.delta,
             "low": r.low, "high": r.high, **r.metrics} for r in comparison.rows]
    return pd.DataFrame(rows).set_index("model")


def export_model(name: str = "default", *, out: str | Path, storage: str = DEFAULT_STORAGE,
                 retrain: bool = False, device: str = "cpu", force: bool = False) -> Path:
    """Write the best trial as a self-contained model directory (``study export``); returns ``out``."""
    export_best(_load(name, storage), out=Path(out), retrain=retrain, device=device, force=force)
    return Path(out)


def rank(model: str | Path, candidates: pd.DataFrame | str | Path, *, columns: dict[str, str] | None = None,
         device: str = "cpu") -> pd.DataFrame:
    """Score candidate rows with an exported model: the rows plus ``score`` and ``rank``, ordered by score
    within each query. ``candidates`` is a DataFrame or a CSV / TSV / Parquet / JSON lines file. Columns named
    as in the file the model was trained on need no mapping (the export remembers it); ``columns`` maps
    canonical names to the columns of a differently shaped one: ``{"query": "search_term"}``."""
    ranker = Ranker.load(model, device=device)
    if isinstance(candidates, pd.DataFrame):
        return ranker.rank(candidates, columns=columns)
    frame = read_candidates(candidates, columns={**ranker.columns, **(columns or {})})
    return ranker.rank(frame, source=str(candidates), columns=columns)
