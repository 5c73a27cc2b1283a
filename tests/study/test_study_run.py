"""Real studies in a temporary SQLite file, driven through the CLI and the Python API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from study.cli import main
from study.config import load_config
from study.objective import Objective
from study.studies import create_or_resume
from study.workspace import prepare_workspace

CPU = torch.device("cpu")


def write_config(tmp_path: Path, tiny_bert: Path, **extra: str) -> Path:
    text = f"""
[study]
name = "t"
n_trials = 3
runs_dir = "{tmp_path / 'runs'}"
device = "cpu"
[storage]
url = "sqlite:///{tmp_path / 'studies.db'}"
[sampler]
name = "random"
[pruner]
name = "median"
n_startup_trials = 1
n_warmup_steps = 0
[data]
n_queries = 24
items_per_query = 6
[model]
encoder = "{tiny_bert}"
max_length = 32
[train]
epochs = 2
batch_size = 16
[search]
"train.head_lr" = {{ low = 1e-3, high = 1e-2, log = true }}
"train.loss" = {{ choices = ["listnet", "ranknet"] }}
{extra.get('tail', '')}
"""
    path = tmp_path / "study.toml"
    path.write_text(text)
    return path


def test_three_trial_study_with_a_pruned_trial(tmp_path, tiny_bert, capsys) -> None:
    path = write_config(tmp_path, tiny_bert)
    config = load_config(path)
    ws = prepare_workspace(config, CPU)
    study = create_or_resume(config, fingerprint=ws.pairs.fingerprint(), summary=ws.summary())
    # trial 0 is the untuned default, queued at creation; trial 1 gets a diverging learning rate below: the NaN
    # loss prunes it with a reason
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
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    for t in done:
        attrs = t.user_attrs
        assert set(attrs) >= {"val_metrics", "curve", "epochs_run", "wall_time_s", "pairs_per_second",
                              "peak_gpu_memory_mb", "device", "config", "checkpoint", "host", "pid"}
        assert len(t.intermediate_values) == attrs["epochs_run"] + 1 == 3  # epoch 0: before training
        assert attrs["val_metrics"]["ndcg@10"] == pytest.approx(t.value)
    assert study.user_attrs["dataset_fingerprint"] == ws.pairs.fingerprint()
    assert "versions" in study.user_attrs and study.metric_names == ["ndcg@10"]
    test = study.user_attrs["test"]
    assert test["trial"] == max(done, key=lambda t: t.value).number and 0 < test["metrics"]["ndcg@10"] <= 1
    assert set(study.user_attrs["baselines"]) >= {"random", "behaviour_only", "zero_shot_encoder"}
    assert Path(max(done, key=lambda t: t.value).user_attrs["checkpoint"]).is_file()

    capsys.readouterr()
    storage = ["--storage", config.storage.url]
    assert main(["status", "--name", "t", *storage]) == 0
    out = capsys.readouterr().out
    n_pruned = states.count(TrialState.PRUNED)  # the random third trial may also fall below the median
    assert "finished 3/3" in out and f"pruned {n_pruned}" in out and "best: trial" in out
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
    assert "dataset differs" in err and "--name" in err
    assert len(optuna.load_study(study_name="t", storage=config.storage.url).trials) == 4


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def test_objective_reports_each_epoch_and_stops_when_pruned(tmp_path, tiny_bert) -> None:
    config = load_config(write_config(tmp_path, tiny_bert))
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


@pytest.mark.parametrize("sampler", ["tpe", "random", "grid", "qmc", "gp", "cmaes"])
def test_every_sampler_runs(tmp_path, tiny_bert, sampler) -> None:
    from study.samplers import SamplerConfig, build_sampler

    config = load_config(write_config(tmp_path, tiny_bert), overrides=[f"sampler.name={sampler}"])
    s = build_sampler(SamplerConfig(name=sampler, n_startup_trials=1), seed=0, search_space=config.search)
    study = optuna.create_study(direction="maximize", sampler=s)
    from study.space import suggest

    for _ in range(3):
        trial = study.ask()
        params = suggest(trial, config.search)
        study.tell(trial, params["train.head_lr"] * (2 if params["train.loss"] == "listnet" else 1))
    assert len(study.trials) == 3


@pytest.mark.parametrize("pruner", ["median", "successive_halving", "hyperband", "patient", "none"])
def test_every_pruner_builds(pruner) -> None:
    from study.samplers import PrunerConfig, build_pruner

    assert isinstance(build_pruner(PrunerConfig(name=pruner), max_epochs=4), optuna.pruners.BasePruner)


def test_a_closed_pipe_does_not_stop_the_study(tmp_path, tiny_bert) -> None:
    """``study run 2>&1 | head -1``: the reader goes away after one line; the study still finishes."""
    path = write_config(tmp_path, tiny_bert)
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-m", "study", "run", "--config", str(path)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1"})
    assert proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(timeout=300) == 0
    study = optuna.load_study(study_name="t", storage=f"sqlite:///{tmp_path / 'studies.db'}")
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == 3
    assert TrialState.FAIL not in states and "test" in study.user_attrs
