"""Real studies in a temporary SQLite file, driven through the CLI and the Python API."""

from __future__ import annotations

import datetime
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from study.cli import main
from study.objective import Objective
from study.runtime.attrs import study_attr, trial_attr
from study.runtime.request import load_config
from study.runtime.studies import create_or_resume
from study.runtime.worker import run_worker
from study.samplers import SAMPLERS
from study.space import grid_values, suggest
from study.storage.identity import generation as study_generation
from study.workspace import prepare_workspace
from tests.messages import assert_says

CPU = torch.device("cpu")


def test_three_trial_study_with_a_pruned_trial(study_toml, capsys) -> None:
    path = study_toml()
    config = load_config(path)
    ws = prepare_workspace(config, CPU)
    study = create_or_resume(config, fingerprint=ws.pairs.fingerprint(), summary=ws.summary())
    # trial 0 is the untuned default, queued at creation; trial 1 gets a diverging learning rate below: the
    # NaN loss prunes it with a reason
    study.enqueue_trial({"train.head_lr": 3e-3, "train.loss": "listnet"}, user_attrs={"note": "nan"})
    study.enqueue_trial({"train.head_lr": 3e-3, "train.loss": "listnet"})
    with pytest.MonkeyPatch.context() as mp:
        import study.models.train as train_mod

        real_fit = train_mod.fit

        def fit_with_nan_for_trial_1(model, train, val, cfg, **kw):
            if kw["checkpoint_path"].parent.name.endswith("00001"):
                import dataclasses

                cfg = dataclasses.replace(cfg, head_lr=1e30, encoder_lr=1e30, grad_clip=0.0, loss="mse")
            return real_fit(model, train, val, cfg, **kw)

        mp.setattr("study.objective.fit", fit_with_nan_for_trial_1)
        assert main(["run", "--config", str(path), "--quiet"]) == 0
    study = optuna.load_study(study_name="t", storage=config.storage.url)
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == 3
    assert study.trials[0].user_attrs["default_config"] and study.trials[1].user_attrs["note"] == "nan"
    assert study.trials[0].params == {"train.head_lr": config.train.head_lr, "train.loss": config.train.loss}
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned and "non_finite_loss" in pruned[0].user_attrs["prune_reason"]
    (generation,) = (Path(config.study.runs_dir) / "t").iterdir()  # runs/<study>/<generation>/trial_<n>
    assert generation.name == study_generation(study)[:8]
    folders = [d for d in generation.iterdir() if d.is_dir()]
    assert all(any(d.iterdir()) for d in folders)  # a pruned trial leaves no empty folder behind
    assert {d.name for d in folders} == {f"trial_{t.number:05d}" for t in study.trials
                                         if t.state == TrialState.COMPLETE}
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    for t in done:
        attrs = t.user_attrs  # what the dashboard shows: few, readable; the rest are system attributes
        assert set(attrs) - {"default_config", "note"} == {"val_metrics", "best_epoch", "epochs_run",
                                                           "wall_time_s", "device"}
        assert set(attrs["val_metrics"]) == {"ndcg@10", "mrr", "map", "recall@10", "roc_auc"}
        assert set(t.system_attrs) >= {"curve", "pairs_per_second", "peak_gpu_memory_mb", "config",
                                       "checkpoint", "host", "pid", "val_metrics_all"}
        assert len(t.intermediate_values) == attrs["epochs_run"] + 1 == 3  # epoch 0: before training
        assert attrs["val_metrics"]["ndcg@10"] == pytest.approx(t.value)
    assert study_attr(study, "dataset_fingerprint") == ws.pairs.fingerprint()
    # the dashboard's study list stays readable
    assert set(study.user_attrs) == {"data", "created_at", "test"}
    assert study_attr(study, "versions") is not None and study.metric_names == ["ndcg@10"]
    test = study.user_attrs["test"]
    assert test["trial"] == max(done, key=lambda t: t.value).number and 0 < test["metrics"]["ndcg@10"] <= 1
    assert set(study_attr(study, "baselines")) >= {"random", "behaviour_only", "zero_shot_encoder"}
    assert Path(trial_attr(max(done, key=lambda t: t.value), "checkpoint")).is_file()

    capsys.readouterr()
    storage = ["--storage", config.storage.url]
    assert main(["status", "--name", "t", *storage]) == 0
    out = capsys.readouterr().out
    n_pruned = states.count(TrialState.PRUNED)  # the random third trial may also fall below the median
    assert_says(out, "finished 3/3", f"pruned {n_pruned}", "best: trial")
    assert main(["best", "--name", "t", "--json", *storage]) == 0
    best = json.loads(capsys.readouterr().out)
    assert best["trial"] == test["trial"] and best["test_metrics"] == test["metrics"]
    assert best["comparison"]["best_trial"] == test["trial"]

    # same name again = resume: the study is complete, nothing more runs
    assert main(["run", "--config", str(path), "--quiet"]) == 0
    assert len(optuna.load_study(study_name="t", storage=config.storage.url).trials) == 3
    # a larger target runs only what is missing
    assert main(["run", "--config", str(path), "--n-trials", "4", "--quiet"]) == 0
    study = optuna.load_study(study_name="t", storage=config.storage.url)
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials) == 4

    # other data under the same name is refused, and nothing stored is touched
    assert main(["run", "--config", str(path), "--set", "data.seed=7", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert_says(err, "dataset differs", "--name")
    assert len(optuna.load_study(study_name="t", storage=config.storage.url).trials) == 4


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def test_objective_reports_each_epoch_and_stops_when_pruned(study_toml) -> None:
    config = load_config(study_toml())
    ws = prepare_workspace(config, CPU)
    study = optuna.create_study(direction="maximize", pruner=AlwaysPrune())
    study.optimize(Objective(config, ws), n_trials=1)
    trial = study.trials[0]
    assert trial.state == TrialState.PRUNED
    assert list(trial.intermediate_values) == [0, 1]  # epoch 0 is never pruned; stopped right after epoch 1
    assert trial.user_attrs["epochs_run"] == 1 and "ndcg@10" in trial.user_attrs["val_metrics"]

    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    study.optimize(Objective(config, ws), n_trials=1)
    assert list(study.trials[0].intermediate_values) == [0, 1, 2]


SAMPLER_CLASSES = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler,
                   "grid": optuna.samplers.GridSampler, "qmc": optuna.samplers.QMCSampler,
                   "gp": optuna.samplers.GPSampler, "cmaes": optuna.samplers.CmaEsSampler}


def _proposals(path: Path, sampler: str) -> tuple[optuna.Study, list[dict]]:
    """A 7-trial study named after ``sampler``, run by this tool's worker loop with a stand-in objective (a
    formula of the params, no training): the study the worker used and the params of every trial."""
    config = load_config(path, overrides=[f"sampler.name={sampler}", f'study.name="{sampler}"',
                                          "study.n_trials=7", "sampler.n_startup_trials=2",
                                          "pruner.name=none"])
    create_or_resume(config, fingerprint="f", summary={})

    def score(params: dict) -> float:
        return (-abs(math.log10(params["train.head_lr"]) + 2.5) - params["model.dropout"]
                + 0.1 * (params["train.loss"] == "listnet"))

    study = run_worker(config, objective_factory=lambda cfg: lambda trial: score(suggest(trial, cfg.search)))
    return study, [t.params for t in study.trials]


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_is_the_one_that_proposes_the_trials(study_toml, sampler) -> None:
    # two continuous parameters: CMA-ES hands a one-dimensional space to its random fallback
    path = study_toml(tail='"model.dropout" = { low = 0.0, high = 0.3 }')
    study, params = _proposals(path, sampler)
    assert type(study.sampler) is SAMPLER_CLASSES[sampler]
    assert len(params) == 7 and study.trials[0].user_attrs["default_config"]
    if sampler != "random":  # same seeds, same trial 0: only the sampler can make the proposals differ
        assert params[1:] != _proposals(path, "random")[1][1:]
    if sampler == "grid":  # every proposal after the queued default is a distinct point of the grid
        grid = grid_values(load_config(path).search)
        assert all(p[k] in grid[k] for p in params[1:] for k in grid)
        assert len({tuple(sorted(p.items())) for p in params[1:]}) == 6


def _pruned_at(study: optuna.Study, values: list[float]) -> int | None:
    """One trial as the objective runs it (epoch 0 reported and never pruned): the epoch it was pruned at."""
    trial = study.ask()
    for step, value in enumerate(values):
        trial.report(value, step)
        if step and trial.should_prune():
            study.tell(trial, state=TrialState.PRUNED)
            return step
    study.tell(trial, values[-1])
    return None


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.parametrize(("pruner", "falling_pruned_at", "rising_pruned_at"), [
    ("median", 1, 1),  # n_warmup_steps = 1: from epoch 1 on, below the median is pruned
    ("successive_halving", 1, 1),  # the first rung is at epoch 1 (min_resource); the bottom of it stops
    ("hyperband", "some", "some"),  # a trial's bracket (its first rung: epoch 1 or 3) depends on its number
    ("patient", 2, None),  # patience = 1: only a trial that stopped improving gets the median test
    ("none", None, None),
])
def test_every_pruner_prunes_the_trials_it_should(pruner, falling_pruned_at, rising_pruned_at) -> None:
    from study.samplers import PrunerConfig, build_pruner

    study = optuna.create_study(direction="maximize", study_name="pruners",
                                pruner=build_pruner(PrunerConfig(name=pruner), max_epochs=4))
    # eight ordinary trials, each a little better than the last (so that none of them is pruned)
    ordinary = [_pruned_at(study, [0.5 + 0.01 * k + 0.05 * epoch for epoch in range(5)]) for k in range(8)]
    assert ordinary == [None] * 8
    falling = _pruned_at(study, [0.10, 0.09, 0.08, 0.07, 0.06])  # far below the others and getting worse
    rising = _pruned_at(study, [0.10, 0.20, 0.30, 0.40, 0.45])  # far below the others but still improving
    best = _pruned_at(study, [0.99] * 5)
    assert best is None
    for got, expected in ((falling, falling_pruned_at), (rising, rising_pruned_at)):
        assert got is not None if expected == "some" else got == expected
    states = [t.state for t in study.trials]
    assert states.count(TrialState.PRUNED) == sum(x is not None for x in (falling, rising))


def test_a_closed_pipe_does_not_stop_the_study(tmp_path, study_toml, repo_root) -> None:
    """``study run 2>&1 | head -1``: the reader goes away after one line; the study still finishes."""
    path = study_toml()
    proc = subprocess.Popen([sys.executable, "-m", "study", "run", "--config", str(path)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": str(repo_root), "HF_HUB_OFFLINE": "1"})
    assert proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(timeout=300) == 0
    study = optuna.load_study(study_name="t", storage=f"sqlite:///{tmp_path / 'studies.db'}")
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == 3
    assert TrialState.FAIL not in states and "test" in study.user_attrs


def test_a_timeout_starts_no_trial_after_it_and_the_study_resumes_to_its_target(study_toml, monkeypatch,
                                                                                capsys) -> None:
    import study.objective as objective_mod

    path = study_toml()
    url = load_config(path).storage.url
    timeout = 2.0
    real_fit = objective_mod.fit

    def slow_fit(model, train, val, cfg, **kw):
        # the timeout (counted from before the first claim) has passed when this trial ends
        time.sleep(timeout)
        return real_fit(model, train, val, cfg, **kw)

    fast = ["--set", "train.epochs=1", "--set", "pruner.name=none",
            "--set", "study.baselines=false", "--quiet"]
    with monkeypatch.context() as mp:
        mp.setattr(objective_mod, "fit", slow_fit)
        assert main(["run", "--config", str(path), "--timeout", str(timeout), *fast]) == 0
    study = optuna.load_study(study_name="t", storage=url)
    assert [(t.number, t.state) for t in study.trials] == [(0, TrialState.COMPLETE)]  # nothing started after
    assert study_attr(study, "config")["study"]["timeout"] == timeout
    # the run still finished properly: the best so far is tested
    assert study.user_attrs["test"]["trial"] == 0
    capsys.readouterr()
    assert main(["status", "--name", "t", "--storage", url]) == 0
    assert_says(capsys.readouterr().out, "finished 1/3")

    assert main(["run", "--config", str(path), *fast]) == 0  # the file sets no timeout: on to n_trials
    study = optuna.load_study(study_name="t", storage=url)
    assert [(t.number, t.state) for t in study.trials] == [(n, TrialState.COMPLETE) for n in range(3)]
    assert study_attr(study, "config")["study"]["timeout"] == 0


def test_new_replaces_the_study_its_trials_and_its_checkpoints(tmp_path, study_toml) -> None:
    path = study_toml()
    config = load_config(path)
    fast = ["--set", "train.epochs=1", "--set", "pruner.name=none",
            "--set", "study.baselines=false", "--quiet"]
    assert main(["run", "--config", str(path), *fast]) == 0
    study = optuna.load_study(study_name="t", storage=config.storage.url)
    assert len(study.trials) == 3
    folder = tmp_path / "runs" / "t"
    assert sorted(p.name for p in folder.glob("*/*")) == ["trial_00000", "trial_00001", "trial_00002"]
    (old_generation,) = folder.iterdir()
    old_weights = {p: p.stat().st_mtime_ns for p in folder.glob("*/trial_*/*") if p.is_file()}
    assert old_weights
    replaced_at = datetime.datetime.now()  # what optuna stamps trials with

    assert main(["run", "--config", str(path), "--new", "--n-trials", "1", *fast]) == 0
    study = optuna.load_study(study_name="t", storage=config.storage.url)
    (fresh,) = study.trials  # the three old trials are gone, not counted toward the new target
    assert fresh.datetime_start >= replaced_at and fresh.number == 0 and fresh.state == TrialState.COMPLETE
    assert fresh.user_attrs["default_config"]
    assert fresh.params == {"train.head_lr": config.train.head_lr, "train.loss": config.train.loss}
    assert study.user_attrs["test"]["trial"] == 0 and study_attr(study, "config")["study"]["n_trials"] == 1
    # the old study's checkpoint folders went with it; only the new trial 0 wrote one
    (new_generation,) = folder.iterdir()
    assert new_generation.name != old_generation.name
    assert sorted(p.name for p in new_generation.iterdir()) == ["trial_00000"]
    assert not [p for p, mtime in old_weights.items() if p.exists() and p.stat().st_mtime_ns == mtime]
