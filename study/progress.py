"""Live progress: a bar per trial (epochs and batches) and a study line on a terminal, plain log lines
otherwise, nothing with ``--quiet``."""

from __future__ import annotations

import sys
import time
from typing import Any

import optuna
from optuna.trial import TrialState


class Progress:
    def __init__(self, *, target: int, epochs: int, metric: str, quiet: bool = False, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.interactive = (not quiet) and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.target = target
        self.default_epochs = epochs
        self.epochs = epochs  # of the running trial (train.epochs may be searched)
        self.metric = metric
        self.started = time.monotonic()
        self.finished_here = 0
        self.bar = None
        self.trial = -1
        self.epoch = 0

    def _print(self, line: str) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def trial_started(self, trial: optuna.trial.Trial) -> None:
        self.trial, self.epoch = trial.number, 1
        self.epochs = int(trial.params.get("train.epochs", self.default_epochs))
        if self.interactive:
            from tqdm import tqdm

            self.bar = tqdm(total=0, desc=f"trial {trial.number} epoch 1/{self.epochs}", leave=False,
                            file=self.stream, unit="batch", dynamic_ncols=True)

    def step(self, step: int, total: int) -> None:
        if self.bar is not None:
            if self.bar.total != total:
                self.bar.reset(total=total)
            self.bar.n = step
            self.bar.refresh()

    def epoch_done(self, number: int, epoch: int, metrics: dict[str, float]) -> None:
        self.epoch = epoch + 1
        if self.bar is not None:
            self.bar.set_description(f"trial {number} epoch {min(epoch + 1, self.epochs)}/{self.epochs} "
                                     f"({self.metric} {metrics[self.metric]:.4f})")
        elif not self.interactive:
            self._print(f"  trial {number} epoch {epoch}/{self.epochs}: {self.metric} {metrics[self.metric]:.4f}")

    def trial_ended(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
            self.finished_here += 1
        trials = study.get_trials(deepcopy=False)
        finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
        pruned = sum(t.state == TrialState.PRUNED for t in trials)
        values = [t.values[0] for t in trials if t.state == TrialState.COMPLETE and t.values]
        best = f"{max(values):.4f}" if values else "-"
        elapsed = time.monotonic() - self.started
        remaining = max(self.target - finished, 0)
        eta = f"{elapsed / self.finished_here * remaining / 60:.1f} min" if self.finished_here else "?"
        value = f"{trial.values[0]:.4f}" if trial.values else trial.user_attrs.get("fail_reason", "")
        self._print(f"trial {trial.number:>3} {trial.state.name:<8} {value:>8}  |  {finished}/{self.target} finished, "
                    f"{pruned} pruned, best {self.metric} {best}, ETA {eta}")
