"""``study best``: the best trial's values, params, validation and test metrics and checkpoint. No torch."""

from __future__ import annotations

import argparse
import json
from typing import Any

from study.cli.base import Command, add_storage, add_study_name


class Best(Command):
    name = "best"
    help = "The best trial: value, params, validation and test metrics, checkpoint."
    example = "study best shoes-v3 --json"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_study_name(parser)
        add_storage(parser)
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def take_action(self, args: argparse.Namespace) -> int:
        from study.errors import UserInputError  # optuna: on use, never for --help
        from study.runtime.attrs import study_attr, trial_attr
        from study.runtime.studies import load_existing
        from study.runtime.trials import best_trial
        from study.views import metric_names, stored_comparison

        study = load_existing(args.name, args.storage)
        trial = best_trial(study)
        if trial is None:
            raise UserInputError(f"Study {args.name!r} has no completed trial yet.")
        test = study.user_attrs.get("test")
        comparison = stored_comparison(study)
        if comparison is not None and comparison.best_trial != trial.number:
            comparison = None  # made for an earlier best trial: `study run` computes it again
        names = metric_names(study, "value")
        out: dict[str, Any] = {
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
        _print(out, names)
        if comparison is not None:
            print(comparison.to_text())
        return 0


def _print(out: dict[str, Any], names: list[str]) -> None:
    values = ", ".join(f"{n} {v:.4f}" for n, v in zip(names, out["values"] or [], strict=False))
    print(f"best trial {out['trial']} of {out['study']!r}: {values}")
    for key, value in out["params"].items():
        print(f"  {key} = {value!r}")
    for name in ("val_metrics", "test_metrics"):
        if out[name]:
            print(f"{name.replace('_', ' ')}: " + ", ".join(_metric(k, v) for k, v in out[name].items()
                                                           if isinstance(v, (int, float))))
    if "pareto_front" in out:
        print("pareto front: " + "; ".join(f"trial {p['trial']} " + ", ".join(
            f"{n} {v:.4g}" for n, v in zip(names, p["values"], strict=False)) for p in out["pareto_front"]))
    print(f"checkpoint: {out['checkpoint']}")


def _metric(key: str, value: float) -> str:
    """``ndcg@10 0.9123``; a count as the whole number it is: ``n_queries 105``."""
    if key.startswith("n_") or (isinstance(value, int) and not isinstance(value, bool)):
        return f"{key} {int(value)}"
    return f"{key} {value:.4f}"


COMMAND = Best()
