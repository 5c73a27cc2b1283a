"""The progress display: a bar per epoch on a terminal, one line per finished trial with its duration."""

from __future__ import annotations

import io
import time

import optuna

from study.runtime.progress import Progress
from tests.messages import assert_says


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_each_epoch_gets_its_own_bar_showing_the_last_metric(monkeypatch) -> None:
    stream = Terminal()
    progress = Progress(target=2, epochs=2, metric="ndcg@10", stream=stream)
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    progress.trial_started(trial)
    assert progress.bar is None  # no bar while epoch 0 is validated: it starts at the first batch
    progress.on_step(1, 10)
    first = progress.bar
    progress.on_step(3, 10)
    time.sleep(0.05)
    progress.epoch_done(trial.number, 1, {"ndcg@10": 0.8123})
    assert progress.bar is None and first.disable  # the first epoch's bar was closed, not reused
    progress.on_step(1, 10)
    second = progress.bar
    assert second is not first and second.n == 1 and second.start_t > first.start_t
    assert "epoch 2/2" in second.desc and "ndcg@10 0.8123" in second.desc
    progress.on_step(4, 10)
    progress.epoch_done(trial.number, 2, {"ndcg@10": 0.85})
    study.tell(trial, 0.85)
    progress.trial_ended(study, study.trials[0])
    assert progress.bar is None
    line = [ln for ln in stream.getvalue().splitlines() if "COMPLETE" in ln][-1]
    assert "0.8500" in line and " in " in line and " s " in line and "1/2 finished" in line


def test_plain_lines_off_a_terminal_and_nothing_when_quiet() -> None:
    study = optuna.create_study(direction="maximize")
    for quiet, expect_lines in ((False, True), (True, False)):
        stream = io.StringIO()
        progress = Progress(target=1, epochs=1, metric="mrr", quiet=quiet, stream=stream)
        trial = study.ask()
        progress.trial_started(trial)
        progress.epoch_done(trial.number, 1, {"mrr": 0.5})
        study.tell(trial, 0.5)
        progress.trial_ended(study, study.trials[-1])
        text = stream.getvalue()
        assert progress.bar is None
        assert ("epoch 1/1: mrr 0.5000" in text) == expect_lines and (text != "") == expect_lines


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_epoch_rate_starts_at_the_real_rate_on_a_fake_clock() -> None:
    clock = FakeClock()
    progress = Progress(target=2, epochs=1, metric="mrr", stream=Terminal(), clock=clock)
    study = optuna.create_study(direction="maximize")
    progress.trial_started(study.ask())
    clock.now += 30.0  # epoch 0 validated, one-off caches built: not training time
    progress.on_step(1, 100)
    assert "batch/s" not in str(progress.bar)  # one batch: no rate yet
    clock.now += 0.001
    progress.on_step(1, 100)  # a repeated report changes nothing
    clock.now += 2.0
    progress.on_step(5, 100)
    assert_says(str(progress.bar), "2.00 batch/s")  # 4 batches in 2 s, not 5 in 32 s nor 4 in 0.001 s


def test_one_off_work_is_a_named_step_with_its_duration() -> None:
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress(target=1, epochs=1, metric="mrr", stream=stream, clock=clock)
    with progress.step("zero-shot cosine of the pretrained encoder, 3,025 pairs"):
        clock.now += 12.4
    said = stream.getvalue()
    assert said.count("\n") == 2
    assert_says(said, "zero-shot cosine of the pretrained encoder, 3,025 pairs ...",
                "zero-shot cosine of the pretrained encoder, 3,025 pairs: done in 12 s")
    quiet = io.StringIO()
    with Progress(target=1, epochs=1, metric="mrr", stream=quiet, quiet=True).step("x"):
        pass
    assert quiet.getvalue() == ""


def test_the_eta_weighs_trials_by_architecture_and_epochs_and_waits_for_two() -> None:
    from study.runtime.progress import TrialCost, remaining_seconds

    assert remaining_seconds([TrialCost("prior", 5, 100.0)], n_remaining=3) is None
    finished = [TrialCost("prior", 5, 100.0), TrialCost("frozen", 5, 5.0), TrialCost("frozen", 3, 3.0)]
    # a third of the trials are prior (20 s an epoch, 5 epochs), two thirds frozen (1 s an epoch, 4 epochs)
    expected = 3 * (1 / 3 * 20 * 5 + 2 / 3 * 1 * 4)
    assert abs(remaining_seconds(finished, n_remaining=3) - expected) < 1e-9
    # a running prior trial with 2 epochs to go adds its own architecture's 40 s, not the mean's
    assert abs(remaining_seconds(finished, n_remaining=3, running=("prior", 2)) - expected - 40) < 1e-9


def test_the_trial_line_waits_for_two_trials_before_an_eta_and_excludes_one_off_work() -> None:
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress(target=4, epochs=2, metric="mrr", stream=stream, clock=clock)
    study = optuna.create_study(direction="maximize")
    for seconds in (10.0, 30.0):
        trial = study.ask()
        progress.trial_started(trial)
        clock.now += seconds
        study.tell(trial, 0.5)
        progress.trial_ended(study, study.trials[-1])
    first, second = [ln for ln in stream.getvalue().splitlines() if "COMPLETE" in ln]
    assert_says(first, "ETA after 2 trials")
    assert_says(second, "ETA 40 s")  # 2 left at (10 + 30) / 2 s each
