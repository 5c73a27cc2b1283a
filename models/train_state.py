"""What a fit carries from epoch to epoch and keeps in ``last.ckpt``: the validation record (history, best
epoch, best weights), the checkpoint written in the background after each epoch, and resuming from it
(model, optimiser, schedule, scaler, RNGs and record). The file format itself is ``models.checkpoint``."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from study.models.checkpoint import (
    LAST_KEYS,
    CheckpointWriter,
    cpu_state_dict,
    load_checkpoint,
    pack_weights,
    require,
    unpack_optimizer,
    unpack_state,
)
from study.models.config import TrainConfig
from study.models.optimisation import Optimisation
from study.models.ranker import RankingNet

logger = logging.getLogger("study.models.train")  # one logger for the loop and its checkpoints


@dataclass
class Record:
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


def _rng_state(rng: np.random.Generator, device: torch.device) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": rng.bit_generator.state}
    if device.type == "cuda":  # dropout on CUDA draws from the device's generator
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def resume(resume_from: Path | Mapping[str, Any] | None, model: RankingNet, opt: Optimisation, record: Record,
           rng: np.random.Generator, reference: dict, device: torch.device) -> int:
    """Load a ``last.ckpt`` (its path or its loaded dict) into the model, optimiser, schedule, RNGs and
    record; returns the next epoch (1 when there is nothing to resume from: no file at the path)."""
    ckpt = resume_from if isinstance(resume_from, Mapping) else (
        load_checkpoint(resume_from) if resume_from is not None and Path(resume_from).is_file() else None)
    if ckpt is None:
        return 1
    source = None if isinstance(resume_from, Mapping) else Path(resume_from)
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


def submit_checkpoint(writer: CheckpointWriter, path: Path, *, epoch: int, model: RankingNet,
                      opt: Optimisation, record: Record, rng: np.random.Generator, device: torch.device,
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
