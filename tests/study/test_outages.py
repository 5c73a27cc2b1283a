"""Outages and pauses that must not kill a worker or lose a trial: the heartbeat thread outlives failed beats,
a worker never marks a live process of its own host stale, and a worker whose trial was closed by another
drops it with one paragraph and goes on. (The real 3 s PostgreSQL stop with two workers is in
``test_postgres.py``.)"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
from optuna.trial import TrialState

from study.runtime.attrs import set_trial_attr, trial_attr
from study.runtime.heartbeats import heartbeat
from study.runtime.liveness import fail_stale_trials, process_identity, queue_retry
from study.runtime.request import load_config
from study.storage import optuna_private as private
from study.storage.database import StorageConfig, build_storage
from tests.messages import assert_not_says, assert_says


@pytest.fixture
def rdb(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'o.db'}", heartbeat_interval=1,
                                         grace_period=2)
    return storage, optuna.create_study(study_name="o", storage=storage)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_the_heartbeat_thread_outlives_failed_beats(rdb, monkeypatch, caplog) -> None:
    storage, study = rdb
    tid = private.trial_id(study.ask())
    real, calls = storage.record_heartbeat, []

    def flaky(trial_id: int) -> None:  # the server is away for the first three beats
        calls.append(trial_id)
        if len(calls) <= 3:
            raise sqlalchemy.exc.OperationalError("UPDATE", {}, Exception("server closed the connection"))
        real(trial_id)

    monkeypatch.setattr(storage, "record_heartbeat", flaky)
    with heartbeat(study, tid, StorageConfig(heartbeat_interval=1)):
        time.sleep(5.5)
    assert len(calls) >= 5  # beat on after the failures, once a second
    assert private.stale_trial_ids(study) == []
    assert_says(caplog.text, "heartbeat of trial id", "not recorded", "server closed the connection")


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_a_live_process_of_this_host_is_never_marked_stale(rdb) -> None:
    _, study = rdb
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        trial = study.ask()  # run by `child`, whose heartbeats cannot reach the database (paused, an outage)
        ident = {**process_identity(), "pid": child.pid,
                 "process_start": Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]}
        for key, value in ident.items():
            set_trial_attr(trial, key, value)
        private.record_heartbeat(study, private.trial_id(trial))
        time.sleep(3.2)  # past the grace period
        assert private.stale_trial_ids(study) == [private.trial_id(trial)]
        assert fail_stale_trials(study, grace=2) == []  # alive: its process is right here
        assert private.frozen(study, private.trial_id(trial)).state == TrialState.RUNNING
    finally:
        child.kill()
        child.wait()
    assert fail_stale_trials(study, grace=2) == [trial.number]  # dead now: failed and queued again


def test_a_worker_whose_trial_was_closed_by_another_drops_it_and_goes_on(
        tmp_path, write_study_config, start_study, trials_of) -> None:
    path = write_study_config(n_trials=2, epochs=6, storage="heartbeat_interval = 1")
    proc, _, err = start_study(["run", "--config", str(path)], "closed")
    deadline = time.monotonic() + 120
    while not any((tmp_path / "runs").glob("**/trial_*/last.ckpt")):
        assert proc.poll() is None and time.monotonic() < deadline, err.read_text()[-2000:]
        time.sleep(0.05)
    # what a worker on another host does to a trial it finds stale
    study = optuna.load_study(study_name="t", storage=build_storage(load_config(path).storage))
    running = study.get_trials(states=(TrialState.RUNNING,))[0]
    private.set_trial_attr(study, private.trial_id(running), "fail_reason", "heartbeat_stale")
    assert private.fail_if_running(study, private.trial_id(running))
    queue_retry(study, private.frozen(study, private.trial_id(running)), max_retry=3)
    assert proc.wait(timeout=240) == 0, err.read_text()[-3000:]
    said = err.read_text()
    assert_says(said, f"Trial {running.number} was closed (FAIL) by another worker", "goes on with the next")
    assert_not_says(said, "Traceback", "UpdateFinishedTrialError")
    trials = trials_of(path)
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 2
    assert trials[running.number].state == TrialState.FAIL
    assert trial_attr(trials[running.number], "host") == socket.gethostname()
    assert os.getpid() != trial_attr(trials[running.number], "pid")


def test_a_full_disk_while_a_value_is_suggested_is_one_paragraph_and_no_trial_is_left_running(
        write_study_config, trials_of, monkeypatch, capsys) -> None:
    import sqlite3

    from study.cli import main

    def full(*args: object, **kwargs: object) -> None:
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError as exc:
            raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from exc

    path = write_study_config(n_trials=2)
    monkeypatch.setattr(optuna.storages.RDBStorage, "_set_trial_param", full)  # under set_trial_param
    assert main(["run", "--config", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert_says(err, "database or disk is full", "the disk is not full")
    assert_not_says(err, "Traceback")
    monkeypatch.undo()
    trials = trials_of(path)
    assert TrialState.RUNNING not in {t.state for t in trials}
    assert {t.user_attrs.get("fail_reason") for t in trials if t.state == TrialState.FAIL} == {
        "storage_unavailable"}
    assert trials[-1].state == TrialState.WAITING  # queued again for when there is space
