"""A study replaced under a running process: SQLite gives a deleted study's id and its trials' ids to the next
study created in the file, so an old process that kept running would write into the new study by id. The
generation token (``study/storage/identity.py``) stops it: the old process drops its trial with one paragraph
and exit code 2, and the new study holds only its own trials. ``delete`` and ``run --new`` refuse while a
trial runs, naming its host and pid, unless ``--force``."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from study.cli import main
from study.runtime.attrs import trial_attr
from tests.messages import assert_not_says, assert_says


def _wait_for_epoch(proc: subprocess.Popen, runs: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(runs.glob("**/trial_*/last.ckpt")):
            return
        assert proc.poll() is None, f"the study ended (code {proc.returncode}) before its first epoch"
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("no epoch checkpoint appeared")


@pytest.fixture
def old_process(tmp_path, write_study_config, start_study):
    """``study run`` of study "t" (many long trials) in the background, one epoch done."""
    path = write_study_config(n_trials=40, epochs=8, storage="heartbeat_interval = 1", filename="old.toml")
    proc, _, err = start_study(["run", "--config", str(path), "--quiet"], "old")
    _wait_for_epoch(proc, tmp_path / "runs")
    yield proc, err
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_new_while_an_old_process_runs_the_study_is_refused_then_never_crossed(
        old_process, write_study_config, trials_of, capsys) -> None:
    proc, old_err = old_process
    new = write_study_config(n_trials=2, n_queries=30, storage="heartbeat_interval = 1", filename="new.toml")
    assert main(["run", "--config", str(new), "--new", "--quiet"]) == 2
    refused = capsys.readouterr().err
    assert_says(refused, "running right now", f"host {socket.gethostname()} (pid {proc.pid})", "--force",
                "nothing was changed")
    assert proc.poll() is None  # the refusal touched nothing: the old process runs on

    assert main(["run", "--config", str(new), "--new", "--force", "--quiet"]) == 0
    assert proc.wait(timeout=120) == 2, old_err.read_text()
    said = old_err.read_text()
    assert_says(said, "Study 't' was deleted or re-created by another process",
                "this trial's result is dropped")
    assert_not_says(said, "Traceback")
    trials = trials_of(new)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert {trial_attr(t, "pid") for t in trials} == {os.getpid()}  # none of the old process's writes
    assert {trial_attr(t, "config")["data"]["n_queries"] for t in trials} == {30}
    assert all(len(t.intermediate_values) == 3 for t in trials)  # epochs 0..2 of its own, nothing more
    # nor of its files: the old process wrote its last epoch checkpoint (before the write that stopped it)
    # into its own generation's folder; the new study's folder holds only the new trials' weights
    best = {Path(trial_attr(t, "checkpoint")) for t in trials}
    (generation_folder,) = {p.parent.parent for p in best}
    assert {p for p in generation_folder.rglob("*") if p.is_file()} == best


def test_delete_while_a_worker_runs_is_refused_and_forced_stops_the_worker(old_process, tmp_path,
                                                                           capsys) -> None:
    proc, old_err = old_process
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    assert main(["delete", "t", "--yes", "--storage", url]) == 2
    assert_says(capsys.readouterr().err, "running right now", f"(pid {proc.pid})", "--force")
    assert main(["delete", "t", "--yes", "--force", "--storage", url]) == 0
    assert proc.wait(timeout=120) == 2, old_err.read_text()  # what the old process said, on a failure
    said = old_err.read_text()
    assert_says(said, "deleted or re-created by another process", "it no longer exists")
    assert_not_says(said, "Traceback", "KeyError")
