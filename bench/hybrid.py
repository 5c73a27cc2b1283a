"""Experiment: the zero-shot bi-encoder cosine as an input feature of the fusion model, on Home Depot.

On Home Depot the trained 1-6 layer cross-encoder stays below the untrained all-MiniLM-L6-v2 bi-encoder
(bench/RESULTS.md, section 4). This script asks whether the two signals add up: it computes the bi-encoder
cosine of every pair once (full pretrained MiniLM, no training), adds it as a feature column, and trains

- ``features`` on the cosine alone (the zero-shot ranking through the MLP head),
- ``fusion``: the cut cross-encoder plus the cosine feature,

with the CPU profile's default hyperparameters, on the same test queries as ``bench/quality.py``.
The feature is not part of the product; this is a measurement to decide whether it should be.

example: python bench/hybrid.py --n-layers 1
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time

import common  # first: sets OMP_WAIT_POLICY before torch loads, puts the repository root on sys.path
import torch
from common import machine, print_machine
from quality import HOMEDEPOT, default_cross_encoder, homedepot_workspace

from data.features import FeatureScaler
from data.schema import JudgedPairs, product_text
from data.splits import Splits
from models.device import resolve_device
from study.baselines import embed
from study.config import build_config

FEATURE = "encoder_cosine"


def with_cosine(pairs: JudgedPairs, *, encoder: str, device: torch.device) -> JudgedPairs:
    frame = pairs.frame.copy()
    queries = frame["query"].astype(str).tolist()
    texts = product_text(frame, pairs.text_fields)
    unique_q, unique_t = sorted(set(queries)), sorted(set(texts))
    q_emb = embed(unique_q, encoder=encoder, device=device)
    t_emb = embed(unique_t, encoder=encoder, device=device)
    qi = {q: i for i, q in enumerate(unique_q)}
    ti = {t: i for i, t in enumerate(unique_t)}
    rows_q = torch.tensor([qi[q] for q in queries], device=device)
    rows_t = torch.tensor([ti[t] for t in texts], device=device)
    frame[FEATURE] = (q_emb[rows_q] * t_emb[rows_t]).sum(-1).float().cpu().numpy()
    return JudgedPairs(frame, pairs.text_fields, (*pairs.feature_fields, FEATURE), pairs.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n-layers", type=int, default=1)
    parser.add_argument("--hd-train-queries", type=int, default=1500)
    parser.add_argument("--hd-test-queries", type=int, default=2000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    device = resolve_device(args.device)
    profile = "cuda" if device.type == "cuda" else "cpu"
    print_machine(machine(device))
    if not HOMEDEPOT.is_file():
        print(f"homedepot: skipped, {HOMEDEPOT} is absent")
        return
    config = build_config({"data": {"source": "homedepot", "path": str(HOMEDEPOT)},
                           "model": {"variant": "fusion", "n_layers": args.n_layers}}, profile=profile)
    ws = homedepot_workspace(config, device, n_test=args.hd_test_queries, n_train=args.hd_train_queries,
                             n_val=max(args.hd_train_queries // 5, 300))
    t0 = time.perf_counter()
    splits = Splits(*(with_cosine(getattr(ws.splits, s), encoder=config.model.encoder, device=device)
                      for s in ("train", "val", "test")))
    print(f"bi-encoder cosine of {sum(len(getattr(splits, s)) for s in ('train', 'val', 'test')):,} pairs: "
          f"{time.perf_counter() - t0:.0f} s", flush=True)
    pairs = dataclasses.replace(ws.pairs, feature_fields=(*ws.pairs.feature_fields, FEATURE))
    scaler = FeatureScaler(log1p=False).fit(splits.train.frame, pairs.feature_fields)
    ws = dataclasses.replace(ws, pairs=pairs, splits=splits, scaler=scaler)
    for variant in ("features", "fusion"):
        t0 = time.perf_counter()
        m = default_cross_encoder(ws, variant)
        print(f"  homedepot  {variant:<9} + cosine feature  NDCG@10 {m['ndcg@10']:.4f}  MRR {m['mrr']:.4f}  "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"load average {common.load_average()}")


if __name__ == "__main__":
    main()
