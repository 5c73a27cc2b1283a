"""The best trial, evaluated once on the held-out test split and stored apart from validation numbers; the
untuned default trial (trial 0, ``default_config``) likewise; and the comparison of both with the baselines on
the same test queries (:func:`compare_on_test`, stored with the study as the system attribute ``comparison``,
see ``study.runtime.attrs``). Shown by ``study.views``; computed once per best trial."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
import optuna

from study.evaluation.baselines import baseline_scores
from study.evaluation.comparison import (
    N_RESAMPLES,
    Comparison,
    Scored,
    build_comparison,
)
from study.models.checkpoint import DamagedCheckpointError
from study.models.device import resolve_precision
from study.models.metrics import per_query_ndcg
from study.models.train import evaluate
from study.runtime.attrs import set_study_attr, study_attr, trial_attr
from study.runtime.checkpoints import load_trial_model
from study.runtime.trials import DEFAULT_CONFIG_ATTR, DEFAULT_SAMPLED_ATTR, best_trial, default_trial
from study.workspace import Workspace

logger = logging.getLogger(__name__)


def _default_missing_note(study: optuna.Study) -> str:
    marked = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get(DEFAULT_CONFIG_ATTR)]
    if not marked:
        return "No untuned-default trial in this study (it was created before the default was enqueued)."
    last = marked[-1]
    return f"Untuned default not shown: trial {last.number} is {last.state.name.lower()}."


def trial_test_scores(trial: optuna.trial.FrozenTrial, ws: Workspace, *, key: str, label: str) -> Scored:
    """The trial's checkpoint scored on the test split; accuracy / precision / recall / F1 at the score
    threshold fitted on validation (none stored: refit on test)."""
    model, config, _ = load_trial_model(trial)
    model.to(ws.device)
    threshold = (trial_attr(trial, "val_metrics_all") or trial.user_attrs.get("val_metrics") or {}).get(
        "score_threshold")
    split = ws.tensors("test", config.model)
    metrics, scores = evaluate(model, split, config=config.train,
                               dtype=resolve_precision(config.train.precision, ws.device),
                               score_threshold=None if threshold is None else float(threshold))
    return Scored(key=key, label=label, scores=np.asarray(scores, dtype=np.float64),
                  labels=np.asarray(split.labels_np, dtype=np.float64), query_ids=split.row_query,
                  metrics={k: round(float(v), 6) for k, v in metrics.items()})


def _store_test(study: optuna.Study, attr: str, trial: optuna.trial.FrozenTrial,
                scored: Scored) -> dict[str, Any]:
    result = {"trial": trial.number, "metrics": scored.metrics}
    if study_attr(study, attr) != result:
        set_study_attr(study, attr, result)
    return result


def _stored_comparison(study: optuna.Study) -> Comparison | None:
    """The comparison exactly as stored (None if none): what decides whether it must be computed again.
    For display, ``study.views.stored_comparison`` also rebuilds one for studies stored before intervals."""
    raw = study_attr(study, "comparison")
    return Comparison.from_dict(raw) if raw else None


def compare_on_test(study: optuna.Study, ws: Workspace, *, baselines: bool = True,
                    n_resamples: int = N_RESAMPLES, seed: int = 0) -> Comparison | None:
    """The tuned best trial against the untuned default trial and the baselines, on the same test queries.

    Stores ``test`` (the best trial's test metrics), ``test_default``, ``baselines`` (metrics) and
    ``comparison`` (rows and intervals, no per-query arrays) as study user attributes. Computed again only
    when the best trial changed; everything it scores is deterministic."""
    best = best_trial(study)
    if best is None:
        return None
    default = default_trial(study)
    stored = _stored_comparison(study)
    has_baselines = stored is not None and len(stored.rows) > 1 + (stored.default_trial is not None)
    if (stored is not None and stored.best_trial == best.number
            and stored.default_trial == (default.number if default else None) and has_baselines == baselines):
        return stored
    scored = [trial_test_scores(best, ws, key="tuned", label=f"tuned (best trial {best.number})")]
    _store_test(study, "test", best, scored[0])
    ids, per_query = per_query_ndcg(scored[0].scores, scored[0].labels,
                                    np.asarray(scored[0].query_ids).astype(str), k=ws.config.train.ndcg_k)
    # per test query, so that `study compare` can give paired intervals between studies on the same queries
    set_study_attr(study, "test_per_query", {str(q): round(float(v), 6)
                                             for q, v in zip(ids, per_query, strict=True) if not np.isnan(v)})
    notes: list[str] = []
    if default is None:
        notes.append(_default_missing_note(study))
    else:
        try:
            label = f"untuned default (trial {default.number})"
            scored.append(dataclasses.replace(scored[0], key="untuned_default", label=label)
                          if default.number == best.number  # the default won: scored once, shown twice
                          else trial_test_scores(default, ws, key="untuned_default", label=label))
            _store_test(study, "test_default", default, scored[-1])
            sampled = default.user_attrs.get(DEFAULT_SAMPLED_ATTR)
            if sampled:
                notes.append(f"Untuned default: {', '.join(sampled)} lay outside the search space and were "
                             "sampled.")
        except FileNotFoundError as exc:
            notes.append(f"Untuned default not shown: {exc}.")
            default = None
        except DamagedCheckpointError as exc:  # the best trial's would be an error; the default's is a note
            notes.append(f"Untuned default not shown: its checkpoint {exc.path} is damaged ({exc.reason}).")
            default = None
    if baselines:
        others = baseline_scores(ws)
        set_study_attr(study, "baselines", {s.key: s.metrics for s in others})
        scored += others
    train = ws.config.train
    comparison = build_comparison(scored, k=train.ndcg_k, relevance_threshold=train.relevance_threshold,
                                  n_resamples=n_resamples, seed=seed, best_trial=best.number,
                                  default_trial=default.number if default else None, notes=tuple(notes))
    set_study_attr(study, "comparison", comparison.to_dict())
    return comparison


__all__ = ["compare_on_test", "trial_test_scores"]
