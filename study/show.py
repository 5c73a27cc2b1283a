"""Commands that read or manage studies without training anything: ``status``, ``best``, ``list``,
``trials``, ``compare`` and ``delete``. No torch here: they start in well under a second."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from study.errors import UserInputError
from study.evaluation.comparison import Comparison
from study.models.metrics import paired_bootstrap_interval
from study.runtime.attrs import study_attr, study_attrs, trial_attr
from study.runtime.liveness import process_gone
from study.runtime.studies import load_existing, remove_study, stored_config
from study.runtime.trials import best_trial, counts
from study.storage.database import StorageConfig, open_storage
from study.storage.urls import redact


def stored_comparison(study: optuna.Study) -> Comparison | None:
    """The test comparison stored at the end of a run, its rows completed with the other stored test metrics
    (one rebuilt without intervals for a study stored before comparisons existed)."""
    return Comparison.from_user_attrs(study_attrs(study))


def _age(start: dt.datetime | None, end: dt.datetime | None = None) -> str:
    if start is None:
        return "?"
    end = end or (dt.datetime.now(start.tzinfo) if start.tzinfo else dt.datetime.now())
    seconds = int((end - start).total_seconds())
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


def _values(trial: FrozenTrial, names: list[str]) -> str:
    return ", ".join(f"{n} {v:.4f}" for n, v in zip(names, trial.values or [], strict=False))


def _metric_names(study: optuna.Study, config_metric: str) -> list[str]:
    return list(study.metric_names or [config_metric])


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


def cmd_status(args: argparse.Namespace) -> int:
    if not args.name:
        return cmd_list(args)
    study = load_existing(args.name, args.storage)
    config = stored_config(study)
    c = counts(study)
    print(f"study {args.name!r} in {redact(args.storage)}")
    print(f"finished {c['FINISHED']}/{config.study.n_trials}: " + ", ".join(
        f"{s.lower()} {c[s]}" for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")))
    reasons: dict[str, list[int]] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        reasons.setdefault(str(t.user_attrs.get("fail_reason", "unknown")), []).append(t.number)
    for reason, numbers in sorted(reasons.items()):
        shown = ", ".join(map(str, numbers[:8])) + (", ..." if len(numbers) > 8 else "")
        print(f"  failed ({reason}): {len(numbers)} (trial {shown})")
    best = best_trial(study)
    if best is not None:
        print(f"best: trial {best.number}, val {_values(best, _metric_names(study, config.study.metric))}")
        for key, value in best.params.items():
            print(f"  {key} = {value!r}")
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        host, pid = trial_attr(t, "host", "?"), trial_attr(t, "pid", "?")
        gone = ("; its process is gone: the next run or worker marks it FAIL and retries it"
                if process_gone(t) else "")
        print(f"running: trial {t.number} for {_age(t.datetime_start)} on {host} (pid {pid}), "
              f"epoch {max(len(t.intermediate_values) - 1, 0)}/"  # epoch 0 is the check before training
              f"{t.params.get('train.epochs', config.train.epochs)}{gone}")
    comparison = stored_comparison(study)
    if comparison is not None:
        print(comparison.to_text())
    return 0


def cmd_best(args: argparse.Namespace) -> int:
    study = load_existing(args.name, args.storage)
    trial = best_trial(study)
    if trial is None:
        raise UserInputError(f"Study {args.name!r} has no completed trial yet.")
    test = study.user_attrs.get("test")
    comparison = stored_comparison(study)
    if comparison is not None and comparison.best_trial != trial.number:
        comparison = None  # made for an earlier best trial: `study run` computes it again
    names = _metric_names(study, "value")
    out = {
        "study": args.name,
        "trial": trial.number,
        "values": trial.values,
        "metric_names": names,
        "params": trial.params,
        "val_metrics": trial.user_attrs.get("val_metrics"),
        "test_metrics": test["metrics"] if test and test.get("trial") == trial.number else None,
        "baselines": study_attr(study, "baselines"),
        "comparison": comparison.to_dict() if comparison else None,
        "checkpoint": trial_attr(trial, "checkpoint"),
        "config": trial_attr(trial, "config"),
    }
    if len(names) > 1:  # a Pareto front: the best by the main metric, and the front it is on
        out["pareto_front"] = [{"trial": t.number, "values": t.values} for t in study.best_trials]
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"best trial {trial.number} of {args.name!r}: {_values(trial, names)}")
    for key, value in trial.params.items():
        print(f"  {key} = {value!r}")
    for name in ("val_metrics", "test_metrics"):
        if out[name]:
            print(f"{name.replace('_', ' ')}: " + ", ".join(f"{k} {v:.4f}" for k, v in out[name].items()
                                                           if isinstance(v, float)))
    if "pareto_front" in out:
        print("pareto front: " + "; ".join(f"trial {p['trial']} " + ", ".join(
            f"{n} {v:.4g}" for n, v in zip(names, p["values"], strict=False)) for p in out["pareto_front"]))
    print(f"checkpoint: {out['checkpoint']}")
    if comparison is not None:
        print(comparison.to_text())
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """One line per study: state counts, best value, data, last activity."""
    storage = open_storage(StorageConfig(url=args.storage), must_exist=True)
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    if not summaries:
        print(f"no studies in {redact(args.storage)}")
        return 0
    print(f"{'study':<24} {'complete':>8} {'pruned':>6} {'failed':>6} {'running':>7}  {'best':>8}  "
          f"{'data':<18} last activity")
    for summary in summaries:
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        trials = study.get_trials(deepcopy=False)
        c = counts(study)
        best = best_trial(study)
        data = (study_attr(study, "data_summary") or {}).get("name", "?")
        times = [t for tr in trials for t in (tr.datetime_complete, tr.datetime_start) if t is not None]
        last = f"{max(times):%Y-%m-%d %H:%M}" if times else "-"
        print(f"{summary.study_name:<24} {c['COMPLETE']:>8} {c['PRUNED']:>6} {c['FAIL']:>6} "
              f"{c['RUNNING']:>7}  {(f'{best.values[0]:.4f}' if best else '-'):>8}  {str(data)[:18]:<18} "
              f"{last}")
    return 0


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """One flat row per trial: number, state, values, duration, epochs, main validation metrics, params."""
    names = _metric_names(study, "value")
    rows = []
    for t in study.get_trials(deepcopy=False):
        duration = (t.datetime_complete - t.datetime_start).total_seconds() if (
            t.datetime_complete and t.datetime_start) else None
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name.lower()}
        for i, name in enumerate(names):
            row[name] = t.values[i] if t.values else None
        row["duration_s"] = round(duration, 1) if duration is not None else None
        row["epochs"] = t.user_attrs.get("epochs_run", max(len(t.intermediate_values) - 1, 0))
        row["reason"] = t.user_attrs.get("fail_reason") or t.user_attrs.get("prune_reason") or ""
        row.update(t.params)
        rows.append(row)
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return (f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e4
                else f"{value:.4f}".rstrip("0").rstrip("."))
    return str(value)


def cmd_trials(args: argparse.Namespace) -> int:
    study = load_existing(args.name, args.storage)
    rows = trial_rows(study)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    if args.format == "json":
        print(json.dumps(rows, indent=1, default=str))
    elif args.format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        short = {c: c.split(".", 1)[-1] for c in columns}  # train.head_lr -> head_lr
        cells = [[_cell(row.get(c))[:40] for c in columns] for row in rows]
        widths = [max([len(short[c])] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
        print("  ".join(short[c].ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
        for r in cells:
            print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    storage = open_storage(StorageConfig(url=args.storage), must_exist=True)
    study = load_existing(args.name, args.storage)
    n = len(study.get_trials(deepcopy=False))
    if not args.yes:
        if not sys.stdin.isatty():
            raise UserInputError(f"Deleting study {args.name!r} ({n} trials, its checkpoints and artifacts) "
                                 "needs a confirmation: run it in a terminal, or pass --yes.")
        answer = input(f"delete study {args.name!r} with {n} trials, its checkpoints and artifacts? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 1
    remove_study(storage, args.name)
    print(f"deleted study {args.name!r} ({n} trials, checkpoints and artifacts)")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Test metrics and baselines of several studies side by side; tuned minus tuned with a paired interval
    where two studies stored per-query scores on the same test queries."""
    studies = [load_existing(name, args.storage) for name in args.names]
    table: dict[str, dict[str, float]] = {}
    per_query: dict[str, dict[str, float]] = {}
    metric = "ndcg@10"
    for study in studies:
        comparison = stored_comparison(study)
        if comparison is None:
            raise UserInputError(f"Study {study.study_name!r} has no test-split comparison yet (it is stored "
                                 "when `study run` finishes): run it to the end first.")
        metric = comparison.metric
        for row in comparison.rows:  # keys, not labels: "tuned (best trial 7)" differs between studies
            table.setdefault(row.key.replace("_", " "), {})[study.study_name] = row.ndcg
        scores = study_attr(study, "test_per_query")
        if scores:
            per_query[study.study_name] = scores
    names = [s.study_name for s in studies]
    print(f"test {metric}".ljust(32) + "".join(f"{n[:14]:>16}" for n in names))
    for label, values in table.items():
        print(label[:31].ljust(32) + "".join(f"{values.get(n, float('nan')):>16.4f}" for n in names))
    _print_pairs(names, per_query, metric)
    return 0


def _print_pairs(names: list[str], per_query: dict[str, dict[str, float]], metric: str) -> None:
    first = names[0]
    for other in names[1:]:
        if first not in per_query or other not in per_query:
            print(f"{first} - {other}: no paired interval (per-query test scores not stored for both)")
            continue
        shared = sorted(set(per_query[first]) & set(per_query[other]))
        if len(shared) < 2:
            print(f"{first} - {other}: no paired interval (the studies share {len(shared)} test queries)")
            continue
        a = np.array([per_query[first][q] for q in shared])
        b = np.array([per_query[other][q] for q in shared])
        mean, low, high = paired_bootstrap_interval(a, b, n_resamples=2000, seed=0)
        print(f"{first} - {other}: {mean:+.4f} [{low:+.4f}, {high:+.4f}] {metric} "
              f"on {len(shared)} shared test queries (95% paired bootstrap)")
