"""Live progress that tells the truth: one-off work (zero-shot cosine, match features, tokens, the test
evaluation) as a named step with its duration; on a terminal (or a notebook, as a widget) one bar per epoch
of the running trial, created at its first batch and showing its own rate only from the second batch on, so
neither validation nor a one-off cache is counted as training time; one line per finished trial with an ETA
weighted by each trial's architecture and epochs, or none until two trials have finished; plain log lines
off a terminal; nothing with ``--quiet``. Time comes from ``clock`` (a fake one in tests)."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState


@dataclass(frozen=True)
class TrialCost:
    """What a finished trial cost: its architecture, the epochs it validated (epoch 0 included) and its
    seconds."""

    architecture: str
    epochs: int
    seconds: float


def remaining_seconds(finished: list[TrialCost], *, n_remaining: int, running: tuple[str, int] | None = None,
                      min_finished: int = 2) -> float | None:
    """Seconds left: each architecture's measured seconds per epoch (over the trials of it that finished),
    times the epochs a trial of it ran on average, for the remaining trials in the mix of architectures
    seen so far, plus the running trial's epochs still to go (``running``: its architecture and epochs
    left). None until ``min_finished`` trials have finished: one trial's time says little about the next."""
    if len(finished) < min_finished:
        return None
    by_arch: dict[str, list[TrialCost]] = {}
    for cost in finished:
        by_arch.setdefault(cost.architecture, []).append(cost)
    per_epoch = {a: sum(c.seconds for c in cs) / max(sum(c.epochs for c in cs), 1)
                 for a, cs in by_arch.items()}
    mean_epochs = {a: sum(c.epochs for c in cs) / len(cs) for a, cs in by_arch.items()}
    per_trial = sum(len(cs) / len(finished) * per_epoch[a] * mean_epochs[a] for a, cs in by_arch.items())
    left = per_trial * n_remaining
    if running is not None:
        architecture, epochs_left = running
        rate = per_epoch.get(architecture, sum(per_epoch.values()) / len(per_epoch))
        left += rate * max(epochs_left, 0)
    return left


# no tqdm rate or ETA: the rate shown (postfix) is measured from the epoch's first batch
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} batches{postfix}"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


class Progress:
    def __init__(self, *, target: int, epochs: int, metric: str, quiet: bool = False, stream: Any = None,
                 architecture: str = "prior", clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.interactive = (not quiet) and ((hasattr(self.stream, "isatty") and self.stream.isatty())
                                            or "ipykernel" in sys.modules)
        self.clock = clock
        self.target = target
        self.default_epochs = epochs
        self.default_architecture = architecture
        self.epochs = epochs  # of the running trial (train.epochs may be searched)
        self.architecture = architecture
        self.metric = metric
        self.finished: list[TrialCost] = []
        self.bar = None
        self.trial = -1
        self.epoch = 0
        self.last_metric = ""
        self.trial_start = 0.0
        self.first_step: tuple[int, float] | None = None  # (step, time) of the epoch's first batch

    def _print(self, line: str) -> None:
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    @contextlib.contextmanager
    def step(self, what: str) -> Iterator[None]:
        """One-off work, said before it starts and with its duration when done: ``preparing: zero-shot
        cosine of 3,025 pairs ... 12 s``."""
        started = self.clock()
        self._print(f"{what} ...")
        yield
        self._print(f"{what}: done in {_duration(self.clock() - started)}")

    def trial_started(self, trial: optuna.trial.Trial) -> None:
        self.trial, self.epoch, self.last_metric = trial.number, 1, ""
        self.epochs = int(trial.params.get("train.epochs", self.default_epochs))
        self.architecture = str(trial.params.get("model.architecture", self.default_architecture))
        self.trial_start = self.clock()
        self.first_step = None

    def on_step(self, step: int, total: int) -> None:
        """Batch ``step`` of ``total`` in the current epoch is done. The epoch's bar starts at its first
        batch; its rate counts the batches after the first over the time since it: the training's own."""
        if not self.interactive:
            return
        now = self.clock()
        if self.first_step is None or step < self.first_step[0]:
            self._close_bar()
            self.first_step = (step, now)
            from tqdm.auto import tqdm  # a widget in a notebook, text on a terminal

            self.bar = tqdm(total=total, initial=step, leave=False, file=self.stream, dynamic_ncols=True,
                            desc=f"trial {self.trial} epoch {self.epoch}/{self.epochs}{self.last_metric}",
                            bar_format=BAR_FORMAT)
            return
        first, since = self.first_step
        rate = (step - first) / (now - since) if now > since else None
        self.bar.n = step
        self.bar.set_postfix_str(f"{rate:.2f} batch/s" if rate is not None else "", refresh=False)
        self.bar.refresh()

    def epoch_done(self, number: int, epoch: int, metrics: dict[str, float]) -> None:
        """Epoch ``epoch`` was validated (0: before training): the next epoch's bar, at its first batch,
        shows the metric just measured."""
        self.epoch = epoch + 1
        self.first_step = None
        self._close_bar()
        self.last_metric = f" (epoch {epoch}: {self.metric} {metrics[self.metric]:.4f})"
        if not self.interactive:
            self._print(f"  trial {number} epoch {epoch}/{self.epochs}: {self.metric} "
                        f"{metrics[self.metric]:.4f}")

    def trial_ended(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self._close_bar()
        took = self.clock() - self.trial_start if self.trial == trial.number else None
        if trial.state in (TrialState.COMPLETE, TrialState.PRUNED) and took is not None:
            epochs = int(trial.user_attrs.get("epochs_run", max(len(trial.intermediate_values) - 1, 0))) + 1
            self.finished.append(TrialCost(self.architecture, epochs, took))
        trials = study.get_trials(deepcopy=False)
        finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
        pruned = sum(t.state == TrialState.PRUNED for t in trials)
        values = [t.values[0] for t in trials if t.state == TrialState.COMPLETE and t.values]
        best = f"{max(values):.4f}" if values else "-"
        left = remaining_seconds(self.finished, n_remaining=max(self.target - finished, 0))
        eta = "ETA " + _duration(left) if left is not None else "ETA after 2 trials"
        value = (f"{trial.values[0]:.4f}" if trial.values else
                 str(trial.user_attrs.get("fail_reason") or trial.user_attrs.get("prune_reason") or ""))
        if took is None and trial.datetime_complete and trial.datetime_start:
            took = (trial.datetime_complete - trial.datetime_start).total_seconds()
        self._print(f"trial {trial.number:>3} {trial.state.name:<8} {value[:60]:>8}  in "
                    f"{_duration(took or 0):>7}  |  {finished}/{self.target} finished, {pruned} pruned, best "
                    f"{self.metric} {best}, {eta}")
