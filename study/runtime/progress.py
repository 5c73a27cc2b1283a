"""Live progress: on a terminal (or a notebook, as a widget) one bar per epoch of the running trial, whose
rate and elapsed time are that epoch's, and one line per finished trial with its duration; plain log lines
otherwise; nothing with ``--quiet``."""

from __future__ import annotations

import sys
import time
from typing import Any

import optuna
from optuna.trial import TrialState


class Progress:
    def __init__(self, *, target: int, epochs: int, metric: str, quiet: bool = False,
                 stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.interactive = (not quiet) and ((hasattr(self.stream, "isatty") and self.stream.isatty())
                                            or "ipykernel" in sys.modules)
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

    def _new_bar(self, last: str = "") -> None:
        """A fresh bar for ``self.epoch``: its rate and elapsed time are this epoch's alone."""
        if self.bar is not None:
            self.bar.close()
        from tqdm.auto import tqdm  # a widget in a notebook, text on a terminal

        self.bar = tqdm(total=0, desc=f"trial {self.trial} epoch {self.epoch}/{self.epochs}{last}",
                        leave=False, file=self.stream, unit="batch", dynamic_ncols=True)

    def trial_started(self, trial: optuna.trial.Trial) -> None:
        self.trial, self.epoch = trial.number, 1
        self.epochs = int(trial.params.get("train.epochs", self.default_epochs))
        if self.interactive:
            self._new_bar()

    def step(self, step: int, total: int) -> None:
        if self.bar is not None:
            if self.bar.total != total:
                self.bar.reset(total=total)
            self.bar.n = step
            self.bar.refresh()

    def epoch_done(self, number: int, epoch: int, metrics: dict[str, float]) -> None:
        """Epoch ``epoch`` was validated (0: before training): the next epoch gets its own bar, which shows
        the metric just measured."""
        self.epoch = epoch + 1
        if self.interactive:
            if self.epoch <= self.epochs:
                self._new_bar(f" (epoch {epoch}: {self.metric} {metrics[self.metric]:.4f})")
        else:
            self._print(f"  trial {number} epoch {epoch}/{self.epochs}: {self.metric} "
                        f"{metrics[self.metric]:.4f}")

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
        took = (trial.datetime_complete - trial.datetime_start).total_seconds() if (
            trial.datetime_complete and trial.datetime_start) else None
        took_text = f"{took:.0f} s" if took is not None and took < 120 else f"{(took or 0) / 60:.1f} min"
        self._print(f"trial {trial.number:>3} {trial.state.name:<8} {value:>8}  in {took_text:>7}  |  "
                    f"{finished}/{self.target} finished, {pruned} pruned, best {self.metric} {best}, "
                    f"ETA {eta}")
