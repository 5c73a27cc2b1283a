"""Search efficiency: best validation NDCG@10 against cumulative training epochs, over several seeds.

A cheap model (the behaviour-only ``features`` variant, no encoder) on the synthetic catalogue, so that
hundreds of trials fit in minutes. Methods: TPE + median pruning, TPE + Hyperband, random search and grid
search (the seeds' methods, no pruning). Every method gets the same compute, ``n_trials x max_epochs``
training epochs: random and grid spend it on ``n_trials`` full trials, the pruned searches on as many
trials as it buys. Samplers, pruners and the space come from the project (``study.samplers``,
``study.space``). Target: TPE with a pruner reaches random search's final best with at most a third of
its compute. Writes ``bench/hpo.json`` and ``bench/hpo.png``.

    python bench/hpo.py --seeds 5
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import multiprocessing
import sys
import time
from pathlib import Path

import common  # first: sets OMP_WAIT_POLICY before torch loads, puts the repository root on sys.path
import numpy as np
import optuna
import torch
from common import machine, print_machine, write_json
from study.data.batching import build_split_tensors
from study.data.features import FeatureScaler
from study.data.sources import load_dataset
from study.data.splits import make_splits
from study.models.ranker import RankingNet
from study.models.train import fit

from study.config import build_config
from study.samplers import PrunerConfig, SamplerConfig, build_pruner, build_sampler
from study.space import suggest

HERE = Path(__file__).resolve().parent
SPACE = {
    "train.head_lr": {"low": 1e-4, "high": 3e-2, "log": True},
    "model.dropout": {"low": 0.0, "high": 0.5},
    "model.feature_hidden": {"choices": [16, 32, 64, 128]},
    "train.loss": {"choices": ["listnet", "ranknet", "bce", "lambdaloss"]},
    "train.weight_decay": {"low": 1e-5, "high": 0.1, "log": True},
}
METHODS = {  # name -> (sampler, pruner)
    "TPE + median pruning": ("tpe", "median"),
    "TPE + Hyperband": ("tpe", "hyperband"),
    "random search": ("random", "none"),
    "grid search": ("grid", "none"),
}


def _data(n_queries: int):
    """Device tensors of the train and validation splits, features only (``model_dir=None``)."""
    config = build_config({"data": {"n_queries": n_queries, "items_per_query": 10, "val_fraction": 0.2,
                                    "test_fraction": 0.2}, "model": {"variant": "features"}}, profile="cpu")
    pairs = load_dataset(config.data)
    splits = make_splits(pairs, config.data)
    scaler = FeatureScaler(log1p=True).fit(splits.train.frame, pairs.feature_fields)
    cpu = torch.device("cpu")
    tensors = [build_split_tensors(part, scaler.transform(part.frame), device=cpu, model_dir=None,
                                   max_length=64)
               for part in (splits.train, splits.val)]
    return config, scaler.n_outputs_, tensors


def run_method(method: str, seed: int, *, n_trials: int, max_epochs: int, n_queries: int) -> dict:
    """One search: trials until the compute budget is spent; the curve of (epochs so far, best so far)."""
    torch.set_num_threads(1)  # a tiny MLP: one thread per process, the seeds run in parallel
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base, n_features, (train, val) = _data(n_queries)
    base = dataclasses.replace(base, train=dataclasses.replace(base.train, epochs=max_epochs, patience=0,
                                                               batch_size=32))
    sampler_name, pruner_name = METHODS[method]
    sampler = build_sampler(SamplerConfig(name=sampler_name, n_startup_trials=8), seed=seed,
                            search_space=SPACE)
    pruner = build_pruner(PrunerConfig(name=pruner_name, n_startup_trials=4, n_warmup_steps=1),
                          max_epochs=max_epochs)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    budget = n_trials * max_epochs
    spent, best, curve = 0, float("-inf"), [(0, None)]
    started = time.perf_counter()
    while spent < budget and len(study.trials) < 4 * n_trials:
        trial = study.ask()
        config = base.with_params(suggest(trial, SPACE))
        epochs_run = 0

        def on_epoch_end(epoch: int, metrics: dict[str, float], trial=trial) -> None:
            nonlocal epochs_run
            epochs_run = epoch
            trial.report(float(metrics["ndcg@10"]), epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        torch.manual_seed(seed)
        model = RankingNet(config.model, n_features=n_features)
        try:
            result = fit(model, train, val, config.train, on_epoch_end=on_epoch_end)
            value = float(result.best_metrics["ndcg@10"])
            study.tell(trial, value)
            best = max(best, value)
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        spent += epochs_run
        curve.append((spent, best if np.isfinite(best) else None))
    states = [t.state.name for t in study.trials]
    return {"method": method, "seed": seed, "curve": curve, "final_best": best, "epochs": spent,
            "n_trials": len(study.trials), "n_pruned": states.count("PRUNED"),
            "wall_s": round(time.perf_counter() - started, 1)}


def _run(args: tuple) -> dict:
    method, seed, kwargs = args
    return run_method(method, seed, **kwargs)


def best_at(curve: list, epochs: float) -> float:
    """Best value found with at most ``epochs`` of compute (NaN before the first finished trial)."""
    value = float("nan")
    for spent, best in curve:
        if spent > epochs:
            break
        if best is not None:
            value = best
    return value


def epochs_to_reach(curve: list, target: float) -> float:
    for spent, best in curve:
        if best is not None and best >= target - 1e-12:
            return float(spent)
    return float("inf")


def summarise(results: list[dict], budget: int) -> dict:
    seeds = sorted({r["seed"] for r in results})
    by = {(r["method"], r["seed"]): r for r in results}
    grid = np.linspace(0, budget, 101)
    mean_curves = {m: [float(np.nanmean([best_at(by[m, s]["curve"], x) for s in seeds]))
                       if any(np.isfinite(best_at(by[m, s]["curve"], x)) for s in seeds) else None
                       for x in grid] for m in METHODS}
    target: dict[str, object] = {}
    for method in ("TPE + median pruning", "TPE + Hyperband"):
        shares = [epochs_to_reach(by[method, s]["curve"], by["random search", s]["final_best"]) / budget
                  for s in seeds]
        random_mean_final = float(np.mean([by["random search", s]["final_best"] for s in seeds]))
        mean_curve = [(x, y) for x, y in zip(grid, mean_curves[method], strict=True)]
        target[method] = {"share_of_random_compute_per_seed": [x if np.isfinite(x) else None for x in shares],
                          "mean_curve_share": epochs_to_reach(mean_curve, random_mean_final) / budget,
                          "median_share": float(np.median(shares)),
                          "met_on_median_seed": bool(np.median(shares) <= 1 / 3),
                          "seeds_met": int(sum(x <= 1 / 3 for x in shares))}
    finals = {m: {"mean_final_best": float(np.mean([by[m, s]["final_best"] for s in seeds])),
                  "mean_trials": float(np.mean([by[m, s]["n_trials"] for s in seeds])),
                  "mean_pruned": float(np.mean([by[m, s]["n_pruned"] for s in seeds]))} for m in METHODS}
    return {"grid_epochs": grid.tolist(), "mean_curves": mean_curves, "target": target, "finals": finals}


def plot(summary: dict, results: list[dict], path: Path, budget: int) -> None:
    import plotly.graph_objects as go

    colours = dict(zip(METHODS, ("#d62728", "#9467bd", "#1f77b4", "#7f7f7f")))
    fig = go.Figure()
    for r in results:
        xs = [x for x, y in r["curve"] if y is not None]
        ys = [y for _, y in r["curve"] if y is not None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"color": colours[r["method"]], "width": 0.7},
                                 opacity=0.3, showlegend=False, line_shape="hv"))
    for method in METHODS:
        fig.add_trace(go.Scatter(x=summary["grid_epochs"], y=summary["mean_curves"][method], mode="lines",
                                 name=method, line={"color": colours[method], "width": 3}, line_shape="hv"))
    random_final = summary["finals"]["random search"]["mean_final_best"]
    fig.add_hline(y=random_final, line_dash="dot", line_color="#1f77b4",
                  annotation_text="random search, final best (mean)")
    fig.add_vline(x=budget / 3, line_dash="dash", line_color="black", annotation_text="1/3 of the compute")
    fig.update_layout(title=f"Best validation NDCG@10 vs compute ({len({r['seed'] for r in results})} seeds; "
                            "thin: single seeds, thick: mean)",
                      xaxis_title="cumulative training epochs", yaxis_title="best validation NDCG@10 so far",
                      template="plotly_white", width=900, height=560)
    fig.write_image(str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="example: python bench/hpo.py --seeds 5")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--n-trials", type=int, default=30, help="trials of random and grid search per seed")
    parser.add_argument("--max-epochs", type=int, default=8)
    parser.add_argument("--n-queries", type=int, default=300, help="synthetic queries (60%% train, 20%% val)")
    parser.add_argument("--processes", type=int, default=0, help="parallel searches (default: one per core)")
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--summarise-only", action="store_true",
                        help="re-read the runs from OUT/hpo.json, summarise and plot again")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    if args.summarise_only:
        stored = json.loads((args.out / "hpo.json").read_text())
        info, results = stored["machine"], stored["runs"]
        for key in ("seeds", "n_trials", "max_epochs", "n_queries"):
            setattr(args, key, stored["args"][key])
    else:
        info = machine()
        print_machine(info)
        kwargs = {"n_trials": args.n_trials, "max_epochs": args.max_epochs, "n_queries": args.n_queries}
        jobs = [(m, s, kwargs) for s in range(args.seeds) for m in METHODS]
        with multiprocessing.get_context("spawn").Pool(args.processes or None) as pool:
            results = []
            for r in pool.imap_unordered(_run, jobs):
                results.append(r)
                print(f"  {r['method']:<22} seed {r['seed']}: best {r['final_best']:.4f} after {r['epochs']} "
                      f"epochs, {r['n_trials']} trials ({r['n_pruned']} pruned), {r['wall_s']} s", flush=True)
    budget = args.n_trials * args.max_epochs
    summary = summarise(results, budget)
    print(f"\ncompute budget per search: {budget} epochs ({args.n_trials} trials x {args.max_epochs} "
          f"epochs); {args.seeds} seeds; wall {time.perf_counter() - started:.0f} s")
    print(f"{'method':<22} {'mean final best':>15} {'trials':>7} {'pruned':>7}")
    for method, f in summary["finals"].items():
        print(f"{method:<22} {f['mean_final_best']:>15.4f} {f['mean_trials']:>7.1f} {f['mean_pruned']:>7.1f}")
    for method, t in summary["target"].items():
        shares = ", ".join("never" if x is None else f"{x:.2f}"
                           for x in t["share_of_random_compute_per_seed"])
        print(f"{method}: reaches random search's final best with {shares} of its compute per seed; median "
              f"{t['median_share']:.2f} -> target (<= 1/3) {'met' if t['met_on_median_seed'] else 'not met'} "
              f"({t['seeds_met']}/{len(t['share_of_random_compute_per_seed'])} seeds); mean curves: "
              f"{t['mean_curve_share']:.2f}")
    command = "python bench/hpo.py " + " ".join(a for a in sys.argv[1:] if a != "--summarise-only")
    if args.summarise_only:
        command = json.loads((args.out / "hpo.json").read_text()).get("command", command)
    write_json(args.out / "hpo.json", {"machine": info, "command": command,
                                       "args": vars(args) | {"out": str(args.out)},
                                       "space": SPACE, "summary": summary, "runs": results})
    plot(summary, results, args.out / "hpo.png", budget)
    print(f"wrote {args.out / 'hpo.json'} and {args.out / 'hpo.png'}; load average {common.load_average()}")


if __name__ == "__main__":
    main()
