"""Which text architecture pays: each trained once with default hyperparameters, against the zero-shot
encoder.

For every architecture (``cross``, ``prior``, ``frozen``, ``two_tower``), with and without the lexical match
features, the model is trained on the training queries and scored on the same held-out test queries as the
zero-shot all-MiniLM-L6-v2 cosine; the output gives test NDCG@10 and the 95% paired bootstrap interval of
(model - zero-shot) over test queries. Home Depot uses ``bench/quality.py``'s protocol (2,000 test queries).

    python bench/architectures.py --dataset homedepot --train-queries 1500 --epochs 2
    python bench/architectures.py --dataset synthetic
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time

import common  # noqa: F401 - first: sets OMP_WAIT_POLICY before torch loads, puts the repository root on sys.path
import numpy as np
import pandas as pd
import torch
from common import machine, print_machine
from quality import HOMEDEPOT, homedepot_workspace
from study.models.device import resolve_device, resolve_precision
from study.models.metrics import ndcg_at_k
from study.models.ranker import RankingNet
from study.models.train import evaluate, fit

from study.config import build_config
from study.workspace import Workspace, prepare_workspace


def per_query_ndcg(scores: np.ndarray, frame: pd.DataFrame, k: int = 10) -> pd.Series:
    d = pd.DataFrame({"s": scores, "l": frame["label"].to_numpy(float), "q": frame["query_id"].to_numpy(str)})
    return d.groupby("q").apply(lambda g: ndcg_at_k(g["s"].to_numpy(), g["l"].to_numpy(), k)).dropna()


def paired_interval(a: pd.Series, b: pd.Series, *, n: int = 2000,
                    seed: int = 0) -> tuple[float, float, float]:
    diff = (a - b.reindex(a.index)).dropna().to_numpy()
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(n, len(diff)))].mean(1)
    return float(diff.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def train_and_score(ws: Workspace, **model_changes) -> tuple[pd.Series, dict]:
    config = ws.config
    model_cfg = dataclasses.replace(config.model, **model_changes)
    torch.manual_seed(config.train.seed)
    model = RankingNet(model_cfg, n_features=ws.scaler.n_outputs_)
    t0 = time.perf_counter()
    result = fit(model, ws.tensors("train", model_cfg), ws.tensors("val", model_cfg), config.train)
    model.load_state_dict(result.best_state)
    test = ws.tensors("test", model_cfg)
    _, scores = evaluate(model, test, config=config.train, dtype=resolve_precision("auto", ws.device))
    info = {"best_epoch": result.best_epoch, "val_curve": [round(h["ndcg@10"], 4) for h in result.history],
            "seconds": round(time.perf_counter() - t0, 1)}
    return per_query_ndcg(scores, test.frame), info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("homedepot", "synthetic"), default="synthetic")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--train-queries", type=int, default=1500)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--n-layers", type=int, default=0, help="encoder layers kept for cross / two_tower")
    parser.add_argument("--architectures", default="frozen,prior,two_tower,cross")
    parser.add_argument("--match", choices=("both", "on", "off"), default="both",
                        help="with and/or without the lexical match features")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    device = resolve_device(args.device)
    info = machine(device)
    print_machine(info)
    raw = {"model": {"n_layers": args.n_layers, "max_length": 64},
           "train": {"epochs": args.epochs, "patience": 0, "batch_size": 32}}
    if args.dataset == "homedepot":
        config = build_config({**raw, "data": {"source": "homedepot", "path": str(HOMEDEPOT)}})
        ws = homedepot_workspace(config, device, n_test=2000, n_train=args.train_queries,
                                 n_val=max(args.train_queries // 5, 300))
    else:
        config = build_config({**raw, "data": {"n_queries": 400, "val_fraction": 0.2, "test_fraction": 0.3}})
        ws = prepare_workspace(config, device)
    print(f"{args.dataset}: {ws.summary()['splits']}", flush=True)
    prior_col = ws.model_inputs("test", dataclasses.replace(config.model, architecture="frozen"))[:, -1]
    # model_inputs is in the split's frame order; tensors sort by query: map through the frame's index
    zero = per_query_ndcg(prior_col, ws.split("test").frame)
    rows = {"zero-shot encoder": {"ndcg@10": round(float(zero.mean()), 4)}}
    print(f"  {'zero-shot encoder':<34} NDCG@10 {zero.mean():.4f}", flush=True)
    for arch in args.architectures.split(","):
        for match in {"both": (True, False), "on": (True,), "off": (False,)}[args.match]:
            label = f"{arch}{' + match' if match else ''}"
            scores, extra = train_and_score(ws, architecture=arch, match_features=match)
            mean, lo, hi = paired_interval(scores, zero)
            rows[label] = {"ndcg@10": round(float(scores.mean()), 4), "minus_zero_shot": round(mean, 4),
                           "interval": [round(lo, 4), round(hi, 4)], **extra}
            print(f"  {label:<34} NDCG@10 {scores.mean():.4f}  - zero-shot {mean:+.4f} [{lo:+.4f}, "
                  f"{hi:+.4f}]  val {extra['val_curve']}  {extra['seconds']} s", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"machine": info, "command": "python bench/architectures.py " + " ".join(sys.argv[1:]),
                       "splits": ws.summary()["splits"], "rows": rows}, f, indent=2)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
