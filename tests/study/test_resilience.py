"""Studies that survive: kill -9 and rerun, Ctrl-C and SIGTERM, out-of-memory and NaN inside a trial, a
trial whose heartbeat stopped on another host, a locked or unreachable database, a changed search space.

The kill and signal tests drive ``python -m study run`` as a real process and wait until its running trial
has written an epoch checkpoint before striking.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from study.cli import main
from study.runtime.attrs import set_trial_attr, trial_attr
from study.runtime.liveness import recover_trials
from study.runtime.request import load_config
from study.runtime.trials import FINISHED
from study.storage.database import build_storage
from tests.messages import assert_not_says, assert_says

CPU = torch.device("cpu")


def wait_for_checkpoint(proc: subprocess.Popen, runs: Path, *, exclude: set[str] = frozenset(),
                        timeout: float = 120) -> Path:
    """The first ``last.ckpt`` (an epoch finished) of a trial folder not in ``exclude``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in runs.glob("**/trial_*/last.ckpt"):
            if path.parent.name not in exclude:
                return path
        assert proc.poll() is None, f"the study ended (code {proc.returncode}) before any epoch checkpoint"
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("no epoch checkpoint appeared")


def n_finished(trials: list[optuna.trial.FrozenTrial]) -> int:
    return sum(t.state in FINISHED for t in trials)


def test_kill_9_mid_trial_then_rerun_resumes_from_the_epoch_checkpoint(
        tmp_path, write_study_config, start_study, trials_of, capsys) -> None:
    path = write_study_config(n_trials=2, epochs=4, study="keep_checkpoints = 1")
    proc, _, _ = start_study(["run", "--config", str(path), "--quiet"], "killed")
    checkpoint = wait_for_checkpoint(proc, tmp_path / "runs")
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    killed = int(checkpoint.parent.name.removeprefix("trial_"))
    running = [t for t in trials_of(path) if t.state == TrialState.RUNNING]
    assert [t.number for t in running] == [killed] and trial_attr(running[0], "pid") == proc.pid
    capsys.readouterr()
    assert main(["status", "--name", "t", "--storage", f"sqlite:///{tmp_path / 'studies.db'}"]) == 0
    assert_says(capsys.readouterr().out, f"running: trial {killed}", "its process is gone")

    assert main(["run", "--config", str(path), "--quiet"]) == 0
    trials = trials_of(path)
    assert n_finished(trials) == 2  # the target exactly: the killed trial does not count, its retry does
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    dead = trials[killed]
    assert dead.state == TrialState.FAIL and dead.user_attrs["fail_reason"] == "process_died"
    retry = next(t for t in trials if t.system_attrs.get("retry_history") == [killed])
    assert retry.state == TrialState.COMPLETE and retry.params == dead.params
    assert (trial_attr(retry, "resumed_from")["trial"] == killed
            and trial_attr(retry, "resumed_from")["epoch"] > 0)
    assert "fail_reason" not in retry.user_attrs and trial_attr(retry, "pid") == os.getpid()
    assert len(retry.intermediate_values) < 4  # the epochs before the checkpoint were not run again
    # epochs 0 (untrained)..4
    assert retry.user_attrs["epochs_run"] == 4 and len(trial_attr(retry, "curve")) == 5
    # the best finished trial and the untuned default (trial 0's chain: the killed trial was the default,
    # queued first, and its retry keeps the mark) keep their weights; no resume file and no other trial folder
    # is left
    assert dead.user_attrs["default_config"] and retry.user_attrs["default_config"]
    best = max((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)
    folders = sorted(p.name for p in (tmp_path / "runs" / "t").glob("*/*"))  # the study's one generation
    assert folders == sorted({f"trial_{best.number:05d}", f"trial_{retry.number:05d}"})
    assert not list((tmp_path / "runs").glob("**/last.ckpt"))


def test_ctrl_c_and_sigterm_close_the_trial_and_the_next_run_continues_it(
        tmp_path, write_study_config, start_study, trials_of) -> None:
    path = write_study_config(n_trials=1, epochs=12)
    runs = tmp_path / "runs"
    proc, _, err = start_study(["run", "--config", str(path)], "sigint")
    first = wait_for_checkpoint(proc, runs)
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=60)
    assert code == 130, (f"exit {code}; the run's log ends with:\n"
                         + "\n".join(err.read_text().splitlines()[-15:]))
    assert_says(err.read_text(), "interrupted")
    assert_not_says(err.read_text(), "Traceback")
    trials = trials_of(path)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]  # none left RUNNING
    assert trials[0].user_attrs["fail_reason"] == "interrupted" and first.is_file()

    proc, _, err = start_study(["run", "--config", str(path), "--quiet"], "sigterm")
    second = wait_for_checkpoint(proc, runs, exclude={first.parent.name})
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    assert_says(err.read_text(), "terminated")
    trials = trials_of(path)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL, TrialState.WAITING]
    assert trial_attr(trials[1], "resumed_from")["trial"] == 0 and second.is_file()
    assert trial_attr(trials[1], "resumed_from")["epoch"] >= 1

    assert main(["run", "--config", str(path), "--quiet"]) == 0
    trials = trials_of(path)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.FAIL, TrialState.COMPLETE]
    last = trials[2]
    assert last.system_attrs["retry_history"] == [0, 1] and last.params == trials[0].params
    assert trial_attr(last, "resumed_from")["trial"] == 1
    assert trial_attr(last, "resumed_from")["epoch"] >= trial_attr(trials[1], "resumed_from")["epoch"] + 1
    assert not first.parent.exists() and not second.parent.exists()  # the finished retry's chain is cleaned


def test_out_of_memory_fails_one_trial_and_nan_prunes_another_the_study_goes_on(
        write_study_config, trials_of, monkeypatch):
    import dataclasses

    import study.objective as objective_mod

    real_fit = objective_mod.fit
    calls = []

    def fit(model, train, val, cfg, **kw):
        calls.append(kw["checkpoint_path"].parent.name)
        if len(calls) == 1:  # what CUDA raises when a batch does not fit
            torch.ones(1, requires_grad=True).sum().backward()
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        if len(calls) == 2:  # a learning rate that makes the loss diverge
            cfg = dataclasses.replace(cfg, head_lr=1e30, encoder_lr=1e30, grad_clip=0.0, loss="mse")
        return real_fit(model, train, val, cfg, **kw)

    monkeypatch.setattr(objective_mod, "fit", fit)
    path = write_study_config(n_trials=3, epochs=1)
    assert main(["run", "--config", str(path), "--quiet"]) == 0
    trials = trials_of(path)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.PRUNED, TrialState.COMPLETE,
                                         TrialState.COMPLETE]
    assert trials[0].user_attrs["fail_reason"] == "out_of_memory"
    assert not any(0 in t.system_attrs.get("retry_history", []) for t in trials)  # an OOM is not retried
    assert trials[1].user_attrs["prune_reason"].startswith("non_finite_loss")
    assert n_finished(trials) == 3


def test_changed_search_space_is_refused_and_nothing_changes(write_study_config, trials_of, capsys) -> None:
    path = write_study_config(n_trials=1, epochs=1)
    assert main(["run", "--config", str(path), "--quiet"]) == 0
    capsys.readouterr()
    # fixing a searched field changes the search space
    assert main(["run", "--config", str(path), "--quiet", "--set", 'train.loss="listnet"',
                 "--n-trials", "2"]) == 2
    assert_says(capsys.readouterr().err, "search space differs", "train.loss", "--name")
    other = write_study_config(n_trials=2, epochs=1, filename="other.toml",
                               search='"train.head_lr" = { low = 1e-4, high = 1e-2, log = true }\n')
    assert main(["run", "--config", str(other), "--quiet"]) == 2
    assert_says(capsys.readouterr().err, "no longer searches train.loss", "train.head_lr was")
    assert len(trials_of(path)) == 1


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
@pytest.mark.parametrize("backend", ["sqlite", "journal"])
def test_a_trial_whose_heartbeat_stopped_on_another_host_is_failed_and_retried(
        tmp_path, write_study_config, trials_of, backend):
    from study.runtime.attrs import HEARTBEAT_ATTR
    from study.runtime.studies import create_or_resume
    from study.space import suggest
    from study.workspace import prepare_workspace

    url = f"journal:///{tmp_path / 'studies.log'}" if backend == "journal" else None
    path = write_study_config(n_trials=2, url=url,
                              storage="heartbeat_interval = 1\ngrace_period = 3")
    config = load_config(path)
    ws = prepare_workspace(config, CPU)
    study = create_or_resume(config, fingerprint=ws.pairs.fingerprint(), summary=ws.summary())
    ghost = study.ask()  # a trial that a worker on another machine started, then lost power
    suggest(ghost, config.search)
    set_trial_attr(ghost, "host", "gpu-box-7")
    set_trial_attr(ghost, "pid", 4242)
    if backend == "journal":
        ghost.set_user_attr(HEARTBEAT_ATTR, time.time())
    else:
        study._storage.record_heartbeat(ghost._trial_id)
    assert recover_trials(study, config.storage) == []  # a fresh heartbeat: alive, whatever the pid says
    assert main(["run", "--config", str(path), "--quiet"]) == 0
    trials = trials_of(path)
    assert trials[0].state == TrialState.FAIL and trials[0].user_attrs["fail_reason"] == "heartbeat_stale"
    # not before the grace
    assert (trials[0].datetime_complete - trials[0].datetime_start).total_seconds() >= 3
    retry = next(t for t in trials if t.system_attrs.get("retry_history") == [0])
    assert retry.state == TrialState.COMPLETE and retry.params == trials[0].params
    assert trial_attr(retry, "host") == socket.gethostname()
    assert n_finished(trials) == 2


def test_a_locked_database_is_retried_then_reported_with_exit_2(tmp_path, write_study_config, capsys) -> None:
    path = write_study_config(storage="sqlite_timeout = 0.2\nconnect_attempts = 2")
    config = load_config(path)
    build_storage(config.storage)  # the tables exist; another program now holds the write lock
    holder = sqlite3.connect(tmp_path / "studies.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        assert main(["run", "--config", str(path), "--quiet"]) == 2
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    err = capsys.readouterr().err
    assert_says(err, "database is locked", "after 2 attempts", "nothing was written")
    assert_not_says(err, "Traceback")
    assert optuna.get_all_study_summaries(build_storage(config.storage)) == []


def test_an_unreachable_server_is_reported_with_exit_2_and_no_password(write_study_config, capsys) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    url = f"postgresql://study:Zq7SecretPw@127.0.0.1:{port}/studies"
    path = write_study_config(url=url, storage="connect_attempts = 2")
    assert main(["run", "--config", str(path), "--quiet"]) == 2
    captured = capsys.readouterr()
    assert_not_says(captured.out + captured.err, "Zq7SecretPw")
    assert_says(captured.err, "postgresql://study:***@127.0.0.1", "after 2 attempts")


def test_redact_hides_passwords_in_urls_and_driver_messages() -> None:
    from study.storage.urls import redact

    assert redact("postgresql+psycopg://u:p%40ss@h:5432/db") == "postgresql+psycopg://u:***@h:5432/db"
    assert "s3cr" not in redact("connection failed: host=h user=u password=s3cr dbname=db")
    assert "s3cr" not in redact("{'password': 's3cr'}")
    assert redact("sqlite:///studies.db") == "sqlite:///studies.db"
    assert json.loads(redact(json.dumps({"url": "mysql://a:b@c/d"}))) == {"url": "mysql://a:***@c/d"}
