"""The report's search sections: optimisation history, the Pareto front (with a second objective), parameter
importances, parallel coordinates, slices, learning curves and the timeline.

Optuna's plotly figures, each drawn on a bounded subset of trials so that the file stays small and quick for a
study of 3 trials or of 3,000. Every figure reads ``values[0]`` (the main metric), never ``trial.value``, so a
study with a second objective (two values per trial) draws the same figures plus its Pareto front. A figure
that cannot be drawn says why instead of costing the whole report.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial, TrialState

from study.report.html import Section, caveat, figure, metric_names, note
from study.runtime.attrs import trial_attr

logger = logging.getLogger(__name__)

MAX_PARALLEL = 100  # parallel coordinates: the best N complete trials
MAX_SLICE = 500  # slices: a seeded sample of complete trials
SLICES_PER_ROW = 3  # more searched parameters: one figure per row of three, each as wide as the page
MAX_IMPORTANCE = 1000  # importances: a seeded sample of complete trials
MIN_IMPORTANCE = 10  # below this many complete trials, importances carry a caveat
MAX_CURVES = 40  # learning curves: the best half of this, then the most recent others
MAX_TIMELINE = 500  # timeline: the most recent trials


def complete_trials(study: optuna.Study) -> list[FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values]


def best_first(study: optuna.Study, trials: list[FrozenTrial]) -> list[FrozenTrial]:
    maximise = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    return sorted(trials, key=lambda t: t.values[0], reverse=maximise)


def _subset(study: optuna.Study, trials: list[FrozenTrial]) -> optuna.Study:
    """An in-memory copy holding only ``trials``, for figures that would be unreadable with all of them."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created in memory" per figure
    try:
        sub = optuna.create_study(directions=study.directions)
    finally:
        optuna.logging.set_verbosity(verbosity)
    if study.metric_names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sub.set_metric_names(study.metric_names)
    sub.add_trials(trials)
    return sub


def _sample(trials: list[FrozenTrial], n: int, seed: int) -> list[FrozenTrial]:
    if len(trials) <= n:
        return trials
    keep = np.random.default_rng(seed).choice(len(trials), size=n, replace=False)
    return [trials[i] for i in sorted(keep)]


def curve_of(trial: FrozenTrial, metric: str) -> dict[int, float]:
    """Validation metric per epoch: the reported intermediate values, else the ``curve`` user attribute (a
    trial with two objectives cannot report intermediate values to Optuna)."""
    if trial.intermediate_values:
        return {int(step): float(v) for step, v in sorted(trial.intermediate_values.items())}
    return {int(c["epoch"]): float(c[metric]) for c in trial_attr(trial, "curve") or []
            if isinstance(c, dict) and "epoch" in c and isinstance(c.get(metric), (int, float))}


def learning_curves(study: optuna.Study, ranked: list[FrozenTrial], metric: str) -> tuple[Any, int]:
    """Validation metric per epoch of the best complete trials and the most recent others; integer epochs."""
    chosen = [t for t in ranked if curve_of(t, metric)][: MAX_CURVES // 2]
    numbers = {t.number for t in chosen}
    others = [t for t in study.get_trials(deepcopy=False) if t.number not in numbers and curve_of(t, metric)]
    chosen += sorted(others, key=lambda t: t.number)[-(MAX_CURVES - len(chosen)):]
    if not chosen:
        raise ValueError("no trial has finished an epoch yet")
    fig = go.Figure()
    last_epoch = 0
    for t in sorted(chosen, key=lambda t: t.number):
        curve = curve_of(t, metric)
        last_epoch = max(last_epoch, *curve)
        fig.add_scatter(x=list(curve), y=list(curve.values()), mode="lines+markers", name=f"trial {t.number}",
                        line={"dash": "solid" if t.state == TrialState.COMPLETE else "dot"},
                        hovertemplate=f"trial {t.number} ({t.state.name.lower()})<br>epoch %{{x}}: %{{y:.4f}}"
                                      "<extra></extra>")
    ticks = {"tickmode": "linear", "tick0": 0, "dtick": 1} if last_epoch <= 15 else {"tickformat": "d"}
    fig.update_layout(title="Learning curves (dotted: pruned, failed or running)",
                      showlegend=len(chosen) <= 12, xaxis={"title": "epoch", **ticks},
                      yaxis_title=f"validation {metric}")
    return fig, len(chosen)


def _slices(study: optuna.Study, trials: list[FrozenTrial], target: dict[str, Any]) -> str:
    """Optuna's slice plot, three parameters to a figure, each figure as wide as the page (Optuna's own is
    300 px per parameter: five parameters overflow the page)."""
    vis = optuna.visualization
    sub = _subset(study, trials)
    names = sorted({name for t in trials for name in t.params})
    rows = [names[i:i + SLICES_PER_ROW] for i in range(0, len(names), SLICES_PER_ROW)]
    return "".join(figure(vis.plot_slice(sub, params=row, **target), height=420 if len(rows) == 1 else 360)
                   for row in rows)


@dataclass(frozen=True)
class _Search:
    """What every figure of the search sections reads: the study, its metric names and trials."""

    study: optuna.Study
    names: list[str]
    target: dict[str, Any]  # Optuna's target and target_name: values[0], the main metric
    complete: list[FrozenTrial]
    ranked: list[FrozenTrial]  # complete, best first
    with_params: list[FrozenTrial]
    seed: int

    @property
    def metric(self) -> str:
        return self.names[0]


def _history(s: _Search) -> str:
    return figure(optuna.visualization.plot_optimization_history(s.study, **s.target)) + note(
        f"Shows all {len(s.complete)} complete trials.")


def _pareto(s: _Search) -> str:
    if not s.complete:
        raise ValueError("no complete trial yet")
    fig = optuna.visualization.plot_pareto_front(s.study, target_names=s.names)
    return figure(fig, height=480) + note(
        f"Every complete trial ({len(s.complete)}): {s.metric} against {s.names[1]}; the front holds the "
        "trials no other trial beats on both. The report's best trial is the front's best by "
        + s.metric + ".")


def _importances(s: _Search) -> str:
    if len(s.with_params) < 2:
        raise ValueError("needs at least 2 complete trials with parameters, the study has "
                         f"{len(s.with_params)}")
    used = _sample(s.with_params, MAX_IMPORTANCE, s.seed)
    # PED-ANOVA (Optuna 5's default, and the dashboard's), which ranks parameters by how they reach LOW
    # values: the main metric is negated when it is maximised, as optuna-dashboard does.
    sign = -1.0 if s.study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else 1.0
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PedAnovaImportanceEvaluator computes the importances")
        fig = optuna.visualization.plot_param_importances(
            _subset(s.study, used), evaluator=optuna.importance.PedAnovaImportanceEvaluator(),
            target=lambda t: sign * t.values[0], target_name=s.metric)
    warning = ""
    if len(used) < MIN_IMPORTANCE:
        warning = caveat(f"Only {len(used)} complete trials: with fewer than {MIN_IMPORTANCE}, parameter "
                         "importances are mostly noise. Read them as a rough hint, not as a ranking.")
        fig.update_layout(title=f"Hyperparameter importances (rough: {len(used)} trials)")
    return warning + figure(fig) + note(f"PED-ANOVA (as in optuna-dashboard) over {len(used)} complete "
                                        "trials.")


def _parallel(s: _Search) -> str:
    if not s.with_params:
        raise ValueError("no complete trial with searched parameters yet")
    shown = s.ranked[:MAX_PARALLEL]
    names = set().union(*(t.params for t in shown))
    partial = sorted(n for n in names if any(n not in t.params for t in shown))
    inactive = (f" A line at None did not use that parameter: conditional parameters ({', '.join(partial)}) "
                "are sampled only by the architectures that use them." if partial else "")
    return (figure(optuna.visualization.plot_parallel_coordinate(_subset(s.study, shown), **s.target),
                   height=520)
            + note(f"Shows the best {len(shown)} complete trials.{inactive}"))


def _slice_figures(s: _Search) -> str:
    if not s.with_params:
        raise ValueError("no complete trial with searched parameters yet")
    shown = _sample(s.with_params, MAX_SLICE, s.seed)
    return _slices(s.study, shown, s.target) + note(f"Shows {len(shown)} complete trials; colour: trial "
                                                    "order.")


def _curves(s: _Search) -> str:
    fig, n = learning_curves(s.study, s.ranked, s.metric)
    return figure(fig) + note(f"Shows the best {min(len(s.ranked), MAX_CURVES // 2)} complete trials and "
                              f"the most recent others, {n} in all.")


def _timeline(s: _Search) -> str:
    return (figure(optuna.visualization.plot_timeline(s.study, n_recent_trials=MAX_TIMELINE))
            + note(f"Shows the {min(len(s.study.trials), MAX_TIMELINE)} most recent trials."))


def search_sections(study: optuna.Study, *, seed: int = 0) -> list[Section]:
    """One section per figure; a figure that cannot be drawn says why."""
    names = metric_names(study)
    multi = len(study.directions) > 1
    complete = complete_trials(study)
    search = _Search(study, names, {"target": (lambda t: t.values[0]) if multi else None,
                                    "target_name": names[0]},
                     complete, best_first(study, complete), [t for t in complete if t.params], seed)
    figures: list[tuple[str, str, Callable[[_Search], str]]] = [("history", "Optimisation history", _history)]
    if multi:
        figures.append(("pareto", "Pareto front", _pareto))
    figures += [("importances", "Parameter importances", _importances),
                ("parallel", "Parallel coordinates", _parallel), ("slices", "Slices", _slice_figures),
                ("intermediate", "Learning curves", _curves), ("timeline", "Timeline", _timeline)]
    sections = []
    for anchor, title, make in figures:
        try:
            body = make(search)
        except Exception as exc:  # noqa: BLE001 - one figure that cannot be drawn must not cost the whole report
            logger.info("report: %s skipped: %s", title, exc)
            body = note(f"Not drawn: {exc}")
        sections.append(Section(anchor, title, body))
    return sections
