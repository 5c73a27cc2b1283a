"""What a trusted tool must survive: a corrupt database, several starts of one new study at the same moment,
study names that look like paths, config values Optuna would refuse only at the first trial."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys

import optuna
import pytest
from optuna.trial import TrialState

from study.cli import main
from study.runtime.request import load_config
from study.runtime.trials import inside, study_folder
from tests.messages import assert_not_says, assert_one_paragraph, assert_says


def _corrupt(kind: str, path, good_db) -> None:
    if kind == "random bytes":
        path.write_bytes(bytes(range(256)) * 40)
    elif kind == "text file":
        path.write_text("query,title,label\nshoe,red shoe,3\n")
    else:  # a real study database cut in half
        data = good_db.read_bytes()
        path.write_bytes(data[: len(data) // 2])


@pytest.fixture(scope="module")
def good_db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("good")
    db = folder / "studies.db"
    storage = f"sqlite:///{db}"
    s = optuna.create_study(study_name="t", storage=storage)
    for i in range(200):
        s.enqueue_trial({"x": float(i)}, user_attrs={"pad": "x" * 500})
    return db


@pytest.mark.parametrize("kind", ["random bytes", "text file", "half a database"])
@pytest.mark.parametrize("command", [["status"], ["status", "--name", "t"], ["best", "--name", "t"],
                                     ["run", "--n-trials", "1", "--quiet"], ["list"]])
def test_a_corrupt_database_is_one_paragraph_and_left_untouched(tmp_path, good_db, capsys, kind,
                                                                command) -> None:
    db = tmp_path / "studies.db"
    _corrupt(kind, db, good_db)
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    assert main([*command, "--storage", f"sqlite:///{db}"]) == 2
    err = capsys.readouterr().err
    assert_says(err, "is not a usable study database", "left exactly as it is")
    assert_not_says(err, "Traceback")
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["studies.db"]  # no -wal / -shm created beside it


def test_the_dashboard_refuses_a_corrupt_database_too(tmp_path, good_db, capsys) -> None:
    db = tmp_path / "studies.db"
    _corrupt("half a database", db, good_db)
    assert main(["dashboard", "--storage", f"sqlite:///{db}", "--port", "0"]) == 2
    assert_says(capsys.readouterr().err, "is not a usable study database")


def test_a_healthy_database_in_use_is_not_mistaken_for_a_corrupt_one(tmp_path, good_db, capsys) -> None:
    db = tmp_path / "studies.db"
    shutil.copy(good_db, db)
    with sqlite3.connect(db) as con:  # a reader holds it open, as the dashboard would
        con.execute("SELECT count(*) FROM trials").fetchone()
        assert main(["status", "--name", "t", "--storage", f"sqlite:///{db}"]) == 2  # no config: not ours
    assert_says(capsys.readouterr().err, "was not created by this tool")


def test_three_runs_started_at_once_on_a_new_file_all_succeed_with_the_exact_total(study_toml, tmp_path,
                                                                                    repo_root) -> None:
    path = study_toml()
    cmd = [sys.executable, "-m", "study", "run", "--config", str(path), "--n-trials", "3", "--quiet",
           "--set", "train.epochs=1"]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    results = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [r[1][-2000:] for r in results]
    study = optuna.load_study(study_name="t", storage=load_config(path).storage.url)
    finished = [t for t in study.trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 3
    assert sum(bool(t.user_attrs.get("default_config")) for t in study.trials) == 1  # queued once


@pytest.mark.parametrize("name", ["../../escape", "/abs/path/study", "x" * 200, "a/b", "..", "artifacts",
                                  "résumé plan"])
def test_a_study_name_never_leaves_runs_dir(tmp_path, name) -> None:
    runs = tmp_path / "deep" / "runs"
    folder = study_folder(runs, name)
    assert inside(folder, runs) and folder.parent == runs
    assert len(folder.name) <= 100 and folder.name not in ("", ".", "..", "artifacts")
    assert study_folder(runs, name) == folder  # stable
    assert study_folder(runs, "shoes-v3") == runs / "shoes-v3"  # plain names unchanged


def test_a_hostile_name_keeps_checkpoints_inside_runs_dir_and_delete_cleans_only_there(
        study_toml, tmp_path, capsys) -> None:
    path = study_toml()
    outside = tmp_path / "escape"
    outside.mkdir()
    (outside / "trial_00000").mkdir()  # what a path-like name would have reached, and cleaned up
    name = "../escape"
    assert main(["run", "--config", str(path), "--name", name, "--n-trials", "2", "--quiet",
                 "--set", "train.epochs=1"]) == 0
    runs = tmp_path / "runs"
    folders = [p for p in runs.iterdir() if p.name != "artifacts"]
    assert len(folders) == 1 and folders[0].name.startswith("escape-") and any(folders[0].iterdir())
    assert (outside / "trial_00000").is_dir()
    url = load_config(path).storage.url
    assert main(["delete", name, "--yes", "--storage", url]) == 0
    assert not folders[0].exists() and (outside / "trial_00000").is_dir()
    assert optuna.get_all_study_summaries(url) == []


@pytest.mark.parametrize(("tail", "message"), [
    ('"model.dropout" = { low = 0.0, high = 0.3, log = true }', "log = true, which needs low > 0"),
    ('"train.weight_decay" = { low = 1e-4, high = 0.1, log = true, step = 0.01 }', "is not a valid range"),
])
def test_search_ranges_optuna_would_refuse_are_refused_before_the_study_exists(study_toml, tmp_path, capsys,
                                                                                tail, message) -> None:
    path = study_toml(tail=tail)
    assert main(["run", "--config", str(path), "--quiet"]) == 2
    assert_says(capsys.readouterr().err, message)
    db = tmp_path / "studies.db"
    assert not db.exists() or optuna.get_all_study_summaries(f"sqlite:///{db}") == []


def test_an_empty_study_name_is_refused(study_toml, capsys) -> None:
    assert main(["run", "--config", str(study_toml()), "--name", "", "--quiet"]) == 2
    assert_says(capsys.readouterr().err, "study.name must not be empty")


def test_a_database_that_fills_up_mid_trial_stops_the_run_and_loses_no_trial(write_study_config, capsys,
                                                                            monkeypatch) -> None:
    """SQLite says "database or disk is full" when the first epoch's value is recorded: the per-epoch write is
    retried (bounded), then the run stops with one paragraph and exit 2; the trial is queued again, and once
    there is space the same command finishes the study."""
    path = write_study_config(n_trials=2, epochs=2, storage="connect_attempts = 1")
    real = optuna.storages.RDBStorage.set_trial_intermediate_value

    def full(self, trial_id, step, value):
        if step >= 1:
            raise sqlite3.OperationalError("database or disk is full")
        return real(self, trial_id, step, value)

    monkeypatch.setattr(optuna.storages.RDBStorage, "set_trial_intermediate_value", full)
    assert main(["run", "--config", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert_says(err, "database or disk is full")
    assert_not_says(err, "Traceback")
    trials = optuna.load_study(study_name="t", storage=load_config(path).storage.url).trials
    assert trials[0].state == TrialState.FAIL and trials[0].user_attrs["fail_reason"] == "storage_unavailable"
    assert trials[1].state == TrialState.WAITING and trials[1].params == trials[0].params  # queued again

    monkeypatch.setattr(optuna.storages.RDBStorage, "set_trial_intermediate_value", real)  # space is back
    assert main(["run", "--config", str(path), "--quiet"]) == 0
    done = optuna.load_study(study_name="t", storage=load_config(path).storage.url).trials
    assert sum(t.state == TrialState.COMPLETE for t in done) == 2 and done[1].params == trials[0].params


def test_a_missing_encoder_with_a_frozen_model_is_one_paragraph_before_any_study(study_toml, tmp_path,
                                                                                  capsys) -> None:
    """Issue 19, item 10: a frozen model builds no encoder but reads the pretrained one (zero-shot cosine,
    tokens), so a missing ``model.encoder`` is said before the study is created, not as a traceback after."""
    missing = tmp_path / "no-such-encoder"
    assert main(["run", "--config", str(study_toml()), "--n-trials", "1", "--quiet",
                 "--set", "model.architecture=frozen", "--set", f"model.encoder={missing}"]) == 2
    err = capsys.readouterr().err
    assert_says(err, f"model.encoder {str(missing)!r}", "no config.json there")
    assert_not_says(err, "Traceback", "FileNotFoundError")
    assert_one_paragraph(err[err.index("error:"):])
    assert optuna.get_all_study_names(f"sqlite:///{tmp_path / 'studies.db'}") == []
