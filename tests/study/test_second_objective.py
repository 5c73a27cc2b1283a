"""A study with a second objective (a Pareto front) end to end: run, status, best, export and report."""

from __future__ import annotations

import json

import optuna
import pytest

from study.cli import main
from study.runtime.request import load_config
from tests.messages import assert_says


@pytest.mark.parametrize("second", ["latency", "model_size"])
def test_a_pareto_study_runs_and_every_command_reads_it(study_toml, tmp_path, capsys, second) -> None:
    path = study_toml()
    assert main(["run", "--config", str(path), "--n-trials", "2", "--quiet", "--set", "train.epochs=1",
                 "--set", f'study.second_objective="{second}"']) == 0
    url = load_config(path).storage.url
    study = optuna.load_study(study_name="t", storage=url)
    assert len(study.directions) == 2 and all(len(t.values) == 2 for t in study.trials)
    capsys.readouterr()
    assert main(["status", "--name", "t", "--storage", url]) == 0
    out = capsys.readouterr().out
    assert_says(out, "finished 2/2", study.metric_names[1])
    assert main(["best", "--name", "t", "--json", "--storage", url]) == 0
    best = json.loads(capsys.readouterr().out)
    assert best["metric_names"] == study.metric_names and best["pareto_front"]
    assert best["trial"] == max(study.trials, key=lambda t: t.values[0]).number
    assert main(["export", "--name", "t", "--out", str(tmp_path / "model"), "--storage", url]) == 0
    assert (tmp_path / "model" / "ranker.json").is_file()
    assert main(["report", "--name", "t", "--out", str(tmp_path / "r.html"), "--storage", url]) == 0
    assert "Pareto" in (tmp_path / "r.html").read_text()
