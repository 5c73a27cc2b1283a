"""Two workers on a real PostgreSQL server that the test starts (and skips without): the study reaches its
total, ``study status`` and ``study best`` work on the URL, and its password never appears anywhere."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from bench.postgres import PASSWORD, NoPostgres
from bench.postgres import postgres_server as throwaway_server
from study.cli import main
from study.runtime.attrs import trial_attr
from study.storage.database import StorageConfig, build_storage
from tests.messages import assert_not_says, assert_says

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def postgres_url(postgres_server) -> str:
    return postgres_server[0]


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[tuple[str, Callable[[float], None]]]:
    """A throwaway server (``bench.postgres``): its URL, and ``outage(seconds)``, which stops the server
    (clients cut off) and starts it again."""
    with contextlib.ExitStack() as stack:
        try:
            found = stack.enter_context(throwaway_server(max_connections=50))
        except NoPostgres as exc:
            pytest.skip(str(exc))
        yield found


def test_two_workers_on_postgresql_and_the_password_is_never_shown(write_study_config, start_study,
                                                                   postgres_url, capsys):
    path = write_study_config(name="pg", n_trials=4, url="sqlite:///unused.db")
    proc, out, err = start_study(["run", "--config", str(path), "--storage", postgres_url, "--workers", "2"],
                                 "pg")
    assert proc.wait(timeout=240) == 0, err.read_text()[-3000:].replace(PASSWORD, "<password>")
    outputs = [out.read_text() + err.read_text()]
    assert_says(outputs[0], "postgresql://study:***@127.0.0.1")
    assert_not_says(outputs[0], "Traceback")
    study = optuna.load_study(study_name="pg", storage=build_storage(StorageConfig(url=postgres_url)))
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == 4
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states and len(states) == 4
    assert (len({trial_attr(t, "sampler_seed") for t in study.trials})
            == len({trial_attr(t, "pid") for t in study.trials}))
    assert not Path("unused.db").exists()

    assert main(["status", "--name", "pg", "--storage", postgres_url]) == 0
    status = capsys.readouterr()
    assert_says(status.out, "finished 4/4", "best: trial")
    assert main(["best", "--name", "pg", "--json", "--storage", postgres_url]) == 0
    best = capsys.readouterr()
    assert json.loads(best.out)["trial"] == study.user_attrs["test"]["trial"]
    assert main(["status", "--name", "nope", "--storage", postgres_url]) == 2  # an error names the URL
    missing = capsys.readouterr()
    assert_says(missing.err, "postgresql://study:***@")
    # a worker joining from "another machine" when the study is done returns at once
    assert main(["worker", "--name", "pg", "--storage", postgres_url, "--quiet"]) == 0
    joined = capsys.readouterr()
    outputs += [status.out + status.err, best.out + best.err, missing.out + missing.err,
                joined.out + joined.err]
    for text in outputs:
        assert_not_says(text, PASSWORD)
    # nor in what the study stores (the dashboard and reports show these)
    stored = json.dumps([study.user_attrs, study._storage.get_study_system_attrs(study._study_id)]
                        + [[t.user_attrs, t.system_attrs] for t in study.trials], default=str)
    assert PASSWORD not in stored and "study:***@" in stored


@pytest.mark.parametrize("wrong", ["password", "database"])
def test_a_refused_login_or_a_missing_database_is_said_at_once(postgres_url, capsys, wrong) -> None:
    url = (postgres_url.replace(PASSWORD, "not-the-password") if wrong == "password"
           else postgres_url.rsplit("/", 1)[0] + "/no_such_db")
    assert main(["status", "--storage", url]) == 2
    err = capsys.readouterr().err
    assert_says(err, "refused the connection", "retrying would not help")
    assert_not_says(err, "attempt", "not-the-password")  # no retries, and no password shown


def test_a_3_second_outage_kills_no_worker_and_marks_no_live_trial_stale(write_study_config, start_study,
                                                                          postgres_server) -> None:
    url, outage = postgres_server
    path = write_study_config(name="outage", n_trials=4, epochs=8, url="sqlite:///unused.db",
                              storage="heartbeat_interval = 1")  # grace 4 s: shorter than the outage
    proc, out, err = start_study(["run", "--config", str(path), "--storage", url, "--workers", "2"], "outage")
    storage = build_storage(StorageConfig(url=url))
    deadline = time.monotonic() + 180
    while True:  # both workers are inside a trial
        assert proc.poll() is None and time.monotonic() < deadline, err.read_text()[-2000:]
        try:
            running = optuna.load_study(study_name="outage", storage=storage).get_trials(
                states=(TrialState.RUNNING,))
        except KeyError:
            running = []
        if len({trial_attr(t, "pid") for t in running if t.intermediate_values}) == 2:
            break
        time.sleep(0.2)
    outage(3)
    assert proc.wait(timeout=300) == 0, err.read_text()[-3000:].replace(PASSWORD, "<password>")
    said = out.read_text() + err.read_text()
    assert_not_says(said, "Traceback", "UpdateFinishedTrialError", PASSWORD)
    storage = build_storage(StorageConfig(url=url))
    trials = optuna.load_study(study_name="outage", storage=storage).get_trials()
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) == 4
    assert not [t.number for t in trials if t.state == TrialState.FAIL]  # none marked stale, none lost
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
