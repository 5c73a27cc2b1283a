"""Experiment trackers, off unless asked for: ``study.tracker = "mlflow"`` (or ``--tracker mlflow``) logs
every finished trial to MLflow, ``"wandb"`` to Weights & Biases, through optuna-integration's callbacks (the
extras ``study[mlflow]`` and ``study[wandb]``). ``study.tracker_uri`` is MLflow's tracking URI (default:
MLflow's own, ``$MLFLOW_TRACKING_URI`` or ./mlruns) or the W&B project (default: the study's name)."""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable
from typing import Any

import optuna

from study.errors import UserInputError

TRACKERS = ("", "mlflow", "wandb")
_NEEDS = {"mlflow": ("mlflow", "study[mlflow]"), "wandb": ("wandb", "study[wandb]")}


def check_tracker(name: str) -> None:
    """Before the study is created: the tracker's packages are installed."""
    if not name:
        return
    module, extra = _NEEDS[name]
    missing = [m for m in ("optuna_integration", module) if not _installed(m)]
    if missing:
        raise UserInputError(f"study.tracker = {name!r} needs {' and '.join(missing)}, which are not "
                             f"installed: pip install '{extra}' (or drop --tracker).")


def _installed(module: str) -> bool:
    if module in sys.modules:  # imported already (optuna_integration's lazy module has no __spec__)
        return sys.modules[module] is not None
    return importlib.util.find_spec(module) is not None


def tracker_callback(name: str, *, uri: str, study_name: str,
                     metric_names: list[str]) -> Callable[[optuna.Study, Any], None] | None:
    """optuna-integration's callback for the tracker, called with each finished trial."""
    if not name:
        return None
    check_tracker(name)
    if name == "mlflow":
        from optuna_integration import MLflowCallback  # an optional extra: imported only when asked for

        # MLflow refuses "@" in metric names: ndcg@10 is logged as ndcg_at_10
        names = [re.sub(r"[^\w\-. :/]", "_", n.replace("@", "_at_")) for n in metric_names]
        return MLflowCallback(tracking_uri=uri or None, metric_name=names, create_experiment=True)
    from optuna_integration import WeightsAndBiasesCallback  # an optional extra, as above

    return WeightsAndBiasesCallback(metric_name=metric_names, wandb_kwargs={"project": uri or study_name})
