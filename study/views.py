"""The tables a person reads about a study, for the CLI and the Python API alike: the end-of-run summary,
one row per trial, the stored test comparison. Light: optuna and numpy, no torch."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from study.evaluation.comparison import Comparison
from study.runtime.attrs import study_attrs
from study.runtime.trials import best_trial, counts


def stored_comparison(study: optuna.Study) -> Comparison | None:
    """The test comparison stored at the end of a run, its rows completed with the other stored test metrics
    (one rebuilt without intervals for a study stored before comparisons existed)."""
    return Comparison.from_user_attrs(study_attrs(study))


def metric_names(study: optuna.Study, fallback: str) -> list[str]:
    """The study's objectives as stored (``fallback`` for a study that stored none)."""
    return list(study.metric_names or [fallback])


def values_line(trial: FrozenTrial, names: list[str]) -> str:
    return ", ".join(f"{n} {v:.4f}" for n, v in zip(names, trial.values or [], strict=False))


def age(start: dt.datetime | None, end: dt.datetime | None = None) -> str:
    if start is None:
        return "?"
    end = end or (dt.datetime.now(start.tzinfo) if start.tzinfo else dt.datetime.now())
    seconds = int((end - start).total_seconds())
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


def summary_table(study: optuna.Study, metric: str) -> str:
    """Counts, the best trial and the tuned-vs-baselines table (the end of ``study run``; ``study
    status``)."""
    c = counts(study)
    lines = [(f"study {study.study_name!r}: {c['COMPLETE']} complete, {c['PRUNED']} pruned, {c['FAIL']} "
              f"failed, {c['RUNNING']} running")]
    best = best_trial(study)
    if best is not None:
        val = best.user_attrs.get("val_metrics", {})
        shown = {k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in best.params.items()}
        lines.append(f"best trial {best.number}: val {metric} {val.get(metric, best.values[0]):.4f}, params "
                     f"{json.dumps(shown)}")
    comparison = stored_comparison(study)
    if comparison is not None:
        lines.append(comparison.to_text())
    return "\n".join(lines)


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One flat row per trial: number, state, values, duration, epochs run, why it was pruned or failed,
    params (by their full names)."""
    names = metric_names(study, "value")
    rows = []
    for t in study.get_trials(deepcopy=False):
        duration = (t.datetime_complete - t.datetime_start).total_seconds() if (
            t.datetime_complete and t.datetime_start) else None
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name.lower()}
        for i, name in enumerate(names):
            row[name] = t.values[i] if t.values else None
        row["duration_s"] = round(duration, 1) if duration is not None else None
        row["epochs_run"] = t.user_attrs.get("epochs_run", max(len(t.intermediate_values) - 1, 0))
        row["reason"] = trial_reason(t)
        row.update(t.params)
        rows.append(row)
    return rows


def trial_reason(trial: FrozenTrial) -> str:
    """Why a trial was pruned or failed, as stored with it ("" for the others; a trial stored before reasons
    were kept says so)."""
    if trial.state not in (TrialState.PRUNED, TrialState.FAIL):
        return ""
    return str(trial.user_attrs.get("fail_reason") or trial.user_attrs.get("prune_reason")
               or "(no reason stored)")


def param_headers(columns: list[str], params: set[str]) -> dict[str, str]:
    """Table headers: a parameter is shown without its section (``train.head_lr`` -> ``head_lr``) where that
    short name is unique and no other column's header contains it, so that ``train.epochs`` never reads like
    ``epochs_run``."""
    others = [c for c in columns if c not in params]
    short = {c: c.split(".", 1)[-1] for c in columns if c in params}
    counts = {s: list(short.values()).count(s) for s in short.values()}
    return {c: (short[c] if c in short and counts[short[c]] == 1 and not any(short[c] in o for o in others)
                else c) for c in columns}


def comparison_table(studies: list[optuna.Study]) -> tuple[str, dict[str, dict[str, float]]]:
    """The stored test comparisons of several studies side by side: (metric, {row key: {study: value}})."""
    table: dict[str, dict[str, float]] = {}
    metric = "ndcg@10"
    for study in studies:
        comparison = stored_comparison(study)
        if comparison is None:
            continue
        metric = comparison.metric
        for row in comparison.rows:  # keys, not labels: "tuned (best trial 7)" differs between studies
            table.setdefault(row.key.replace("_", " "), {})[study.study_name] = row.ndcg
    return metric, table
