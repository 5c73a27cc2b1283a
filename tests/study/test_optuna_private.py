"""Each use of Optuna's private internals (study/storage/optuna_private.py), against the installed
Optuna: an upgrade that moves one fails here, not in the middle of a study. Plus: the storage is opened once
per process."""

from __future__ import annotations

import time

import optuna
import pytest
from optuna.trial import TrialState

from study.storage import optuna_private as private
from study.storage.database import StorageConfig, open_storage


@pytest.fixture
def rdb(tmp_path):
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'p.db'}", heartbeat_interval=1,
                                         grace_period=2)
    return optuna.create_study(study_name="p", storage=storage)


def test_storage_ids_and_attributes(rdb) -> None:
    trial = rdb.ask()
    tid = private.trial_id(trial)
    assert private.storage(rdb) is rdb._storage and isinstance(private.study_id(rdb), int)
    assert private.frozen(rdb, tid).number == trial.number
    assert private.trial_id(private.frozen(rdb, tid)) == tid  # the same id from a FrozenTrial
    private.set_trial_attr(rdb, tid, "k", 1)
    assert private.frozen(rdb, tid).user_attrs["k"] == 1
    private.storage(rdb).set_trial_system_attr(tid, "s", 2)
    assert private.trial_system_attrs(rdb, tid)["s"] == 2
    private.set_study_system_attr(rdb, "note", "x")
    assert private.study_system_attrs(rdb)["note"] == "x"


def test_fail_if_running_closes_once(rdb) -> None:
    tid = private.trial_id(rdb.ask())
    assert private.fail_if_running(rdb, tid) is True
    assert private.frozen(rdb, tid).state == TrialState.FAIL
    assert private.fail_if_running(rdb, tid) is False  # already closed: another worker was first


def test_heartbeats_and_stale_trials(rdb) -> None:
    assert private.heartbeat_enabled(rdb)
    trial = rdb.ask()
    tid = private.trial_id(trial)
    private.record_heartbeat(rdb, tid)
    assert private.stale_trial_ids(rdb) == []
    deadline = time.monotonic() + 10  # the grace period (2 s) passes without a heartbeat
    while private.stale_trial_ids(rdb) != [tid] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert private.stale_trial_ids(rdb) == [tid]
    private.record_heartbeat(rdb, tid)
    assert private.stale_trial_ids(rdb) == []


def test_no_heartbeats_on_a_journal_file(tmp_path) -> None:
    backend = optuna.storages.journal.JournalFileBackend(str(tmp_path / "j.log"))
    study = optuna.create_study(storage=optuna.storages.JournalStorage(backend))
    assert not private.heartbeat_enabled(study)


def test_the_storage_is_opened_once_per_process(tmp_path) -> None:
    config = StorageConfig(url=f"sqlite:///{tmp_path / 'once.db'}")
    first = open_storage(config)
    assert open_storage(config) is first
    assert open_storage(StorageConfig(url=f"sqlite:///{tmp_path / 'other.db'}")) is not first


def test_the_engine_under_a_studys_storage(rdb, tmp_path) -> None:
    engine = private.rdb_engine(private.storage(rdb))  # Optuna wraps the RDBStorage in a _CachedStorage
    assert engine is not None and engine.dialect.name == "sqlite"
    backend = optuna.storages.journal.JournalFileBackend(str(tmp_path / "j.log"))
    journal = optuna.create_study(storage=optuna.storages.JournalStorage(backend))
    assert private.rdb_engine(private.storage(journal)) is None
    assert private.rdb_engine(private.storage(optuna.create_study())) is None  # in memory


def test_the_retry_chain_through_optunas_public_vocabulary(rdb) -> None:
    from study.runtime.liveness import queue_retry, retry_chain

    first = rdb.ask()
    rdb.tell(first, state=TrialState.FAIL)
    queue_retry(rdb, rdb.trials[0], max_retry=3)
    retry = rdb.ask()  # the queued retry
    assert retry_chain(retry) == [0]
    frozen = private.frozen(rdb, private.trial_id(retry))
    assert optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(frozen) == 0
    assert retry_chain(frozen) == [0] and retry.params == first.params
