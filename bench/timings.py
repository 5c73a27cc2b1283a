"""Wall-clock budgets that used to be asserted inside tests (where a loaded CI machine made them flaky):
scoring 20,000 queries, generating the 300-query catalogue, the report of a 3,000-trial study.

Each is timed (best of ``--repeats``) and printed against its budget; ``--check`` exits 1 when one is over.
Run from the repository root: ``python bench/timings.py [--check]``. The tests keep what these produce
(metrics, frames, the report's size and content); only the durations live here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from common import machine, print_machine  # before torch: the thread policy, and the path to study


def evaluate_20k_queries() -> None:
    from study.models.metrics import evaluate_ranking

    rng = np.random.default_rng(0)
    query_ids = rng.permutation(np.repeat(np.arange(20_000), 10))
    labels = rng.integers(0, 4, size=query_ids.size).astype(float)
    scores = rng.normal(size=query_ids.size)
    assert evaluate_ranking(scores, labels, query_ids)["n_queries"] == 20_000


def generate_300_queries() -> None:
    from study.data.synthetic import generate_catalogue

    generate_catalogue(n_queries=300, seed=1)


def report_of_3000_trials() -> None:
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution
    from optuna.trial import TrialState, create_trial

    from study.report.build import build_report

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = np.random.default_rng(0)
    dists = {"train.head_lr": FloatDistribution(1e-4, 1e-2, log=True),
             "train.loss": CategoricalDistribution(["listnet", "ranknet"]),
             "model.dropout": FloatDistribution(0, 0.3)}
    study = optuna.create_study(direction="maximize", study_name="big")
    start = dt.datetime(2026, 1, 1)
    trials = []
    for i in range(3000):
        pruned = bool(rng.random() < 0.3)
        curve = {e: float(0.8 + 0.02 * e + rng.normal(0, 0.01)) for e in range(1, 2 if pruned else 5)}
        t = create_trial(state=TrialState.PRUNED if pruned else TrialState.COMPLETE,
                         value=None if pruned else max(curve.values()), distributions=dists,
                         params={"train.head_lr": float(10 ** rng.uniform(-4, -2)),
                                 "train.loss": str(rng.choice(["listnet", "ranknet"])),
                                 "model.dropout": float(rng.uniform(0, 0.3))}, intermediate_values=curve)
        t.datetime_start, t.datetime_complete = (start + dt.timedelta(minutes=i),
                                                 start + dt.timedelta(minutes=i + 1))
        trials.append(t)
    study.add_trials(trials)
    with tempfile.TemporaryDirectory() as folder:
        build_report(study, out=Path(folder) / "big.html")


# name -> (what runs, budget in seconds on a shared 2-core machine)
CHECKS: dict[str, tuple[Callable[[], None], float]] = {
    "evaluate_ranking, 20,000 queries x 10 items": (evaluate_20k_queries, 2.0),
    "generate_catalogue, 300 queries": (generate_300_queries, 3.0),
    "build_report, 3,000 trials (study built in the timing)": (report_of_3000_trials, 60.0),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs per check; the fastest counts")
    parser.add_argument("--check", action="store_true", help="exit 1 when a check is over its budget")
    args = parser.parse_args(argv)
    print_machine(machine())
    over = []
    for name, (fn, budget) in CHECKS.items():
        times = []
        for _ in range(max(args.repeats, 1)):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        best = min(times)
        verdict = "ok" if best <= budget else "OVER BUDGET"
        print(f"{name:<58} {best:8.2f} s  (budget {budget:g} s)  {verdict}")
        if best > budget:
            over.append(name)
    return 1 if args.check and over else 0


if __name__ == "__main__":
    sys.exit(main())
