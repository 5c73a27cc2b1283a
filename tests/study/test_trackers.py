"""Experiment trackers: off unless asked for; with --tracker mlflow every finished trial is an MLflow run."""

from __future__ import annotations

from study.cli import main
from tests.messages import assert_says


def test_every_finished_trial_is_logged_to_mlflow(study_toml, tmp_path) -> None:
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["--n-trials", "2", "--quiet", "--set", "train.epochs=1", "--tracker", "mlflow"]
    assert main(["run", "--config", str(study_toml()), *args, "--set", f'study.tracker_uri="{uri}"']) == 0
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("t")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 2 and all("ndcg_at_10" in r.data.metrics for r in runs)
    assert {r.data.params["train.loss"] for r in runs} <= {"listnet", "ranknet"}


def test_no_tracker_unless_asked_and_a_missing_package_is_one_paragraph(study_toml, tmp_path, capsys,
                                                                        monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    assert main(["run", "--config", str(study_toml()), "--tracker", "wandb", "--quiet"]) == 2
    assert_says(capsys.readouterr().err, "needs wandb", "pip install 'study[wandb]'")
    assert not (tmp_path / "studies.db").exists()  # refused before the study was created
