"""Training and scoring throughput of the project's cross-encoder pipeline against a Hugging Face Trainer.

Same synthetic shop-length pairs (query ~5 tokens, product text ~22), same pairs per batch, same device.
Reports pairs/s, real (unpadded) tokens/s, padding and model FLOPs utilisation against a matrix product
measured here (see ``bench/flops.py`` for the formula), then what a trial spends outside its training
steps. The last line is ``ratio R``: project training pairs/s over the better baseline's.

    python bench/throughput.py --device cpu --quick
    python bench/throughput.py --device cuda
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import time
from dataclasses import dataclass

import numpy as np
import torch

import common  # noqa: F401  (puts the repository root on sys.path)
from common import machine, percent, print_machine, shop_pairs
from data.batching import SplitTensors, build_split_tensors, training_batches
from data.features import FeatureScaler
from data.splits import split_by_query
from flops import layer_parameters, matmul_ceiling, pair_flops
from hf_baseline import BaselineRun, run_trainer
from models.device import enable_fast_math, resolve_precision
from models.encoder import resolve_encoder_dir
from models.ranker import Ranker, RankerConfig
from models.train import TrainConfig, fit, predict
from overhead import print_overhead, trial_overhead


@dataclass
class Run:
    name: str
    train_pairs: int
    train_real_tokens: int
    train_padded_tokens: int
    train_time_s: float
    score_pairs: int
    score_time_s: float

    @property
    def train_pairs_per_s(self) -> float:
        return self.train_pairs / self.train_time_s

    @property
    def score_pairs_per_s(self) -> float:
        return self.score_pairs / self.score_time_s


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def padded_tokens(split: SplitTensors, config: TrainConfig) -> tuple[int, float]:
    """Tokens the first epoch of ``fit`` computes on (padding included) and its mean pairs per batch.

    Mirrors ``fit``: its first epoch draws batches from ``default_rng(config.seed)``.
    """
    batches = training_batches(split, batch_size=config.batch_size, rng=np.random.default_rng(config.seed),
                               bucket=config.bucket_by_length)
    total, sizes = 0, []
    for queries in batches:
        rows = np.concatenate([np.arange(split.query_offsets[q], split.query_offsets[q + 1]) for q in queries])
        total += int(split.lengths[rows].max()) * len(rows)
        sizes.append(len(rows))
    return total, float(np.mean(sizes))


def run_project(train: SplitTensors, val: SplitTensors, *, model_config: RankerConfig, config: TrainConfig,
                n_features: int, device: torch.device) -> Run:
    """One epoch of ``models.train.fit`` (its own step-loop timer), then ``predict`` over the same pairs."""
    torch.manual_seed(config.seed)
    model = Ranker(model_config, n_features=n_features)
    result = fit(model, train, val, config)
    dtype = resolve_precision(config.precision, device)
    sync(device)
    t0 = time.perf_counter()
    predict(model, train, batch_size=config.eval_batch_size, dtype=dtype)
    sync(device)
    score_time = time.perf_counter() - t0
    padded, _ = padded_tokens(train, config)
    return Run(
        name="project" + (" (compiled)" if getattr(config, "compile", False) else ""),
        train_pairs=train.n_pairs,
        train_real_tokens=int(train.lengths.sum()),
        train_padded_tokens=padded,
        train_time_s=result.train_time_s,
        score_pairs=train.n_pairs,
        score_time_s=score_time,
    )


def report(runs: list[Run | BaselineRun], *, train: SplitTensors, encoder: torch.nn.Module, ceiling: float) -> None:
    n_params = layer_parameters(encoder)
    shape = dict(n_params=n_params, n_layers=int(encoder.config.num_hidden_layers),
                 hidden=int(encoder.config.hidden_size))
    train_flops = pair_flops(train.lengths, training=True, **shape)
    score_flops = pair_flops(train.lengths, training=False, **shape)
    real_tokens = int(train.lengths.sum())
    print(f"\nFLOPs: N = {n_params / 1e6:.2f} M non-embedding parameters, {shape['n_layers']} layers x "
          f"{shape['hidden']}; {train_flops / real_tokens / 1e6:.1f} MFLOP per real token "
          "trained (6N + 12 L d n), "
          f"{score_flops / real_tokens / 1e6:.1f} scored (2N + 4 L d n)")
    header = (f"{'pipeline':<28} {'train pairs/s':>13} {'real tok/s':>11} {'padding':>8} {'MFU':>6} "
              f"{'score pairs/s':>13} {'score MFU':>9}")
    print(header)
    print("-" * len(header))
    for run in runs:
        pad = 1.0 - run.train_real_tokens / max(run.train_padded_tokens, 1)
        mfu = train_flops / run.train_time_s / ceiling
        score_mfu = score_flops / run.score_time_s / ceiling
        print(f"{run.name:<28} {run.train_pairs_per_s:>13.1f} {run.train_real_tokens / run.train_time_s:>11.0f} "
              f"{percent(pad):>8} {percent(mfu):>6} {run.score_pairs_per_s:>13.1f} {percent(score_mfu):>9}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="example: python bench/throughput.py --device cpu --quick")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="a run of a few minutes (fewer pairs, one round)")
    parser.add_argument("--compile", action="store_true", help="train the project model under torch.compile")
    parser.add_argument("--variant", choices=("text", "fusion"), default="text")
    parser.add_argument("--n-layers", type=int, default=0, help="keep the first k MiniLM layers (0 = all 6)")
    parser.add_argument("--batch-size", type=int, default=32, help="pairs per training batch")
    parser.add_argument("--eval-batch-size", type=int, default=512, help="pairs per scoring batch")
    parser.add_argument("--n-queries", type=int, default=0, help="training queries (default 100 quick, 400 full)")
    parser.add_argument("--rounds", type=int, default=0, help="repetitions, best counted (default 1 quick, 2 full)")
    parser.add_argument("--no-overhead", action="store_true", help="skip the per-trial overhead measurement")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    device = torch.device(args.device)
    enable_fast_math(device)
    n_queries = args.n_queries or (100 if args.quick else 400)
    if args.device == "cuda":
        n_queries = args.n_queries or (1000 if args.quick else 4000)
    rounds = args.rounds or (1 if args.quick else 2)
    info = machine(device)
    print_machine(info)

    model_dir = str(resolve_encoder_dir("minilm"))
    pairs = shop_pairs(n_queries=n_queries + 10, items_per_query=10, seed=0)
    splits = split_by_query(pairs, val_fraction=5 / (n_queries + 10), test_fraction=5 / (n_queries + 10), seed=0)
    scaler = FeatureScaler(log1p=True).fit(splits.train.frame, pairs.feature_fields)

    def tensors(part):
        return build_split_tensors(part, scaler.transform(part.frame), device=device, model_dir=model_dir,
                                   max_length=64)

    train, val = tensors(splits.train), tensors(splits.val)
    model_config = RankerConfig(variant=args.variant, n_layers=args.n_layers, max_length=64)
    config = TrainConfig(loss="listnet", epochs=1, batch_size=args.batch_size, patience=0,
                         eval_batch_size=args.eval_batch_size, seed=0)
    if args.compile:
        config = dataclasses.replace(config, compile=True)
    _, mean_batch = padded_tokens(train, config)
    hf_batch = max(int(round(mean_batch)), 1)
    q_len = np.diff(train.query_offsets).mean()
    print(f"data: {train.n_pairs} training pairs in {train.n_queries} queries (~{q_len:.1f} per query), "
          f"{train.lengths.mean():.1f} real tokens per pair (max {train.lengths.max()}); "
          f"project batches hold whole queries, {mean_batch:.1f} pairs on average -> Trainer batch size {hf_batch}")

    ceiling, ceiling_label = matmul_ceiling(device)
    print(f"ceiling: {ceiling / 1e12:.3f} TFLOP/s ({ceiling_label}, measured here)")

    # Warm-up (allocator, oneDNN / cuBLAS handles, the encoder weights' first read) on a few queries.
    warm = tensors(splits.train.subset(splits.train.frame["query_id"].unique()[:4]))
    run_project(warm, val, model_config=model_config, config=config, n_features=scaler.n_outputs_, device=device)
    run_trainer(warm, model_dir=model_dir, device=device, batch_size=hf_batch,
                eval_batch_size=args.eval_batch_size, strategy="random", score=False)

    best: dict[str, Run | BaselineRun] = {}
    for r in range(rounds):
        candidates: list[Run | BaselineRun] = [
            run_project(train, val, model_config=model_config, config=config, n_features=scaler.n_outputs_,
                        device=device),
            *(run_trainer(train, model_dir=model_dir, device=device, batch_size=hf_batch,
                          eval_batch_size=args.eval_batch_size, strategy=s)
              for s in ("random", "group_by_length")),
        ]
        for run in candidates:
            if run.name not in best or run.train_pairs_per_s > best[run.name].train_pairs_per_s:
                best[run.name] = run
        print(f"round {r + 1}/{rounds} done, load average {common.load_average()}")
    runs = list(best.values())
    encoder = Ranker(model_config, n_features=scaler.n_outputs_).encoder
    report(runs, train=train, encoder=encoder, ceiling=ceiling)
    project = runs[0]
    baseline = max(runs[1:], key=lambda run: run.train_pairs_per_s)
    print(f"better baseline: {baseline.name}; scoring ratio "
          f"{project.score_pairs_per_s / max(r.score_pairs_per_s for r in runs[1:]):.2f}")
    if not args.no_overhead:
        overhead = trial_overhead(splits, pairs, scaler, model_config=model_config, config=config, device=device,
                                  train_pairs_per_s=project.train_pairs_per_s, model_dir=model_dir)
        print_overhead(overhead)
    print(f"load average at the end: {common.load_average()}")
    print(f"ratio {project.train_pairs_per_s / baseline.train_pairs_per_s:.2f}")


if __name__ == "__main__":
    main()
