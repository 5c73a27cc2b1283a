"""The best trial, evaluated once on the held-out test split; stored apart from validation numbers."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from models.checkpoint import load_checkpoint
from models.device import resolve_precision
from models.ranker import Ranker
from models.train import evaluate
from study.config import Config, config_from_dict
from study.objective import BEST, LAST, trial_dir
from study.workspace import Workspace

logger = logging.getLogger(__name__)


def best_trial(study: optuna.Study, metric_index: int = 0) -> optuna.trial.FrozenTrial | None:
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values]
    if not complete:
        return None
    return max(complete, key=lambda t: t.values[metric_index])


def load_trial_model(trial: optuna.trial.FrozenTrial) -> tuple[Ranker, Config, dict[str, Any]]:
    path = Path(trial.user_attrs.get("checkpoint", ""))
    if not path.is_file():
        raise FileNotFoundError(f"trial {trial.number} has no checkpoint at {path}")
    ckpt = load_checkpoint(path)
    config = config_from_dict(ckpt["config"])
    model = Ranker(config.model, n_features=int(ckpt["n_features"]))
    model.load_state_dict(ckpt["model"])
    return model, config, ckpt


def evaluate_best_on_test(study: optuna.Study, ws: Workspace) -> dict[str, Any] | None:
    trial = best_trial(study)
    if trial is None:
        return None
    stored = study.user_attrs.get("test")
    if stored and stored.get("trial") == trial.number:
        return stored
    model, config, _ = load_trial_model(trial)
    model.to(ws.device)
    # accuracy / precision / recall / F1 at the score threshold fitted on validation (none stored: refit)
    threshold = trial.user_attrs.get("val_metrics", {}).get("score_threshold")
    metrics, _ = evaluate(model, ws.tensors("test", config.model), config=config.train,
                          dtype=resolve_precision(config.train.precision, ws.device),
                          score_threshold=None if threshold is None else float(threshold))
    result = {"trial": trial.number, "metrics": {k: round(float(v), 6) for k, v in metrics.items()}}
    study.set_user_attr("test", result)
    return result


def prune_checkpoints(study: optuna.Study, config: Config) -> None:
    """Keep ``keep_checkpoints`` best finished trials' weights; drop the rest and finished trials' resume files."""
    trials = study.get_trials(deepcopy=False)
    ranked = sorted((t for t in trials if t.state == TrialState.COMPLETE and t.values),
                    key=lambda t: t.values[0], reverse=True)
    keep = {t.number for t in ranked[: config.study.keep_checkpoints]}
    for t in trials:
        folder = trial_dir(config, t.number)
        if not folder.exists() or t.state in (TrialState.RUNNING, TrialState.WAITING, TrialState.FAIL):
            continue
        if t.number in keep:
            (folder / LAST).unlink(missing_ok=True)
        elif (folder / BEST).exists() or (folder / LAST).exists():
            shutil.rmtree(folder, ignore_errors=True)
