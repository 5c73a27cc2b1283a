"""The training loop: per-epoch validation, early stopping and per-epoch checkpoints, read top to bottom in
``fit``. What it steps with (AdamW, schedule, scaler, loss) is ``models.optimisation``; what it carries
between epochs and resumes from is ``models.train_state``; scoring a split is ``models.inference``.

It knows nothing of Optuna: the caller passes ``on_epoch_end(epoch, metrics)``, which may raise to stop.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from study.data.batching import SplitTensors, plan_epoch, training_batches
from study.models.checkpoint import CheckpointWriter, cpu_state_dict, pretrained_reference
from study.models.config import TrainConfig
from study.models.device import autocast, peak_memory_mb, resolve_precision
from study.models.inference import evaluate, predict
from study.models.optimisation import Optimisation
from study.models.ranker import RankingNet
from study.models.train_state import Record, resume, submit_checkpoint

__all__ = ["FitResult", "NonFiniteLossError", "TrainConfig", "evaluate", "fit", "predict"]

logger = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite (diverged learning rate, bad data)."""


@dataclass
class FitResult:
    best_epoch: int
    best_metrics: dict[str, float]
    history: list[dict[str, float]]
    epochs_run: int
    wall_time_s: float
    train_time_s: float
    pairs_per_second: float
    tokens_per_second: float
    peak_memory_mb: float
    best_state: dict[str, torch.Tensor] = field(repr=False)
    resumed_from_epoch: int = 0
    # the validation scores of the best epoch, as computed for its metrics (None when the best epoch was
    # before a resume): the per-query chart reuses them instead of scoring the split again
    best_val_scores: np.ndarray | None = field(default=None, repr=False)


@dataclass
class _Throughput:
    pairs: int = 0
    tokens: int = 0
    seconds: float = 0.0


def _train_epoch(forward: Callable[..., torch.Tensor], model: RankingNet, train: SplitTensors,
                 opt: Optimisation, config: TrainConfig, rng: np.random.Generator, seen: _Throughput,
                 on_step: Callable[[int, int], None] | None, dtype: torch.dtype) -> float:
    """One pass over the training queries in random, length-bucketed batches; returns the mean loss."""
    device = train.labels.device
    model.train()
    t0 = time.perf_counter()
    loss_sum = torch.zeros((), device=device)  # summed on the device: no host sync per step
    batches = training_batches(train, batch_size=config.batch_size, rng=rng, bucket=config.bucket_by_length)
    plan = plan_epoch(train, batches)  # index tensors on the device once per epoch
    for step in range(len(plan)):
        batch = plan.batch(step)
        with autocast(device, dtype):
            scores = forward(**batch.model_inputs())  # (B,)
        mask = batch.list_index >= 0  # (Q, N)
        idx = batch.list_index.clamp_min(0)
        loss = opt.loss_fn(scores.float()[idx], batch.labels[idx], mask, max_label=opt.max_label)
        opt.step(loss, model, config.grad_clip)
        loss_sum += loss.detach()
        seen.pairs += batch.labels.shape[0]
        seen.tokens += batch.real_tokens
        if on_step is not None:
            on_step(step + 1, len(batches))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seen.seconds += time.perf_counter() - t0
    return float(loss_sum) / max(len(batches), 1)


def _validate(model: RankingNet, val: SplitTensors, config: TrainConfig, dtype: torch.dtype, record: Record,
              epoch: int, **extra: float) -> dict[str, float]:
    """Score ``val``, add the epoch to the record and log it; returns the epoch's metrics."""
    metrics, scores = evaluate(model, val, config=config, dtype=dtype)
    record.add(epoch, metrics, scores, model, **extra)
    if epoch == 0:
        logger.info("epoch 0 (before training): val %s %.4f", record.key, metrics[record.key])
    else:
        logger.info("epoch %d: loss %.4f, val %s %.4f (best %.4f @ %d)", epoch, extra["train_loss"],
                    record.key, metrics[record.key], record.best_value, record.best_epoch)
    return metrics


def _finish_writing(writer: CheckpointWriter, path: Path | None) -> None:
    """Wait for the newest checkpoint while another error surfaces: its own failure is one warning line, not
    raised and without a traceback (the surfacing error is what the user must read; its folder may be gone
    with a study deleted under this process)."""
    try:
        writer.wait()
    except Exception as exc:  # noqa: BLE001 - the surfacing error is raised; this one is only said
        logger.warning("writing the checkpoint %s failed: %s: %s", path, type(exc).__name__, exc)


def _result(record: Record, seen: _Throughput, *, epochs_run: int, resumed_from_epoch: int, started: float,
            device: torch.device) -> FitResult:
    return FitResult(
        best_epoch=record.best_epoch, best_metrics=record.best_metrics, history=record.history,
        epochs_run=epochs_run, wall_time_s=time.perf_counter() - started, train_time_s=seen.seconds,
        pairs_per_second=seen.pairs / seen.seconds if seen.seconds else 0.0,
        tokens_per_second=seen.tokens / seen.seconds if seen.seconds else 0.0,
        peak_memory_mb=peak_memory_mb(device), best_state=record.best_state,
        resumed_from_epoch=resumed_from_epoch if epochs_run - resumed_from_epoch >= 0 else 0,
        best_val_scores=record.best_val_scores,
    )


def fit(
    model: RankingNet,
    train: SplitTensors,
    val: SplitTensors,
    config: TrainConfig,
    *,
    on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
    on_step: Callable[[int, int], None] | None = None,
    checkpoint_path: Path | None = None,
    resume_from: Path | Mapping[str, Any] | None = None,
    on_checkpoint: Callable[[Path], None] | None = None,
) -> FitResult:
    """Train ``model`` on ``train``, validate on ``val`` after every epoch; returns the best epoch's state.

    ``model`` is freshly built (its encoder pretrained): checkpoints store the weights against those
    pretrained ones. ``resume_from`` is a ``last.ckpt`` path or its loaded dict; ``on_checkpoint(path)`` runs
    after each epoch checkpoint is safely on disk (in the writer's thread).
    """
    started = time.perf_counter()
    device = train.labels.device
    dtype = resolve_precision(config.precision, device)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    reference = pretrained_reference(model)  # before any update: what a rebuilt network starts from
    model.to(device)
    opt = Optimisation.build(model, train, config, device, dtype)
    record = Record(key=config.selection_metric, best_state=cpu_state_dict(model))
    start_epoch = resume(resume_from, model, opt, record, rng, reference, device)
    # Compiled once per shape family (dynamic shapes: batch and width vary); evaluation stays eager.
    forward = torch.compile(model, dynamic=True) if config.compile else model
    seen, writer, epoch = _Throughput(), CheckpointWriter(), start_epoch - 1
    if start_epoch == 1 and config.eval_at_start:
        # Epoch 0: the model before any update. Models that start at the pretrained encoder's zero-shot
        # quality (two-tower, prior) keep it as their best unless training beats it.
        metrics = _validate(model, val, config, dtype, record, 0)
        if on_epoch_end is not None:
            on_epoch_end(0, metrics)
    try:
        for epoch in range(start_epoch, config.epochs + 1):
            train_loss = _train_epoch(forward, model, train, opt, config, rng, seen, on_step, dtype)
            if not math.isfinite(train_loss):
                raise NonFiniteLossError(f"training loss became {train_loss} in epoch {epoch}")
            metrics = _validate(model, val, config, dtype, record, epoch, train_loss=train_loss)
            if checkpoint_path is not None:
                submit_checkpoint(writer, checkpoint_path, epoch=epoch, model=model, opt=opt, record=record,
                                  rng=rng, device=device, config=config, reference=reference,
                                  after=on_checkpoint)
            if on_epoch_end is not None:
                on_epoch_end(epoch, metrics)
            if config.patience and epoch - record.best_epoch >= config.patience:
                logger.info("early stop at epoch %d: no improvement for %d epochs", epoch, config.patience)
                break
    except BaseException:  # pruned, Ctrl-C, NaN: the newest checkpoint is still completed before it surfaces
        _finish_writing(writer, checkpoint_path)
        raise
    writer.wait()  # on disk before fit returns
    return _result(record, seen, epochs_run=epoch, resumed_from_epoch=start_epoch - 1, started=started,
                   device=device)
