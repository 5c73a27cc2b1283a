"""Ranking quality on held-out queries, as a user gets it: the default study, then the comparison table.

Both data sets go through the product's own run path (``study run``: the profile for the device, the untuned
default as trial 0, TPE + median pruning, the best trial evaluated once on the test split) and end with the
same comparison ``study run`` prints: tuned best, untuned default, zero-shot encoder, TF-IDF, random order and
behaviour-only where there are features, NDCG@10 and MRR, and tuned minus each with a 95% paired bootstrap
interval over the test queries.

- ``synthetic``: the built-in catalogue with the demo profile, exactly ``study run``.
- ``homedepot``: the brief's protocol: 2,000 random queries with at least 5 judged items and two distinct
  labels (g = relevance - 1) are the test queries; validation and training queries come from the others (all
  of them unless ``--hd-train-queries``), with the file profile (``study run --data train.csv.zip``). The file
  is read at run time from ``../shared/data/homedepot`` and nothing derived from it is written but the
  metrics.

    python bench/quality.py
    python bench/quality.py --skip synthetic --hd-train-queries 1500
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import tempfile
import time
from pathlib import Path

import common  # first: sets OMP_WAIT_POLICY before torch loads, puts the repository root on sys.path
import numpy as np
import torch
from common import ROOT, machine, print_machine, write_json
from study.data.adapters import load_homedepot
from study.data.features import FeatureScaler
from study.data.schema import LABEL
from study.data.splits import Splits
from study.models.device import resolve_device

from study.config import Config, build_config
from study.evaluation.comparison import Comparison
from study.runtime.session import finish, work
from study.runtime.studies import create_or_resume
from study.runtime.trials import counts
from study.views import stored_comparison
from study.workspace import Workspace, prepare_workspace

HERE = Path(__file__).resolve().parent
HOMEDEPOT = ROOT.parent / "shared" / "data" / "homedepot" / "train.csv.zip"


def homedepot_workspace(config: Config, device: torch.device, *, n_test: int, n_train: int,
                        n_val: int, seed: int = 0, path: Path = HOMEDEPOT) -> Workspace:
    """The reference protocol's test queries, and training / validation queries from the rest."""
    pairs = load_homedepot(path)
    frame = pairs.frame
    stats = frame.groupby("query_id")[LABEL].agg(["size", "nunique"])
    eligible = np.array(sorted(stats.index[(stats["size"] >= 5) & (stats["nunique"] >= 2)]))
    rng = np.random.default_rng(seed)
    test = rng.choice(eligible, size=min(n_test, len(eligible)), replace=False)
    rest = np.array(sorted(set(stats.index) - set(test)))
    rest = rest[rng.permutation(len(rest))]
    val, train = rest[:n_val], rest[n_val : n_val + n_train] if n_train else rest[n_val:]
    splits = Splits(train=pairs.subset(train), val=pairs.subset(val), test=pairs.subset(test))
    scaler = FeatureScaler(log1p=True).fit(splits.train.frame, pairs.feature_fields)
    return Workspace(config=config, pairs=pairs, splits=splits, scaler=scaler, device=device)


def describe(config: Config) -> str:
    m, t = config.model, config.train
    return (f"architecture {m.architecture} (searched: {config.search.get('model.architecture', 'no')}), "
            f"MiniLM layers {m.n_layers or 'all 6'}, max_length {m.max_length}; {config.study.n_trials} "
            f"trials of up to {t.epochs} epochs")


def run_study(config: Config, ws: Workspace, folder: Path) -> tuple[Comparison, dict]:
    """``study run``'s path on a prepared workspace: create, work, evaluate on test, compare."""
    config = dataclasses.replace(
        config, study=dataclasses.replace(config.study, runs_dir=str(folder / "runs")),
        storage=dataclasses.replace(config.storage, url=f"sqlite:///{folder / 'studies.db'}"))
    ws = dataclasses.replace(ws, config=config)
    summary = ws.summary()
    t0 = time.perf_counter()
    study = create_or_resume(config, fingerprint=summary["fingerprint"], summary=summary, replace=True)
    work(config, ws, worker_index=0, quiet=True)
    t_trials = time.perf_counter() - t0
    finish(study, config, ws, quiet=False)
    c = counts(study)
    best = max((t for t in study.trials if t.values), key=lambda t: t.values[0])
    info = {"trials_minutes": round(t_trials / 60, 2),
            "total_minutes": round((time.perf_counter() - t0) / 60, 2), "complete": c["COMPLETE"],
            "pruned": c["PRUNED"], "failed": c["FAIL"], "best_params": best.params,
            "best_val": round(best.values[0], 4)}
    return stored_comparison(study), info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="example: python bench/quality.py --skip homedepot")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n-trials", type=int, default=0, help="override the profile's study.n_trials")
    parser.add_argument("--hd-train-queries", type=int, default=0,
                        help="Home Depot training queries (default 0 = every query not in test or "
                             "validation)")
    parser.add_argument("--hd-val-queries", type=int, default=1000)
    parser.add_argument("--hd-test-queries", type=int, default=2000)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config overrides, as for study run")
    parser.add_argument("--skip", choices=("synthetic", "homedepot"), action="append", default=[])
    parser.add_argument("--out", type=Path, default=HERE / "quality.json")
    parser.add_argument("--homedepot", type=Path, default=HOMEDEPOT, help="the Home Depot train.csv.zip")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    device = resolve_device(args.device)
    profile = "cuda" if device.type == "cuda" else "cpu"
    overrides = list(args.overrides) + ([f"study.n_trials={args.n_trials}"] if args.n_trials else [])
    info = machine(device)
    print_machine(info)
    results: dict[str, object] = {"machine": info,
                                  "command": "python bench/quality.py " + " ".join(sys.argv[1:])}
    with tempfile.TemporaryDirectory() as tmp:
        if "synthetic" not in args.skip:
            config = build_config({}, overrides=overrides + ["study.name=quality-synthetic"], profile=profile)
            ws = prepare_workspace(config, device)
            print(f"synthetic (demo profile): {ws.summary()['splits']}", flush=True)
            comparison, run = run_study(config, ws, Path(tmp) / "synthetic")
            print(f"  {run}", flush=True)
            results["synthetic"] = {"splits": ws.summary()["splits"], "run": run,
                                    "comparison": comparison.to_dict()}
        if "homedepot" not in args.skip:
            if not args.homedepot.is_file():
                print(f"homedepot: skipped, {args.homedepot} is absent")
            else:
                config = build_config({"data": {"source": "homedepot", "path": str(args.homedepot)}},
                                      overrides=overrides + ["study.name=quality-homedepot"], profile=profile)
                ws = homedepot_workspace(config, device, n_test=args.hd_test_queries,
                                         n_train=args.hd_train_queries, n_val=args.hd_val_queries,
                                         path=args.homedepot)
                print(f"homedepot (file profile): {ws.summary()['splits']}; {describe(config)}", flush=True)
                comparison, run = run_study(config, ws, Path(tmp) / "homedepot")
                print(f"  {run}", flush=True)
                results["homedepot"] = {"splits": ws.summary()["splits"], "run": run,
                                        "comparison": comparison.to_dict()}
    write_json(args.out, results)
    print(f"wrote {args.out}; load average {common.load_average()}")


if __name__ == "__main__":
    main()
