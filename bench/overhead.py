"""What a trial spends outside its training steps, as a share of a trial with one minute of training.

The trial is sized from the measured training rate: 60 s of training steps over ``epochs`` epochs, a
validation split a third of the training split (the default 60/20/20 split). Per trial: building the model
from the worker's cached weights, tokenisation (nothing after the worker's first trial: the workspace
keeps device tensors), one evaluation and one ``last.ckpt`` per epoch (written by a background thread:
counted are the copy on the training path plus the training steps it slows down while it writes), the
best-state copy, ``best.ckpt``, and the Optuna storage calls the objective makes (SQLite). Per worker, once:
process start (imports), the first read of the weights and uncached tokenisation.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import optuna
import torch
from common import ROOT, percent, shop_pairs
from study.data.batching import build_split_tensors, plan_epoch, training_batches
from study.data.schema import product_text
from study.data.tokenize import _MEMORY, tokenize_pairs
from study.models import encoder as encoder_module
from study.models.checkpoint import CheckpointWriter, cpu_state_dict, save_checkpoint
from study.models.device import resolve_precision
from study.models.losses import get_loss
from study.models.ranker import RankerConfig, RankingNet
from study.models.train import TrainConfig, evaluate

from study.runtime.attrs import set_trial_attr

TRIAL_SECONDS = 60.0


def _timed(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _process_start() -> float:
    code = "import torch, transformers, optuna; import models.ranker, models.train, study.objective"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    return time.perf_counter() - t0


def _storage_calls(epochs: int) -> float:
    """The objective's storage traffic for one trial on SQLite: ask, attributes, per-epoch report + prune."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        storage = optuna.storages.RDBStorage(f"sqlite:///{tmp}/bench.db",
                                             engine_kwargs={"connect_args": {"timeout": 30}})
        study = optuna.create_study(storage=storage, direction="maximize",
                                    pruner=optuna.pruners.MedianPruner(n_startup_trials=0))
        for i in range(3):  # history for the pruner to compare against
            study.enqueue_trial({"x": 0.1 * i})
        durations = []
        for i in range(4):
            t0 = time.perf_counter()
            trial = study.ask()
            trial.suggest_float("x", 0.0, 1.0)
            for key in ("host", "pid", "device", "checkpoint", "config"):
                trial.set_user_attr(key, {"value": i})
            for epoch in range(1, epochs + 1):
                trial.report(0.5 + 0.01 * epoch, epoch)
                set_trial_attr(trial, "curve", [{"epoch": e} for e in range(epoch)])
                trial.should_prune()
            for key in ("val_metrics", "curve", "best_epoch", "epochs_run", "wall_time_s", "pairs_per_second",
                        "tokens_per_second", "peak_gpu_memory_mb"):
                trial.set_user_attr(key, 1.0)
            study.tell(trial, 0.5)
            durations.append(time.perf_counter() - t0)
        return statistics.median(durations[1:])


def _background_checkpoint(model, optimizer, best_state, split, config: TrainConfig, path: Path,
                           repeats: int = 3) -> dict[str, float]:
    """``last.ckpt`` as ``fit`` writes it: ``CheckpointWriter.submit`` copies the state on the training path
    and a thread writes it. Its cost to a trial: the submit, plus the extra time of the training steps that
    run while the thread writes (measured against the same steps with no write in flight)."""
    loss_fn = get_loss(config.loss)
    plan = plan_epoch(split,
                      training_batches(split, batch_size=config.batch_size, rng=np.random.default_rng(0)))
    model.train()

    def step(i: int) -> None:
        batch = plan.batch(i % len(plan))
        scores = model(**batch.model_inputs())
        idx, mask = batch.list_index.clamp_min(0), batch.list_index >= 0
        loss = loss_fn(scores.float()[idx], batch.labels[idx], mask, max_label=3.0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for i in range(2):
        step(i)  # warm-up
    writer = CheckpointWriter()
    submits, extras = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        writer.submit({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, path,
                      keep={"epoch": 1, "best_state": best_state, "train_config": asdict(config)})
        submits.append(time.perf_counter() - t0)
        t0, n = time.perf_counter(), 0
        while writer._thread is not None and writer._thread.is_alive():
            step(n)
            n += 1
        during = time.perf_counter() - t0
        writer.wait()
        t0 = time.perf_counter()
        for i in range(max(n, 1)):
            step(i)
        alone = (time.perf_counter() - t0) * n / max(n, 1)
        extras.append(max(during - alone, 0.0))
    model.eval()
    return {"checkpoint_submit_s": statistics.median(submits),
            "checkpoint_contention_s": statistics.median(extras)}


def trial_overhead(pairs, scaler, *, model_config: RankerConfig, config: TrainConfig,
                   device: torch.device, train_pairs_per_s: float, model_dir: str) -> dict[str, float]:
    epochs = TrainConfig().epochs
    train_pairs = train_pairs_per_s * TRIAL_SECONDS / epochs
    val_pairs = train_pairs / 3.0
    n_val_queries = int(min(max(val_pairs / 10.0, 5), 5000))
    n_train_queries = int(min(max(train_pairs / 10.0, 5), 15000))
    out: dict[str, float] = {"epochs": epochs, "train_pairs_per_epoch": train_pairs, "val_pairs": val_pairs}

    out["process_start_s"] = _process_start()
    encoder_module._STATE_CACHE.clear()
    t0 = time.perf_counter()
    RankingNet(model_config, n_features=scaler.n_outputs_)
    out["model_build_cold_s"] = time.perf_counter() - t0
    out["model_build_s"] = _timed(lambda: RankingNet(model_config, n_features=scaler.n_outputs_).to(device))

    trial_data = shop_pairs(n_queries=n_train_queries + n_val_queries, items_per_query=10, seed=1)
    queries = trial_data.frame["query"].astype(str).tolist()
    texts = product_text(trial_data.frame, trial_data.text_fields)
    with tempfile.TemporaryDirectory() as cache:
        def tokenise() -> None:
            tokenize_pairs(queries, texts, model_dir=model_dir, max_length=model_config.max_length,
                           cache_dir=Path(cache))

        t0 = time.perf_counter()
        tokenise()
        out["tokenise_uncached_s"] = time.perf_counter() - t0
        _MEMORY.clear()
        t0 = time.perf_counter()
        tokenise()
        out["tokenise_disk_cached_s"] = time.perf_counter() - t0
        out["tokenise_memory_cached_s"] = _timed(tokenise)
    out["tokenise_per_trial_s"] = 0.0  # Workspace.tensors keeps the device tensors for every later trial

    val_part = shop_pairs(n_queries=n_val_queries, items_per_query=10, seed=2)
    val = build_split_tensors(val_part, scaler.transform(val_part.frame), device=device, model_dir=model_dir,
                              max_length=model_config.max_length)
    model = RankingNet(model_config, n_features=scaler.n_outputs_).to(device)
    dtype = resolve_precision(config.precision, device)
    evaluate(model, val, config=config, dtype=dtype)  # warm-up
    out["evaluate_per_epoch_s"] = _timed(lambda: evaluate(model, val, config=config, dtype=dtype))

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    with tempfile.TemporaryDirectory() as tmp:
        best_state = cpu_state_dict(model)
        out["best_state_copy_s"] = _timed(lambda: cpu_state_dict(model))

        def save_last() -> None:
            save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 1,
                             "best_state": best_state, "train_config": asdict(config)},
                            Path(tmp) / "last.ckpt")

        out["checkpoint_last_sync_s"] = _timed(save_last)  # what a synchronous write would cost
        out.update(_background_checkpoint(model, optimizer, best_state, val, config, Path(tmp) / "last.ckpt"))
        out["checkpoint_last_s"] = out["checkpoint_submit_s"] + out["checkpoint_contention_s"]
        out["checkpoint_best_s"] = _timed(lambda: save_checkpoint({"model": best_state},
                                                                  Path(tmp) / "best.ckpt"))
    out["storage_per_trial_s"] = _storage_calls(epochs)
    per_epoch = out["evaluate_per_epoch_s"] + out["checkpoint_last_s"] + out["best_state_copy_s"]
    out["per_trial_s"] = out["model_build_s"] + epochs * per_epoch + out["checkpoint_best_s"] + out[
        "storage_per_trial_s"]
    out["per_trial_without_eval_s"] = out["per_trial_s"] - epochs * out["evaluate_per_epoch_s"]
    return out


def print_overhead(o: dict[str, float]) -> None:
    e = int(o["epochs"])
    print(f"\nper-trial overhead, trial of {TRIAL_SECONDS:.0f} s of training steps over {e} epochs "
          f"({o['train_pairs_per_epoch']:.0f} training pairs per epoch, {o['val_pairs']:.0f} validation "
          "pairs):")
    rows = [
        ("model build from cached weights", o["model_build_s"], 1),
        ("tokenisation (workspace-cached)", o["tokenise_per_trial_s"], 1),
        ("evaluation (inference mode)", o["evaluate_per_epoch_s"], e),
        ("last.ckpt, background write", o["checkpoint_last_s"], e),
        ("best-state copy", o["best_state_copy_s"], e),
        ("best.ckpt save", o["checkpoint_best_s"], 1),
        ("Optuna storage calls (SQLite)", o["storage_per_trial_s"], 1),
    ]
    for name, seconds, times in rows:
        total = seconds * times
        print(f"  {name:<34} {seconds:8.3f} s x {times}  = {total:7.2f} s  "
              f"{percent(total / TRIAL_SECONDS):>6}")
    print(f"  {'total per trial':<34} {'':>15} {o['per_trial_s']:7.2f} s  "
          f"{percent(o['per_trial_s'] / TRIAL_SECONDS):>6}  (without evaluation "
          f"{percent(o['per_trial_without_eval_s'] / TRIAL_SECONDS)})")
    print(f"  last.ckpt: copy on the training path {o['checkpoint_submit_s']:.3f} s + steps slowed "
          f"while it is written {o['checkpoint_contention_s']:.3f} s (a synchronous write: "
          f"{o['checkpoint_last_sync_s']:.3f} s)")
    print(f"  once per worker: process start {o['process_start_s']:.1f} s, first weight read "
          f"{o['model_build_cold_s']:.2f} s, tokenisation of "
          f"{o['train_pairs_per_epoch'] + o['val_pairs']:.0f} pairs uncached "
          f"{o['tokenise_uncached_s']:.2f} s / disk-cached {o['tokenise_disk_cached_s']:.3f} s / "
          f"memory-cached {o['tokenise_memory_cached_s']:.3f} s")
