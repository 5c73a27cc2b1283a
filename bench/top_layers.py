"""Fine-tuning the top k encoder layers over cached lower layers, against full backpropagation.

The same shop-length pairs, model (``cross`` or ``prior`` on all-MiniLM-L6-v2, all six layers) and
steps; ``model.trainable_layers = k`` against 0 (every layer trains). Reported: training pairs/s of ``fit``
(the median of the runs, which alternate so that other jobs on the machine hit both alike), the one-off cost
of the cache (the frozen layers' forward pass over every pair, once per dataset and shared by every later
trial), and the validation NDCG@10 after the same epochs.

    python bench/top_layers.py --k 2 --repeats 2
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import common  # first: OMP_WAIT_POLICY before torch, repository root on sys.path
import torch
from common import machine, print_machine, write_json
from study.models import layer_cache
from study.models.device import resolve_device
from study.models.ranker import RankingNet
from study.models.train import fit

from study.config import build_config
from study.workspace import prepare_workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--k", type=int, default=2, help="trainable top layers (of 6)")
    parser.add_argument("--architecture", default="cross", choices=("cross", "prior"))
    parser.add_argument("--n-queries", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    device = resolve_device(args.device)
    info = machine(device)
    print_machine(info)
    raw = {"data": {"n_queries": args.n_queries}, "model": {"architecture": args.architecture, "n_layers": 0,
                                                             "variant": "text", "max_length": 64},
           "train": {"epochs": args.epochs, "patience": 0, "eval_at_start": False}}
    ws = prepare_workspace(build_config(raw), device)
    base = ws.config.model
    rows: dict[str, dict] = {}
    for k in (args.k, 0):  # the one-off costs first, outside the timed fits
        cfg = dataclasses.replace(base, trainable_layers=k)
        t0 = time.perf_counter()
        for name in ("train", "val"):
            ws.tensors(name, cfg)
        rows[f"k={k}"] = {"setup_s": round(time.perf_counter() - t0, 2), "pairs_per_s": [], "val_ndcg@10": []}
    layer_cache._MEMORY.clear()  # as a new process would: tokens from memory, the frozen layers from disk
    ws._tensors.clear()
    cfg = dataclasses.replace(base, trainable_layers=args.k)
    t0 = time.perf_counter()
    split = ws.tensors("train", cfg)
    rows[f"k={args.k}"]["cache_s_from_disk"] = round(time.perf_counter() - t0, 2)
    rows[f"k={args.k}"]["cache_mb"] = round(split.hidden.numel() * 2 / 1e6, 1)
    for _ in range(args.repeats):
        for k in (args.k, 0):
            cfg = dataclasses.replace(base, trainable_layers=k)
            torch.manual_seed(0)
            model = RankingNet(cfg, n_features=ws.scaler.n_outputs_)
            result = fit(model, ws.tensors("train", cfg), ws.tensors("val", cfg), ws.config.train)
            rows[f"k={k}"]["pairs_per_s"].append(round(result.pairs_per_second, 1))
            rows[f"k={k}"]["val_ndcg@10"].append(round(result.best_metrics["ndcg@10"], 4))
            print(f"k={k}: {result.pairs_per_second:.1f} pairs/s, val NDCG@10 "
                  f"{result.best_metrics['ndcg@10']:.4f}", flush=True)
    fast = statistics.median(rows[f"k={args.k}"]["pairs_per_s"])
    slow = statistics.median(rows["k=0"]["pairs_per_s"])
    print(f"median training pairs/s: k={args.k} {fast:.1f}, all layers {slow:.1f}, ratio {fast / slow:.2f}; "
          f"cache {rows[f'k={args.k}']['setup_s']} s once ({rows[f'k={args.k}']['cache_mb']} MB), "
          f"{rows[f'k={args.k}']['cache_s_from_disk']} s from disk; load {common.load_average()}")
    if args.out:
        write_json(Path(args.out), {
            "machine": info, "command": "python bench/top_layers.py " + " ".join(sys.argv[1:]),
            "pairs": len(ws.split("train")), "rows": rows, "ratio": round(fast / slow, 2)})


if __name__ == "__main__":
    main()
