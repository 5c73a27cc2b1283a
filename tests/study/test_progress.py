"""The progress display: a bar per epoch on a terminal, one line per finished trial with its duration."""

from __future__ import annotations

import io
import time

import optuna

from study.runtime.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_each_epoch_gets_its_own_bar_showing_the_last_metric(monkeypatch) -> None:
    stream = Terminal()
    progress = Progress(target=2, epochs=2, metric="ndcg@10", stream=stream)
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    progress.trial_started(trial)
    first = progress.bar
    progress.step(3, 10)
    time.sleep(0.05)
    progress.epoch_done(trial.number, 1, {"ndcg@10": 0.8123})
    second = progress.bar
    assert second is not first and first.disable  # the first epoch's bar was closed, not reused
    assert second.n == 0 and second.start_t > first.start_t  # elapsed time and rate start again
    assert "epoch 2/2" in second.desc and "ndcg@10 0.8123" in second.desc
    progress.step(4, 10)
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
