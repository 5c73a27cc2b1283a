"""What one fit steps with: AdamW over the model's parameter groups (separate encoder/head learning rates,
no decay on embedding tables), the warmup + decay schedule, the fp16 grad scaler, clipping and the loss."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from study.data.batching import SplitTensors, training_batches
from study.models.config import TrainConfig
from study.models.losses import get_loss
from study.models.ranker import RankingNet


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


def embeddings_without_decay(model: RankingNet, groups: list[dict]) -> list[dict]:
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
class Optimisation:
    """AdamW over the model's groups, the LR schedule, the fp16 grad scaler, the loss."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    loss_fn: Callable[..., torch.Tensor]
    max_label: float

    @classmethod
    def build(cls, model: RankingNet, train: SplitTensors, config: TrainConfig, device: torch.device,
              dtype: torch.dtype) -> Optimisation:
        groups = embeddings_without_decay(model, model.parameter_groups(
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
