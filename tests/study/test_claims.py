"""The one-transaction claim (``study.storage.claims``) and the private names it uses, against the installed
Optuna on a SQLite file: a claim pops a queued trial first, writes who runs it and a first heartbeat, stops at
the target without a lock; a dead trial's retry is queued once; the pool holds one connection to a server."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from study.runtime.liveness import retry_chain, retry_template
from study.storage import claims
from study.storage import optuna_private as private
from study.storage.database import SERVER_POOL, StorageConfig, build_storage
from study.storage.urls import grpc_address, is_grpc
from tests.messages import assert_says

IDENTITY = {"host": "h", "pid": 1, "pid_namespace": "ns", "process_start": "7", "sampler_seed": 3}


@pytest.fixture
def study(tmp_path):
    storage = build_storage(StorageConfig(url=f"sqlite:///{tmp_path / 'c.db'}", heartbeat_interval=1))
    return optuna.create_study(study_name="c", storage=storage)


def test_a_claim_creates_a_running_trial_with_its_identity_and_heartbeat(study) -> None:
    assert claims.on_database(study)
    tid = claims.claim_slot(study, target=2, identity=IDENTITY)
    frozen = private.frozen(study, tid)
    assert frozen.state == TrialState.RUNNING and frozen.number == 0
    known = claims.just_created(tid)  # as stored, so that it need not be read back
    assert (known.number, known.state, known.system_attrs) == (0, frozen.state, frozen.system_attrs)
    assert {k: frozen.system_attrs[k] for k in IDENTITY} == IDENTITY
    assert private.stale_trial_ids(study) == []  # it has a heartbeat: it can be found stale later
    trial = private.trial_object(study, tid)  # the live Trial, sampled as Study.ask samples it
    x = trial.suggest_float("x", 0, 1)
    study.tell(trial, x)
    assert claims.claim_slot(study, target=2, identity=IDENTITY) is not None
    assert claims.claim_slot(study, target=2, identity=IDENTITY) is None  # 1 finished + 1 running = 2
    assert claims.state_counts(study) == {**{s.name: 0 for s in TrialState}, "COMPLETE": 1, "RUNNING": 1,
                                          "FINISHED": 1}
    assert private.count_trials_of(private.storage(study), private.study_id(study)) == 2


def test_a_queued_trial_is_claimed_first_even_past_the_target(study) -> None:
    study.enqueue_trial({"x": 0.5})
    tid = claims.claim_slot(study, target=0, identity=IDENTITY)
    frozen = private.frozen(study, tid)
    assert frozen.state == TrialState.RUNNING and frozen.system_attrs["sampler_seed"] == 3
    assert private.trial_object(study, tid).suggest_float("x", 0, 1) == 0.5  # its fixed value
    assert claims.claim_slot(study, target=0, identity=IDENTITY) is None


def test_a_dead_trials_retry_is_queued_once_in_the_same_transaction(study) -> None:
    tid = claims.claim_slot(study, target=5, identity=IDENTITY)
    private.trial_object(study, tid).suggest_float("x", 0, 1)
    retry = retry_template(private.frozen(study, tid), max_retry=3)
    assert claims.requeue(study, tid, reason="process_died", retry=retry) is True
    assert claims.requeue(study, tid, reason="process_died", retry=retry) is False  # another was first
    trials = study.get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.WAITING]
    assert trials[0].user_attrs["fail_reason"] == "process_died"
    assert retry_chain(trials[1]) == [0] and trials[1].params == trials[0].params
    assert "host" not in trials[1].system_attrs  # the retry records its own run
    again = claims.claim_slot(study, target=1, identity=IDENTITY)  # the retry first, then nothing
    assert private.frozen(study, again).number == 1
    assert claims.claim_slot(study, target=1, identity=IDENTITY) is None


def test_the_row_lock_session_and_attributes_in_it(study) -> None:
    tid = claims.claim_slot(study, target=5, identity=IDENTITY)
    with private.study_row_locked(study) as session:
        assert private.state_counts(session, private.study_id(study)) == {"RUNNING": 1}
        assert private.fail_running_in(session, tid, {"why": "test"}) is True
        assert private.fail_running_in(session, tid, {"why": "again"}) is False
        template = optuna.trial.create_trial(state=TrialState.WAITING, params={"x": 0.1},
                                             distributions={"x": optuna.distributions.FloatDistribution(0,
                                                                                                        1)})
        new = private.new_trial(study, session, template)
    assert private.frozen(study, tid).user_attrs["why"] == "test"
    assert private.frozen(study, new).state == TrialState.WAITING
    assert private.frozen(study, new).number == 1
    assert private.rdb_backend(private.storage(study)) is not None


def test_a_database_server_gets_one_connection_per_process() -> None:
    assert SERVER_POOL["pool_size"] == 1  # build_storage then closes the overflow that set-up needs
    from study.storage.database import _one_connection

    engine = pytest.importorskip("sqlalchemy").create_engine("postgresql+psycopg://u:p@127.0.0.1:1/db",
                                                             pool_size=1, max_overflow=1)
    _one_connection(engine)
    assert engine.pool._max_overflow == 0


def test_grpc_urls() -> None:
    assert is_grpc("grpc://proxy:13000") and not is_grpc("postgresql://x")
    assert grpc_address("grpc://proxy:13001") == ("proxy", 13001)
    assert grpc_address("grpc://proxy") == ("proxy", 13000)
    with pytest.raises(ValueError, match="grpc://host:port"):
        grpc_address("grpc://:x")


def test_a_claimed_trial_is_known_to_optunas_cache_whatever_the_sampler_reads(tmp_path) -> None:
    storage = build_storage(StorageConfig(url=f"sqlite:///{tmp_path / 'r.db'}"))
    study = optuna.create_study(study_name="r", storage=storage, sampler=optuna.samplers.RandomSampler(0))
    tid = claims.claim_slot(study, target=3, identity=IDENTITY)  # RandomSampler reads no trial at start
    trial = private.trial_object(study, tid)
    study.tell(trial, trial.suggest_float("x", 0, 1))
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE]


def test_a_claim_on_a_study_deleted_under_this_process_is_the_one_paragraph_error(study, tmp_path) -> None:
    """On SQLite the row lock finds no study: the worker says the study was deleted (exit 2), not KeyError."""
    from study.storage.identity import StudyReplacedError, holding

    with holding(study):
        optuna.delete_study(study_name="c", storage=f"sqlite:///{tmp_path / 'c.db'}")  # another process's
        with pytest.raises(StudyReplacedError) as info:
            claims.claim_slot(study, target=2, identity=IDENTITY)
    assert_says(info.value, "it no longer exists")
