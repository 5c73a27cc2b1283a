"""The objective: one trial = suggest a config, fine-tune, report validation NDCG every epoch, record
everything the dashboard should show, keep the best checkpoint.

Failure handling: a NaN/inf loss prunes the trial with a reason; CUDA out-of-memory fails it with reason
``out_of_memory`` after releasing memory (the study goes on); a retried trial resumes from the newest intact
checkpoint of the chain of trials it retries (``runtime/checkpoints.py``), or from epoch 1 when none is left.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import torch

from study.config import Config
from study.dashboard.artifacts import log_trial_artifacts
from study.models.config import selectable_metrics
from study.models.device import describe
from study.models.ranker import RankingNet
from study.models.train import FitResult, NonFiniteLossError, fit, predict
from study.runtime.attrs import set_trial_attr
from study.runtime.checkpoints import (
    BEST,
    LAST,
    check_trial_dir,
    drop_links,
    find_resume,
    retry_chain,
    save_best,
    trial_dir,
)
from study.space import suggest
from study.storage.database import retrying
from study.storage.identity import generation
from study.workspace import Workspace

logger = logging.getLogger(__name__)


def _val_metrics(metrics: dict[str, float], config: Config) -> dict[str, Any]:
    """The best epoch's validation metrics: the main ones as a user attribute (what the dashboard shows), all
    of them (the classification threshold, counts) as a system attribute."""
    rounded = {k: round(float(v), 6) for k, v in metrics.items() if isinstance(v, (int, float))}
    main = [config.study.metric, *selectable_metrics(config.train.ndcg_k)]
    return {"val_metrics": {k: rounded[k] for k in dict.fromkeys(main) if k in rounded},
            "val_metrics_all": rounded}


def _latency_ms_per_1000(model: RankingNet, workspace: Workspace, config: Config) -> float:
    split = workspace.tensors("val", config.model)
    t0 = time.perf_counter()
    predict(model, split, batch_size=config.train.eval_batch_size, dtype=torch.float32
            if workspace.device.type == "cpu" else torch.bfloat16)
    return 1000.0 * (time.perf_counter() - t0) / max(split.n_pairs, 1) * 1000.0


class _EpochReporter:
    """A trial's per-epoch writes: the curve attribute, ``report`` and the pruner's verdict, each through the
    storage retries (a full or locked database ends the run with one paragraph, exit 2, and the trial is
    recovered on the next start)."""

    def __init__(self, trial: optuna.trial.Trial, config: Config,
                 on_epoch: Callable[[int, int, dict[str, float]], None] | None) -> None:
        self.trial, self.config, self.on_epoch = trial, config, on_epoch
        self.metric = config.study.metric
        self.curve: list[dict[str, float]] = []
        # Optuna reports and prunes single-objective trials only: with a second objective the curve attribute
        # carries the per-epoch values and every trial runs to its end
        self.single = len(trial.study.directions) == 1

    def stored(self, action: Callable[[], Any], what: str) -> Any:
        return retrying(action, url=self.config.storage.url, what=f"{what} (trial {self.trial.number})",
                        attempts=self.config.storage.connect_attempts)

    def record(self, key: str, value: Any) -> None:
        self.stored(lambda: set_trial_attr(self.trial, key, value), f"record {key}")

    def __call__(self, epoch: int, metrics: dict[str, float]) -> None:  # fit's on_epoch_end
        trial, metric = self.trial, self.metric
        self.curve.append({"epoch": epoch, **{k: round(float(v), 6) for k, v in metrics.items()}})
        if self.single:
            self.stored(lambda: trial.report(float(metrics[metric]), epoch), "report the epoch's value")
        self.record("curve", [{"epoch": c["epoch"], metric: c[metric]} for c in self.curve])
        if self.on_epoch is not None:
            self.on_epoch(trial.number, epoch, metrics)
        # epoch 0 is the untrained start: reported, never pruned
        if self.single and epoch > 0 and self.stored(trial.should_prune, "ask the pruner"):
            for key, value in _val_metrics(max(self.curve, key=lambda c: c[metric]), self.config).items():
                self.record(key, value)
            self.record("epochs_run", epoch)
            raise optuna.TrialPruned(f"{metric} {metrics[metric]:.4f} at epoch {epoch} below the median")


class Objective:
    def __init__(
        self,
        config: Config,
        workspace: Workspace,
        *,
        on_trial_start: Callable[[optuna.trial.Trial], None] | None = None,
        on_step: Callable[[int, int], None] | None = None,
        on_epoch: Callable[[int, int, dict[str, float]], None] | None = None,
    ) -> None:
        self.config = config
        self.workspace = workspace
        self.on_trial_start = on_trial_start
        self.on_step = on_step
        self.on_epoch = on_epoch

    def __call__(self, trial: optuna.trial.Trial) -> float | tuple[float, float]:
        fixed = self.config.model
        params = suggest(trial, self.config.search,
                         fixed={"model.architecture": fixed.architecture, "model.variant": fixed.variant})
        config = self.config.with_params(params)
        folder = trial_dir(config, trial.number, generation(trial.study))
        check_trial_dir(folder)  # a read-only runs_dir is found before an epoch is spent
        set_trial_attr(trial, "host", socket.gethostname())
        set_trial_attr(trial, "pid", os.getpid())
        trial.set_user_attr("device", describe(self.workspace.device))
        set_trial_attr(trial, "checkpoint", str(folder / BEST))
        set_trial_attr(trial, "config", config.to_dict())
        if self.on_trial_start is not None:
            self.on_trial_start(trial)
        reporter = _EpochReporter(trial, config, self.on_epoch)
        started = time.perf_counter()
        model, result = self._train(trial, config, folder, reporter)
        return self._finish(trial, config, folder, model, result, reporter, started)

    def _train(self, trial: optuna.trial.Trial, config: Config, folder: Path,
               reporter: _EpochReporter) -> tuple[RankingNet, FitResult]:
        """Build the model and fit it, continuing the retried chain's newest checkpoint; failures become
        the trial's reason (interrupted, non-finite loss, out of memory)."""
        ws = self.workspace
        chain = retry_chain(trial)
        model = None
        try:
            torch.manual_seed(config.train.seed)  # the same parameters give the same initial head
            model = RankingNet(config.model, n_features=ws.scaler.n_outputs_)
            train = ws.tensors("train", config.model)
            val = ws.tensors("val", config.model)
            resume = find_resume(trial, config, model) if chain else None
            if resume is not None:
                set_trial_attr(trial, "resumed_from", {"trial": resume.trial, "epoch": resume.epoch})
            result = fit(
                model, train, val, config.train, on_epoch_end=reporter, on_step=self.on_step,
                checkpoint_path=folder / LAST, resume_from=resume.state if resume is not None else None,
                on_checkpoint=drop_links(config, chain, generation(trial.study)) if chain else None,
            )
            del resume
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the checkpoint stays, the next run continues it
            trial.set_user_attr("fail_reason", "interrupted")
            raise
        except NonFiniteLossError as exc:
            trial.set_user_attr("prune_reason", f"non_finite_loss: {exc}")
            raise optuna.TrialPruned(f"non-finite loss: {exc}") from None
        except torch.OutOfMemoryError:
            trial.set_user_attr("fail_reason", "out_of_memory")
            del model
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            raise
        return model, result

    def _finish(self, trial: optuna.trial.Trial, config: Config, folder: Path, model: RankingNet,
                result: FitResult, reporter: _EpochReporter, started: float) -> float | tuple[float, float]:
        """Keep the best epoch: its checkpoint, attributes and artifacts; the objective value(s)."""
        ws, metric = self.workspace, config.study.metric
        model.load_state_dict(result.best_state)
        save_best(folder / BEST, model=model, result=result, config=config, ws=ws)
        attrs: dict[str, Any] = {
            **_val_metrics(result.best_metrics, config),
            "curve": [{"epoch": int(h["epoch"]), metric: round(h[metric], 6)} for h in result.history],
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "wall_time_s": round(time.perf_counter() - started, 2),
            "pairs_per_second": round(result.pairs_per_second, 1),
            "tokens_per_second": round(result.tokens_per_second, 1),
            "peak_gpu_memory_mb": round(result.peak_memory_mb, 1),
        }
        for key, value in attrs.items():
            reporter.record(key, value)
        log_trial_artifacts(trial, model=model, workspace=ws, config=config, history=result.history,
                            val_scores=result.best_val_scores)
        value = float(result.best_metrics[metric])
        if config.study.second_objective == "latency":
            latency = _latency_ms_per_1000(model, ws, config)
            trial.set_user_attr("latency_ms_per_1000_pairs", round(latency, 2))
            return value, latency
        if config.study.second_objective == "model_size":
            size = sum(p.numel() for p in model.parameters()) / 1e6
            trial.set_user_attr("model_size_m", round(size, 3))
            return value, size
        return value
