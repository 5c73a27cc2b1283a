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


def search_sections(study: optuna.Study, *, seed: int = 0) -> list[Section]:
    """One section per figure; a figure that cannot be drawn says why."""
    vis = optuna.visualization
    names = metric_names(study)
    metric = names[0]
    multi = len(study.directions) > 1
    target: dict[str, Any] = {"target": (lambda t: t.values[0]) if multi else None, "target_name": metric}
    complete = complete_trials(study)
    ranked = best_first(study, complete)
    with_params = [t for t in complete if t.params]

    def history() -> str:
        return figure(vis.plot_optimization_history(study, **target)) + note(f"Shows all {len(complete)} "
                                                                              "complete trials.")

    def pareto() -> str:
        if not complete:
            raise ValueError("no complete trial yet")
        fig = vis.plot_pareto_front(study, target_names=names)
        return figure(fig, height=480) + note(
            f"Every complete trial ({len(complete)}): {metric} against {names[1]}; the front holds the "
            "trials no other trial beats on both. The report's best trial is the front's best by "
            + metric + ".")

    def importances() -> str:
        if len(with_params) < 2:
            raise ValueError("needs at least 2 complete trials with parameters, the study has "
                             f"{len(with_params)}")
        used = _sample(with_params, MAX_IMPORTANCE, seed)
        # PED-ANOVA (Optuna 5's default, and the dashboard's), which ranks parameters by how they reach LOW
        # values: the main metric is negated when it is maximised, as optuna-dashboard does.
        sign = -1.0 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else 1.0
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="PedAnovaImportanceEvaluator computes the importances")
            fig = vis.plot_param_importances(
                _subset(study, used), evaluator=optuna.importance.PedAnovaImportanceEvaluator(),
                target=lambda t: sign * t.values[0], target_name=metric)
        warning = ""
        if len(used) < MIN_IMPORTANCE:
            warning = caveat(f"Only {len(used)} complete trials: with fewer than {MIN_IMPORTANCE}, parameter "
                             "importances are mostly noise. Read them as a rough hint, not as a ranking.")
            fig.update_layout(title=f"Hyperparameter importances (rough: {len(used)} trials)")
        return warning + figure(fig) + note(f"PED-ANOVA (as in optuna-dashboard) over {len(used)} complete "
                                            "trials.")

    def parallel() -> str:
        if not with_params:
            raise ValueError("no complete trial with searched parameters yet")
        shown = ranked[:MAX_PARALLEL]
        return (figure(vis.plot_parallel_coordinate(_subset(study, shown), **target), height=520)
                + note(f"Shows the best {len(shown)} complete trials."))

    def slices() -> str:
        if not with_params:
            raise ValueError("no complete trial with searched parameters yet")
        shown = _sample(with_params, MAX_SLICE, seed)
        return _slices(study, shown, target) + note(f"Shows {len(shown)} complete trials; colour: trial "
                                                    "order.")

    def curves() -> str:
        fig, n = learning_curves(study, ranked, metric)
        return figure(fig) + note(f"Shows the best {min(len(ranked), MAX_CURVES // 2)} complete trials and "
                                  f"the most recent others, {n} in all.")

    def timeline() -> str:
        return (figure(vis.plot_timeline(study, n_recent_trials=MAX_TIMELINE))
                + note(f"Shows the {min(len(study.trials), MAX_TIMELINE)} most recent trials."))

    figures: list[tuple[str, str, Callable[[], str]]] = [("history", "Optimisation history", history)]
    if multi:
        figures.append(("pareto", "Pareto front", pareto))
    figures += [("importances", "Parameter importances", importances),
                ("parallel", "Parallel coordinates", parallel), ("slices", "Slices", slices),
                ("intermediate", "Learning curves", curves), ("timeline", "Timeline", timeline)]
    sections = []
    for anchor, title, make in figures:
        try:
            body = make()
        except Exception as exc:  # noqa: BLE001 - one figure that cannot be drawn must not cost the whole report
            logger.info("report: %s skipped: %s", title, exc)
            body = note(f"Not drawn: {exc}")
        sections.append(Section(anchor, title, body))
    return sections
