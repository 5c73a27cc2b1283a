"""The training loop: AdamW with separate encoder/head learning rates, warmup + decay, clipping,
autocast on CUDA, per-epoch validation, early stopping and per-epoch checkpoints.

It knows nothing of Optuna: the caller passes ``on_epoch_end(epoch, metrics)``, which may raise to stop.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from study.data.batching import SplitTensors, inference_batches, plan_epoch, rows_batch, training_batches
from study.models.checkpoint import (
    LAST_KEYS,
    CheckpointWriter,
    cpu_state_dict,
    load_checkpoint,
    pack_weights,
    pretrained_reference,
    require,
    unpack_optimizer,
    unpack_state,
)
from study.models.config import TrainConfig
from study.models.device import autocast, peak_memory_mb, resolve_precision
from study.models.losses import get_loss
from study.models.metrics import evaluate_ranking
from study.models.ranker import RankingNet

logger = logging.getLogger(__name__)

# Scoring on the CPU: batches beyond ~4k tokens spill the activations out of cache and score ~20% slower
# (MiniLM, 2 cores: 64-128 rows of 30 tokens beat 512 rows). GPUs keep ``eval_batch_size`` as given.
CPU_TOKENS_PER_BATCH = 4096


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


def lr_lambda(schedule: str, warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(warmup_steps, 1)
        if schedule == "constant":
            return 1.0
        progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
        return max(0.0, 1.0 - progress)

    return f


@torch.inference_mode()
def predict(model: RankingNet, split: SplitTensors, *, batch_size: int, dtype: torch.dtype) -> np.ndarray:
    """Scores for every row of the split, in the split's row order.

    Rows are scored in length order (little padding); the order and lengths go to the device once and
    the scores come back in one copy at the end.
    """
    model.eval()
    device = split.labels.device
    if device.type == "cpu" and split.input_ids is not None and split.n_pairs:
        batch_size = min(batch_size, max(CPU_TOKENS_PER_BATCH // max(int(split.lengths.max()), 1), 16))
    chunks = inference_batches(split, batch_size=batch_size)
    order = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)
    order_t = torch.from_numpy(order.astype(np.int64)).to(device)
    lengths_t = torch.from_numpy(split.lengths[order].astype(np.int64)).to(device)
    outs: list[torch.Tensor] = []
    start = 0
    for rows in chunks:
        end = start + len(rows)
        width = int(split.lengths[rows].max()) if split.input_ids is not None else None
        with autocast(device, dtype):
            out = model(**rows_batch(split, order_t[start:end], width=width, lengths=lengths_t[start:end]))
        outs.append(out.float())
        start = end
    scores = torch.empty(split.n_pairs, dtype=torch.float32, device=device)
    if outs:
        scores[order_t] = torch.cat(outs)
    return scores.cpu().numpy()


def evaluate(
    model: RankingNet, split: SplitTensors, *, config: TrainConfig, dtype: torch.dtype,
    score_threshold: float | None = None,
) -> tuple[dict[str, float], np.ndarray]:
    """Scores and metrics of ``split``. The classification metrics' score threshold is fitted on the split
    (validation) unless given (test: the threshold fitted on validation)."""
    scores = predict(model, split, batch_size=config.eval_batch_size, dtype=dtype)
    metrics = evaluate_ranking(
        scores, split.labels_np, split.row_query, k=config.ndcg_k,
        relevance_threshold=config.relevance_threshold, score_threshold=score_threshold,
    )
    return metrics, scores


def _rng_state(rng: np.random.Generator, device: torch.device) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": rng.bit_generator.state}
    if device.type == "cuda":  # dropout on CUDA draws from the device's generator
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _embeddings_without_decay(model: RankingNet, groups: list[dict]) -> list[dict]:
    """Embedding tables get no weight decay (as in minGPT): the rows of tokens that training never sees then
    stay exactly pretrained, and checkpoints need not store them (``models.checkpoint``)."""
    tables = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    out: list[dict] = []
    for group in groups:
        moved = [p for p in group["params"] if id(p) in tables and group["weight_decay"]]
        kept = [p for p in group["params"] if not (id(p) in tables and group["weight_decay"])]
        out += [{**group, "params": kept}] if kept else []
        out += [{**group, "params": moved, "weight_decay": 0.0}] if moved else []
    return out


@dataclass
class _Optimisation:
    """What one fit steps with: AdamW over the model's groups, the LR schedule, the fp16 grad scaler, the
    loss."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    loss_fn: Callable[..., torch.Tensor]
    max_label: float

    @classmethod
    def build(cls, model: RankingNet, train: SplitTensors, config: TrainConfig, device: torch.device,
              dtype: torch.dtype) -> _Optimisation:
        groups = _embeddings_without_decay(model, model.parameter_groups(
            encoder_lr=config.encoder_lr, head_lr=config.head_lr, weight_decay=config.weight_decay,
            layerwise_lr_decay=config.layerwise_lr_decay, freeze_layers=config.freeze_layers,
        ))
        # Fused AdamW: one kernel over all parameters; on the CPU it is ~6x faster than the default for-each.
        optimizer = torch.optim.AdamW(groups, fused=device.type in ("cuda", "cpu"))
        steps_per_epoch = len(training_batches(train, batch_size=config.batch_size,
                                               rng=np.random.default_rng(0)))
        total_steps = steps_per_epoch * config.epochs
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lr_lambda(config.schedule, int(config.warmup_ratio * total_steps), total_steps))
        return cls(optimizer, scheduler, torch.amp.GradScaler(device.type, enabled=dtype == torch.float16),
                   get_loss(config.loss), max(float(train.labels_np.max(initial=0.0)), 1.0))

    def step(self, loss: torch.Tensor, model: RankingNet, grad_clip: float) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()


@dataclass
class _Record:
    """The validation history and the best epoch so far (what ``last.ckpt`` keeps besides the weights)."""

    key: str  # the selection metric
    best_state: dict[str, torch.Tensor]
    history: list[dict[str, float]] = field(default_factory=list)
    best_value: float = -math.inf
    best_epoch: int = 0
    best_metrics: dict[str, float] = field(default_factory=dict)
    best_val_scores: np.ndarray | None = None

    def add(self, epoch: int, metrics: dict[str, float], scores: np.ndarray, model: RankingNet,
            **extra: float) -> None:
        self.history.append({"epoch": float(epoch), **extra, **metrics})
        if metrics[self.key] > self.best_value:
            self.best_value, self.best_epoch, self.best_metrics = metrics[self.key], epoch, dict(metrics)
            self.best_val_scores = scores
            # epoch 0 is the model as built: its state is already best_state
            self.best_state = cpu_state_dict(model) if epoch else self.best_state


@dataclass
class _Throughput:
    pairs: int = 0
    tokens: int = 0
    seconds: float = 0.0


def _resume(ckpt: Mapping[str, Any], source: Path | None, model: RankingNet, opt: _Optimisation,
            record: _Record, rng: np.random.Generator, reference: dict, device: torch.device) -> int:
    """Load a ``last.ckpt`` into the model, optimiser, schedule, RNGs and record; returns the next epoch."""
    require(ckpt, LAST_KEYS, source)
    model.load_state_dict(unpack_state(ckpt["model"], reference, path=source))
    opt.optimizer.load_state_dict(unpack_optimizer(ckpt["optimizer"]))
    opt.scheduler.load_state_dict(ckpt["scheduler"])
    opt.scaler.load_state_dict(ckpt["scaler"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    if device.type == "cuda" and "cuda" in ckpt["rng"]:
        torch.cuda.set_rng_state(ckpt["rng"]["cuda"], device)
    rng.bit_generator.state = ckpt["rng"]["numpy"]
    record.history, record.best_value = list(ckpt["history"]), float(ckpt["best_value"])
    record.best_epoch, record.best_metrics = int(ckpt["best_epoch"]), dict(ckpt["best_metrics"])
    # None: the best epoch was the checkpoint's own (its model weights)
    record.best_state = (cpu_state_dict(model) if ckpt["best_state"] is None
                         else unpack_state(ckpt["best_state"], reference, path=source))
    record.best_val_scores = None
    start_epoch = int(ckpt["epoch"]) + 1
    logger.info("resumed from %s at epoch %d", source or "a checkpoint", start_epoch)
    return start_epoch


def _train_epoch(forward: Callable[..., torch.Tensor], model: RankingNet, train: SplitTensors,
                 opt: _Optimisation, config: TrainConfig, rng: np.random.Generator, seen: _Throughput,
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


def _submit_checkpoint(writer: CheckpointWriter, path: Path, *, epoch: int, model: RankingNet,
                       opt: _Optimisation, record: _Record, rng: np.random.Generator, device: torch.device,
                       config: TrainConfig, reference: dict, after: Callable[[Path], None] | None) -> None:
    """``last.ckpt``, written in the background while the next epoch trains."""
    state = {"model": model.state_dict(), "optimizer": opt.optimizer.state_dict(),
             "scheduler": opt.scheduler.state_dict(), "scaler": opt.scaler.state_dict(),
             "rng": _rng_state(rng, device)}
    keep = {  # best_state is replaced, never updated in place: no copy needed
        "kind": "last", "epoch": epoch, "history": list(record.history), "best_value": record.best_value,
        "best_epoch": record.best_epoch, "best_metrics": dict(record.best_metrics),
        "best_state": record.best_state if record.best_epoch != epoch else None,  # else: "model" holds it
        "train_config": asdict(config),
    }
    writer.submit(state, path, keep=keep, encode=lambda s: pack_weights(s, reference), after=after)


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
    opt = _Optimisation.build(model, train, config, device, dtype)
    record = _Record(key=config.selection_metric, best_state=cpu_state_dict(model))
    start_epoch = 1
    ckpt = resume_from if isinstance(resume_from, Mapping) else (
        load_checkpoint(resume_from) if resume_from is not None and Path(resume_from).is_file() else None)
    if ckpt is not None:
        source = None if isinstance(resume_from, Mapping) else Path(resume_from)
        start_epoch = _resume(ckpt, source, model, opt, record, rng, reference, device)
    resumed_from_epoch = start_epoch - 1
    # Compiled once per shape family (dynamic shapes: batch and width vary); evaluation stays eager.
    forward = torch.compile(model, dynamic=True) if config.compile else model
    seen = _Throughput()
    epoch = start_epoch - 1
    writer = CheckpointWriter()
    if start_epoch == 1 and config.eval_at_start:
        # Epoch 0: the model before any update. Models that start at the pretrained encoder's zero-shot
        # quality (two-tower, prior) keep it as their best unless training beats it.
        metrics, scores = evaluate(model, val, config=config, dtype=dtype)
        record.add(0, metrics, scores, model)
        logger.info("epoch 0 (before training): val %s %.4f", record.key, metrics[record.key])
        if on_epoch_end is not None:
            on_epoch_end(0, metrics)
    try:
        for epoch in range(start_epoch, config.epochs + 1):
            train_loss = _train_epoch(forward, model, train, opt, config, rng, seen, on_step, dtype)
            if not math.isfinite(train_loss):
                raise NonFiniteLossError(f"training loss became {train_loss} in epoch {epoch}")
            metrics, scores = evaluate(model, val, config=config, dtype=dtype)
            record.add(epoch, metrics, scores, model, train_loss=train_loss)
            logger.info("epoch %d: loss %.4f, val %s %.4f (best %.4f @ %d)", epoch, train_loss, record.key,
                        metrics[record.key], record.best_value, record.best_epoch)
            if checkpoint_path is not None:
                _submit_checkpoint(writer, checkpoint_path, epoch=epoch, model=model, opt=opt, record=record,
                                   rng=rng, device=device, config=config, reference=reference,
                                   after=on_checkpoint)
            if on_epoch_end is not None:
                on_epoch_end(epoch, metrics)
            if config.patience and epoch - record.best_epoch >= config.patience:
                logger.info("early stop at epoch %d: no improvement for %d epochs", epoch, config.patience)
                break
    except BaseException:  # pruned, Ctrl-C, NaN: the newest checkpoint is still completed before it surfaces
        try:
            writer.wait()
        except Exception:
            logger.exception("writing the checkpoint %s failed", checkpoint_path)
        raise
    writer.wait()  # on disk before fit returns
    return FitResult(
        best_epoch=record.best_epoch,
        best_metrics=record.best_metrics,
        history=record.history,
        epochs_run=epoch,
        wall_time_s=time.perf_counter() - started,
        train_time_s=seen.seconds,
        pairs_per_second=seen.pairs / seen.seconds if seen.seconds else 0.0,
        tokens_per_second=seen.tokens / seen.seconds if seen.seconds else 0.0,
        peak_memory_mb=peak_memory_mb(device),
        best_state=record.best_state,
        resumed_from_epoch=resumed_from_epoch if epoch - resumed_from_epoch >= 0 else 0,
        best_val_scores=record.best_val_scores,
    )
