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
import logging
import time

import common  # first: sets OMP_WAIT_POLICY before torch loads, puts the repository root on sys.path
import numpy as np
import torch
from common import Run, machine, percent, print_machine, shop_pairs, steady_window
from flops import layer_parameters, matmul_ceiling, pair_flops
from hf_baseline import run_trainer
from overhead import print_overhead, trial_overhead
from study.data.batching import SplitTensors, build_split_tensors, training_batches
from study.data.features import FeatureScaler
from study.data.splits import split_by_query
from study.models.device import enable_fast_math, resolve_precision
from study.models.encoder import resolve_encoder_dir
from study.models.ranker import RankerConfig, RankingNet
from study.models.train import TrainConfig, fit, predict


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def first_epoch_batches(split: SplitTensors, config: TrainConfig) -> tuple[int, list[int]]:
    """Tokens the first epoch of ``fit`` computes on (padding included) and the pairs of each step.

    Mirrors ``fit``: its first epoch draws batches from ``default_rng(config.seed)``.
    """
    batches = training_batches(split, batch_size=config.batch_size, rng=np.random.default_rng(config.seed),
                               bucket=config.bucket_by_length)
    total, sizes = 0, []
    for queries in batches:
        rows = np.concatenate([np.arange(split.query_offsets[q], split.query_offsets[q + 1])
                               for q in queries])
        total += int(split.lengths[rows].max()) * len(rows)
        sizes.append(len(rows))
    return total, sizes


def run_project(train: SplitTensors, val: SplitTensors, *, model_config: RankerConfig, config: TrainConfig,
                n_features: int, device: torch.device) -> Run:
    """One epoch of ``models.train.fit`` (its own step-loop timer), then ``predict`` over the same pairs."""
    torch.manual_seed(config.seed)
    model = RankingNet(model_config, n_features=n_features)
    step_ends: list[float] = []

    def on_step(step: int, n_steps: int) -> None:
        if step in steady_window(n_steps):  # two syncs per epoch, none in between
            sync(device)
        step_ends.append(time.perf_counter())

    result = fit(model, train, val, config, on_step=on_step)
    dtype = resolve_precision(config.precision, device)
    sync(device)
    t0 = time.perf_counter()
    predict(model, train, batch_size=config.eval_batch_size, dtype=dtype)
    sync(device)
    score_time = time.perf_counter() - t0
    padded, sizes = first_epoch_batches(train, config)
    first, last = steady_window(len(step_ends))
    return Run(
        name="project" + (" (compiled)" if config.compile else ""),
        train_pairs=train.n_pairs,
        train_real_tokens=int(train.lengths.sum()),
        train_padded_tokens=padded,
        train_time_s=result.train_time_s,
        score_pairs=train.n_pairs,
        score_time_s=score_time,
        step_pairs=sizes[1:],
        step_times=np.diff(step_ends).tolist(),
        steady_pairs=int(sum(sizes[first:last])),
        steady_time_s=step_ends[last - 1] - step_ends[first - 1] if last > first else 0.0,
    )


def report(runs: list[Run], *, train: SplitTensors, encoder: torch.nn.Module, ceiling: float,
           robust: bool) -> None:
    n_params = layer_parameters(encoder)
    shape = {"n_params": n_params, "n_layers": int(encoder.config.num_hidden_layers),
                 "hidden": int(encoder.config.hidden_size)}
    train_flops = pair_flops(train.lengths, training=True, **shape) / train.n_pairs  # per pair
    score_flops = pair_flops(train.lengths, training=False, **shape) / train.n_pairs
    tokens = float(train.lengths.mean())
    print(f"\nFLOPs: N = {n_params / 1e6:.2f} M non-embedding parameters, {shape['n_layers']} layers x "
          f"{shape['hidden']}; {train_flops / tokens / 1e6:.1f} MFLOP per real token trained (6N + 12 L d "
          f"n), {score_flops / tokens / 1e6:.1f} scored (2N + 4 L d n)")
    which = "median step" if robust else "steady window (after the first steps)"
    header = (f"{'pipeline':<28} {'pairs/s':>8} {'(epoch)':>8} {'real tok/s':>10} {'padding':>8} {'MFU':>6} "
              f"{'score pairs/s':>13} {'score MFU':>9}")
    print(f"training pairs/s counted: {which}" + (" (the CPU is shared: the median step is robust to other "
                                                   "jobs taking it for a while; the epoch rate is beside it)"
                                                   if robust else ""))
    print(header)
    print("-" * len(header))
    for run in runs:
        rate = rate_of(run, robust)
        pad = 1.0 - run.train_real_tokens / max(run.train_padded_tokens, 1)
        print(f"{run.name:<28} {rate:>8.1f} {run.epoch_pairs_per_s:>8.1f} {rate * tokens:>10.0f} "
              f"{percent(pad):>8} {percent(rate * train_flops / ceiling):>6} {run.score_pairs_per_s:>13.1f} "
              f"{percent(run.score_pairs_per_s * score_flops / ceiling):>9}")


def rate_of(run: Run, robust: bool) -> float:
    """CPU: the median step (robust to other jobs on a shared CPU). CUDA: the steady window after the first
    steps (steps are asynchronous there, so only synchronised spans mean anything)."""
    return run.median_step_pairs_per_s if robust else run.steady_pairs_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="example: python bench/throughput.py --device cpu --quick")
    parser.add_argument("--device", choices=("cpu", "cuda"),
                        default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true",
                        help="a run of a few minutes (fewer pairs and rounds)")
    parser.add_argument("--compile", action="store_true", help="train the project model under torch.compile")
    parser.add_argument("--variant", choices=("text", "fusion"), default="text")
    parser.add_argument("--n-layers", type=int, default=0, help="keep the first k MiniLM layers (0 = all 6)")
    parser.add_argument("--batch-size", type=int, default=32, help="pairs per training batch (whole queries)")
    parser.add_argument("--eval-batch-size", type=int, default=512, help="pairs per scoring batch")
    parser.add_argument("--n-queries", type=int, default=0,
                        help="training queries (default 60 quick / 300 full on the CPU, 1000 / 4000 on CUDA)")
    parser.add_argument("--rounds", type=int, default=0, help="interleaved repetitions, best counted "
                        "(default 2 quick, 3 full)")
    parser.add_argument("--threads", type=int, default=0, help="intra-op CPU threads for every pipeline "
                        "(default: torch's choice, one per core)")
    parser.add_argument("--no-overhead", action="store_true", help="skip the per-trial overhead measurement")
    parser.add_argument("--overhead-only", action="store_true",
                        help="only the per-trial overhead: one project "
                        "epoch sizes the trial, no Trainer runs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    enable_fast_math(device)
    robust = device.type == "cpu"  # see rate_of
    n_queries = args.n_queries or ((60 if args.quick else 300) if robust else (1000 if args.quick else 4000))
    rounds = args.rounds or (2 if args.quick else 3)
    print_machine(machine(device))

    model_dir = str(resolve_encoder_dir("minilm"))
    pairs = shop_pairs(n_queries=n_queries + 10, items_per_query=10, seed=0)
    splits = split_by_query(pairs, val_fraction=5 / (n_queries + 10), test_fraction=5 / (n_queries + 10),
                            seed=0)
    scaler = FeatureScaler(log1p=True).fit(splits.train.frame, pairs.feature_fields)

    def tensors(part):
        return build_split_tensors(part, scaler.transform(part.frame), device=device, model_dir=model_dir,
                                   max_length=64)

    train, val = tensors(splits.train), tensors(splits.val)
    model_config = RankerConfig(variant=args.variant, architecture="cross", n_layers=args.n_layers,
                                max_length=64)
    config = TrainConfig(loss="listnet", epochs=1, batch_size=args.batch_size, patience=0,
                         eval_batch_size=args.eval_batch_size, seed=0, compile=args.compile)
    mean_batch = float(np.mean(first_epoch_batches(train, config)[1]))
    hf_batch = max(round(mean_batch), 1)
    print(f"data: {train.n_pairs} training pairs in {train.n_queries} queries "
          f"(~{np.diff(train.query_offsets).mean():.1f} per query), {train.lengths.mean():.1f} real tokens "
          f"per pair (max {train.lengths.max()}); project batches hold whole queries, {mean_batch:.1f} "
          f"pairs on average -> Trainer batch size {hf_batch}; variant {args.variant!r}, "
          f"{args.n_layers or 'all'} encoder layers")
    ceiling, ceiling_label = matmul_ceiling(device)
    print(f"ceiling: {ceiling / 1e12:.3f} TFLOP/s ({ceiling_label}, best window, measured here)")

    # Warm-up (allocator, oneDNN / cuBLAS handles, the encoder weights' first read) on a few queries.
    warm = tensors(splits.train.subset(splits.train.frame["query_id"].unique()[:4]))
    run_project(warm, val, model_config=model_config, config=config, n_features=scaler.n_outputs_,
                device=device)
    run_trainer(warm, model_dir=model_dir, device=device, batch_size=hf_batch,
                eval_batch_size=args.eval_batch_size, strategy="random", score=False, n_layers=args.n_layers)

    if args.overhead_only:
        run = run_project(train, val, model_config=model_config, config=config, n_features=scaler.n_outputs_,
                          device=device)
        print(f"project: {rate_of(run, robust):.1f} training pairs/s")
        print_overhead(trial_overhead(pairs, scaler, model_config=model_config, config=config, device=device,
                                      train_pairs_per_s=rate_of(run, robust), model_dir=model_dir))
        print(f"load average at the end: {common.load_average()}")
        return
    best: dict[str, Run] = {}
    for r in range(rounds):  # interleaved, so that a busy spell of the machine hits every pipeline alike
        candidates = [
            run_project(train, val, model_config=model_config, config=config, n_features=scaler.n_outputs_,
                        device=device),
            *(run_trainer(train, model_dir=model_dir, device=device, batch_size=hf_batch,
                          eval_batch_size=args.eval_batch_size, strategy=s, n_layers=args.n_layers)
              for s in ("random", "group_by_length")),
        ]
        for run in candidates:
            if run.name not in best or rate_of(run, robust) > rate_of(best[run.name], robust):
                best[run.name] = run
        print(f"round {r + 1}/{rounds}: "
              + ", ".join(f"{run.name} {rate_of(run, robust):.1f}" for run in candidates)
              + f" pairs/s; load average {common.load_average()}", flush=True)
    runs = list(best.values())
    encoder = RankingNet(model_config, n_features=scaler.n_outputs_).encoder
    report(runs, train=train, encoder=encoder, ceiling=ceiling, robust=robust)
    project, baselines = runs[0], runs[1:]
    baseline = max(baselines, key=lambda run: rate_of(run, robust))
    print(f"better baseline: {baseline.name}; scoring ratio "
          f"{project.score_pairs_per_s / max(run.score_pairs_per_s for run in baselines):.2f}; epoch-rate "
          f"ratio {project.epoch_pairs_per_s / max(run.epoch_pairs_per_s for run in baselines):.2f}")
    if not args.no_overhead:
        overhead = trial_overhead(pairs, scaler, model_config=model_config, config=config, device=device,
                                  train_pairs_per_s=rate_of(project, robust), model_dir=model_dir)
        print_overhead(overhead)
    print(f"load average at the end: {common.load_average()}")
    print(f"ratio {rate_of(project, robust) / rate_of(baseline, robust):.2f}")


if __name__ == "__main__":
    main()
