"""Known-good configs first: [[enqueue]] tables and --enqueue JSON, and a warm start from another study."""

from __future__ import annotations

import optuna
import pytest

from study.cli import main
from study.runtime.request import load_config
from tests.messages import assert_says

FAST = ["--quiet", "--set", "train.epochs=1"]


def _trials(path, name="t"):
    return optuna.load_study(study_name=name, storage=load_config(path).storage.url).trials


def test_enqueued_configs_run_right_after_the_default_and_only_once(study_toml, capsys) -> None:
    path = study_toml()
    path.write_text(path.read_text() + '\n[[enqueue]]\n"train.head_lr" = 0.005\n"train.loss" = "ranknet"\n')
    args = ["run", "--config", str(path), "--n-trials", "3", *FAST,
            "--enqueue", '{"train.head_lr": 0.002, "train.loss": "listnet"}']
    assert main(args) == 0
    trials = _trials(path)
    assert trials[0].user_attrs["default_config"]
    assert trials[1].params == {"train.head_lr": 0.005, "train.loss": "ranknet"}
    assert trials[2].params == {"train.head_lr": 0.002, "train.loss": "listnet"}
    assert main(["run", "--config", str(path), "--n-trials", "4", *FAST,
                 "--enqueue", '{"train.head_lr": 0.002, "train.loss": "listnet"}']) == 0
    again = _trials(path)
    assert len(again) == 4 and sum(t.params == trials[2].params for t in again) == 1  # not queued twice


@pytest.mark.parametrize(("entry", "message"), [
    ('{"train.epochs": 3}', "is not searched"),
    ('{"train.head_lr": 5.0}', "outside its search range"),
    ('{"train.loss": "hinge"}', "outside its search range"),
    ("train.head_lr=0.01", "expects a JSON object"),
])
def test_a_bad_enqueue_entry_is_refused_before_the_study_exists(study_toml, tmp_path, capsys, entry,
                                                                message) -> None:
    assert main(["run", "--config", str(study_toml()), "--enqueue", entry, "--quiet"]) == 2
    assert_says(capsys.readouterr().err, message)
    assert not (tmp_path / "studies.db").exists()


def test_a_warm_start_runs_the_other_studys_best_configs_first(study_toml, capsys) -> None:
    path = study_toml()
    assert main(["run", "--config", str(path), "--n-trials", "3", *FAST]) == 0
    source = sorted((t for t in _trials(path) if t.values), key=lambda t: t.values[0], reverse=True)
    assert main(["run", "--config", str(path), "--name", "t2", "--n-trials", "3", "--warm-start-from", "t",
                 "--set", "study.warm_start_trials=2", *FAST]) == 0
    warm = _trials(path, "t2")
    assert warm[0].user_attrs["default_config"]
    seeded = [t for t in warm if "warm_start_from" in t.user_attrs]
    expected = [s for s in source if s.params != warm[0].params]  # the default already runs: not queued again
    assert [t.user_attrs["warm_start_from"] for t in seeded][:1] == [f"t#{expected[0].number}"]
    assert all(t.params in [s.params for s in source] for t in seeded) and 1 <= len(seeded) <= 2
    capsys.readouterr()
    assert main(["run", "--config", str(path), "--name", "t3", "--warm-start-from", "nope", *FAST]) == 2
    assert_says(capsys.readouterr().err, "no such study")
    summaries = optuna.get_all_study_summaries(load_config(path).storage.url, include_best_trial=False)
    assert "t3" not in {s.study_name for s in summaries}  # refused before anything was created


def test_a_warm_start_from_a_disjoint_space_leaves_no_study_behind(study_toml, write_study_config,
                                                                   capsys) -> None:
    path = study_toml()
    assert main(["run", "--config", str(path), "--n-trials", "2", *FAST]) == 0
    other = write_study_config(name="d", search='"model.dropout" = { low = 0.0, high = 0.3 }\n')
    capsys.readouterr()
    assert main(["run", "--config", str(other), "--warm-start-from", "t", *FAST]) == 2
    assert_says(capsys.readouterr().err, "none of its trials' parameters fit", "nothing was created")
    summaries = optuna.get_all_study_summaries(load_config(path).storage.url, include_best_trial=False)
    assert {s.study_name for s in summaries} == {"t"}
