"""Ranking quality on held-out queries: NDCG@10 (gain 2^g - 1) and MRR, synthetic catalogue and Home Depot.

Methods: random order, TF-IDF cosine, zero-shot all-MiniLM-L6-v2 bi-encoder cosine (no training), the
behaviour-only MLP (synthetic only: Home Depot has no behaviour numbers), the cross-encoder with default
hyperparameters (fusion and text-only on synthetic, text on Home Depot) and the best trial of a small
tuned study (TPE + median pruning through the project's objective).

Home Depot protocol (the brief's reference numbers): 2,000 random queries with at least 5 judged items and
two distinct labels, g = relevance - 1. They are the test queries; training and validation queries are
drawn from the other queries. The file is read at run time from ``../shared/data/homedepot`` and nothing
derived from it is written except the metrics. On the CPU the training side is cut (fewer training
queries, the first MiniLM layers only, few trials) and the output says so.

    python bench/quality.py --n-trials 4
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
import optuna
import torch
from common import ROOT, machine, print_machine, write_json

from data.adapters import load_homedepot
from data.features import FeatureScaler
from data.schema import LABEL, product_text
from data.splits import Splits
from models.device import resolve_device, resolve_precision
from models.ranker import Ranker
from models.train import evaluate, fit
from study.baselines import behaviour_only, random_order, zero_shot_encoder
from study.config import Config, build_config
from study.evaluation import evaluate_best_on_test
from study.objective import Objective
from study.samplers import build_pruner, build_sampler
from study.workspace import Workspace, prepare_workspace

HERE = Path(__file__).resolve().parent
HOMEDEPOT = ROOT.parent / "shared" / "data" / "homedepot" / "train.csv.zip"
KEYS = ("ndcg@10", "mrr")


def _short(metrics: dict[str, float]) -> dict[str, float]:
    return {k: round(float(metrics[k]), 4) for k in (*KEYS, "n_queries")}


def tfidf_cosine(ws: Workspace) -> dict[str, float]:
    """Cosine between TF-IDF vectors of query and product text, fitted on every product text (no labels)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from study.baselines import _metrics

    corpus = product_text(ws.pairs.frame.drop_duplicates("product_id"), ws.pairs.text_fields)
    vectorizer = TfidfVectorizer(sublinear_tf=True).fit(corpus)
    frame = ws.split("test").frame
    q = vectorizer.transform(frame["query"].astype(str).tolist())
    p = vectorizer.transform(product_text(frame, ws.pairs.text_fields))
    scores = np.asarray(q.multiply(p).sum(axis=1)).ravel()  # rows are L2-normalised: the sum is the cosine
    return _metrics(scores, frame, ws.config.train)


def default_cross_encoder(ws: Workspace, variant: str) -> dict[str, float]:
    """The cross-encoder with the config's default hyperparameters, trained once, scored on the test split."""
    model_config = dataclasses.replace(ws.config.model, variant=variant)
    torch.manual_seed(ws.config.train.seed)
    model = Ranker(model_config, n_features=ws.scaler.n_outputs_)
    result = fit(model, ws.tensors("train", model_config), ws.tensors("val", model_config), ws.config.train)
    model.load_state_dict(result.best_state)
    metrics, _ = evaluate(model, ws.tensors("test", model_config), config=ws.config.train,
                          dtype=resolve_precision(ws.config.train.precision, ws.device))
    return metrics


def tuned_study(ws: Workspace, n_trials: int) -> tuple[dict[str, float], dict]:
    """A small study through the project's objective (TPE + median pruning); its best trial on the test split."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as runs:
        config = dataclasses.replace(ws.config, study=dataclasses.replace(ws.config.study, runs_dir=runs,
                                                                          name="quality"))
        sampler_config = dataclasses.replace(config.sampler, n_startup_trials=min(config.sampler.n_startup_trials,
                                                                                  max(n_trials // 2, 1)))
        study = optuna.create_study(direction="maximize",
                                    sampler=build_sampler(sampler_config, seed=0, search_space=config.search),
                                    pruner=build_pruner(config.pruner, max_epochs=config.train.epochs))
        study.optimize(Objective(config, dataclasses.replace(ws, config=config)), n_trials=n_trials)
        test = evaluate_best_on_test(study, dataclasses.replace(ws, config=config))
    best = study.best_trial
    return test["metrics"], {"params": best.params, "val_ndcg@10": round(best.value, 4),
                             "trials": len(study.trials)}


def homedepot_workspace(config: Config, device: torch.device, *, n_test: int, n_train: int,
                        n_val: int, seed: int = 0) -> Workspace:
    """The reference protocol's test queries, and training / validation queries from the rest."""
    pairs = load_homedepot(HOMEDEPOT)
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
    return (f"MiniLM layers kept {m.n_layers or 'all 6'}, max_length {m.max_length}, pooling {m.pooling}; "
            f"epochs {t.epochs}, batch {t.batch_size}, loss {t.loss}, encoder_lr {t.encoder_lr}, head_lr {t.head_lr}")


def run_all(name: str, ws: Workspace, *, n_trials: int, variants: tuple[str, ...], behaviour: bool) -> dict:
    out: dict[str, dict] = {}

    def timed(label: str, fn) -> None:
        t0 = time.perf_counter()
        result = fn()
        extra = {}
        if isinstance(result, tuple):
            result, extra = result
        out[label] = {**_short(result), **extra, "seconds": round(time.perf_counter() - t0, 1)}
        print(f"  {name:<10} {label:<34} NDCG@10 {out[label]['ndcg@10']:.4f}  MRR {out[label]['mrr']:.4f}  "
              f"({out[label]['seconds']} s)", flush=True)

    timed("random order", lambda: random_order(ws))
    timed("TF-IDF cosine", lambda: tfidf_cosine(ws))
    timed("zero-shot MiniLM bi-encoder", lambda: zero_shot_encoder(ws))
    if behaviour:
        timed("behaviour-only MLP", lambda: behaviour_only(ws))
    for variant in variants:
        timed(f"cross-encoder {variant}, default hp", lambda v=variant: default_cross_encoder(ws, v))
    if n_trials:
        timed(f"tuned study ({n_trials} trials)", lambda: tuned_study(ws, n_trials))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="example: python bench/quality.py --n-trials 4")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n-trials", type=int, default=0, help="tuned-study trials (default 4 CPU, 30 CUDA)")
    parser.add_argument("--n-queries", type=int, default=0, help="synthetic queries (default 400 CPU, 2000 CUDA)")
    parser.add_argument("--n-layers", type=int, default=-1,
                        help="MiniLM layers kept (default: the profile's, 1 on the CPU, all 6 on CUDA)")
    parser.add_argument("--hd-train-queries", type=int, default=-1,
                        help="Home Depot training queries (default 1500 CPU, 0 = all others on CUDA)")
    parser.add_argument("--hd-test-queries", type=int, default=2000)
    parser.add_argument("--skip", choices=("synthetic", "homedepot"), action="append", default=[])
    parser.add_argument("--out", type=Path, default=HERE / "quality.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    device = resolve_device(args.device)
    profile = "cuda" if device.type == "cuda" else "cpu"
    n_trials = args.n_trials or (30 if profile == "cuda" else 4)
    model_raw = {"n_layers": args.n_layers} if args.n_layers >= 0 else {}
    info = machine(device)
    print_machine(info)
    results: dict[str, object] = {"machine": info, "args": {k: str(v) for k, v in vars(args).items()}}
    results["command"] = "python bench/quality.py " + " ".join(sys.argv[1:])

    if "synthetic" not in args.skip:
        n_queries = args.n_queries or (2000 if profile == "cuda" else 400)
        config = build_config({"data": {"n_queries": n_queries, "val_fraction": 0.2, "test_fraction": 0.3},
                               "model": model_raw}, profile=profile)
        ws = prepare_workspace(config, device)
        print(f"synthetic: {ws.summary()['splits']}; {describe(config)}", flush=True)
        synthetic = run_all("synthetic", ws, n_trials=n_trials, variants=("fusion", "text"), behaviour=True)
        ndcg = {k: v["ndcg@10"] for k, v in synthetic.items()}
        order = (ndcg["cross-encoder fusion, default hp"] > ndcg["cross-encoder text, default hp"]
                 > ndcg["behaviour-only MLP"])
        print(f"  ordering fusion {ndcg['cross-encoder fusion, default hp']:.4f} > text-only "
              f"{ndcg['cross-encoder text, default hp']:.4f} > behaviour-only {ndcg['behaviour-only MLP']:.4f}: "
              f"{'holds' if order else 'does not hold'}")
        results["synthetic"] = {"methods": synthetic, "ordering_holds": order, "splits": ws.summary()["splits"]}

    if "homedepot" not in args.skip:
        if not HOMEDEPOT.is_file():
            print(f"homedepot: skipped, {HOMEDEPOT} is absent")
        else:
            n_train = args.hd_train_queries if args.hd_train_queries >= 0 else (0 if profile == "cuda" else 1500)
            config = build_config({"data": {"source": "homedepot", "path": str(HOMEDEPOT)},
                                   "model": {"variant": "text", **model_raw}}, profile=profile)
            ws = homedepot_workspace(config, device, n_test=args.hd_test_queries, n_train=n_train,
                                     n_val=max(n_train // 5, 300) if n_train else 1000)
            print(f"homedepot: {ws.summary()['splits']}; {describe(config)}", flush=True)
            hd = run_all("homedepot", ws, n_trials=n_trials, variants=("text",), behaviour=False)
            target = hd[f"tuned study ({n_trials} trials)"]["ndcg@10"] if n_trials else float("nan")
            print(f"  target: tuned best {target:.4f} vs 0.91 -> {'met' if target >= 0.91 else 'not met'}")
            results["homedepot"] = {"methods": hd, "splits": ws.summary()["splits"], "target_met": target >= 0.91}
    write_json(args.out, results)
    print(f"wrote {args.out}; load average {common.load_average()}")


if __name__ == "__main__":
    main()
