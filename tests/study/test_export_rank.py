"""Export the best trial, move the directory, rank candidates with it: the scores equal the in-study model's;
cold-start (missing behaviour columns) warns and works; a file without any of the model's text columns is exit
code 2."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from study.cli import main
from tests.messages import assert_not_says, assert_says, says

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, study_toml_in) -> dict:
    """A finished tiny study, its best model exported and then moved elsewhere, and its test split as CSV."""
    from study.runtime.request import load_config
    from study.workspace import prepare_workspace

    tmp = tmp_path_factory.mktemp("export-study")
    path = study_toml_in(tmp)
    storage = f"sqlite:///{tmp / 'studies.db'}"
    assert main(["run", "--config", str(path), "--n-trials", "2", "--set", "study.baselines=false",
                 "--quiet"]) == 0
    assert main(["export", "--name", "t", "--storage", storage, "--out", str(tmp / "export")]) == 0
    moved = tmp / "elsewhere" / "model"
    moved.parent.mkdir()
    shutil.move(tmp / "export", moved)
    config = load_config(path)
    ws = prepare_workspace(config, CPU)
    frame = ws.split("test").frame.drop(columns=["label"])
    csv = tmp / "candidates.csv"
    frame.sample(frac=1.0, random_state=0).to_csv(csv, index=False)  # shuffled: rank must regroup the queries
    return {"tmp": tmp, "storage": storage, "model": moved, "csv": csv, "frame": frame, "ws": ws}


def _in_study_scores(ex: dict) -> pd.Series:
    """The best trial's checkpoint scored on the workspace's own test tensors, by (query_id, product_id)."""
    import optuna
    from study.models.train import predict

    from study.runtime.checkpoints import load_trial_model
    from study.runtime.trials import best_trial

    study = optuna.load_study(study_name="t", storage=ex["storage"])
    model, config, _ = load_trial_model(best_trial(study))
    split = ex["ws"].tensors("test", config.model)
    scores = predict(model, split, batch_size=64, dtype=torch.float32)
    keys = pd.MultiIndex.from_arrays([split.frame["query_id"].astype(str),
                                      split.frame["product_id"].astype(str)])
    return pd.Series(scores, index=keys)


def _scores(frame: pd.DataFrame) -> pd.Series:
    keys = pd.MultiIndex.from_arrays([frame["query_id"].astype(str), frame["product_id"].astype(str)])
    return pd.Series(frame["score"].to_numpy(float), index=keys)


def test_export_directory_is_self_contained(exported) -> None:
    model = exported["model"]
    for name in ("model.safetensors", "ranker.json", "feature_scaler.json", "study_config.json",
                 "metrics.json", "README.md", "encoder/config.json", "encoder/tokenizer_config.json"):
        assert (model / name).is_file(), name
    spec = json.loads((model / "ranker.json").read_text())
    assert spec["model"]["encoder"] == "encoder" and spec["text_fields"] and spec["feature_fields"]
    metrics = json.loads((model / "metrics.json").read_text())
    assert metrics["trial"] == spec["trial"] and metrics["validation"]["ndcg@10"] > 0
    assert "study rank --model" in (model / "README.md").read_text()


def test_moved_export_ranks_like_the_in_study_model(exported, monkeypatch, capsys) -> None:
    import transformers

    from study.export.scoring import Ranker

    real = transformers.AutoModel.from_pretrained

    def only_inside_the_export(path, *args, **kwargs):  # the prior's encoder travels inside the export
        if not Path(path).resolve().is_relative_to(exported["model"].resolve()):
            raise AssertionError(f"an export must not need a pretrained checkpoint outside it, got {path}")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", only_inside_the_export)
    out = exported["tmp"] / "ranked.csv"
    assert main(["rank", "--model", str(exported["model"]), "--input", str(exported["csv"]),
                 "--output", str(out)]) == 0
    assert_says(capsys.readouterr().out, "ranked")
    ranked = pd.read_csv(out, dtype={"query_id": str, "product_id": str})
    assert len(ranked) == len(exported["frame"])
    expected = _in_study_scores(exported)
    got = _scores(ranked).reindex(expected.index)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=1e-5, atol=1e-5)
    for _, group in ranked.groupby("query_id", sort=False):
        assert list(group["rank"]) == list(range(1, len(group) + 1))
        assert group["score"].is_monotonic_decreasing
    blocks = (ranked["query_id"] != ranked["query_id"].shift()).sum()
    assert blocks == ranked["query_id"].nunique()  # each query's rows are together
    # the Python API gives the same, and parquet / jsonl outputs work
    df = pd.read_csv(exported["csv"], dtype={"query_id": str, "product_id": str})
    api = Ranker.load(exported["model"]).rank(df)
    pd.testing.assert_series_equal(api["score"], ranked["score"], check_names=False, rtol=1e-6)
    for suffix in (".parquet", ".jsonl"):
        assert main(["rank", "--model", str(exported["model"]), "--input", str(exported["csv"]),
                     "--output", str(out.with_suffix(suffix))]) == 0


def test_missing_behaviour_columns_warn_and_rank_as_cold_start(exported, caplog) -> None:
    from study.export.scoring import Ranker

    frame = exported["frame"].drop(columns=["clicks", "purchases"]).drop(columns=["query_id"])
    with caplog.at_level(logging.WARNING, logger="study.export.scoring"):
        ranked = Ranker.load(exported["model"]).rank(frame)
    assert any(says(r.getMessage(), "clicks") and says(r.getMessage(), "cold-start") for r in caplog.records)
    assert len(ranked) == len(frame) and np.isfinite(ranked["score"]).all()
    assert ranked["query_id"].str.startswith("q").all()  # derived from the query text


def test_no_text_column_at_all_exits_2(exported, tmp_path, capsys) -> None:
    bad = tmp_path / "no_title.csv"
    texts = json.loads((exported["model"] / "ranker.json").read_text())["text_fields"]
    # one missing is empty text: see test_rank_lenient
    exported["frame"].drop(columns=texts).to_csv(bad, index=False)
    code = main(["rank", "--model", str(exported["model"]), "--input", str(bad), "--output",
                 str(tmp_path / "o.csv")])
    assert code == 2
    err = capsys.readouterr().err
    assert_says(err, "'title'", "no_title.csv")
    assert_not_says(err, "Traceback")
    assert not (tmp_path / "o.csv").exists()


def test_export_refuses_to_overwrite_and_retrains_on_request(exported, capsys) -> None:
    out = exported["tmp"] / "again"
    args = ["export", "--name", "t", "--storage", exported["storage"], "--out", str(out)]
    assert main(args) == 0
    assert main(args) == 2
    assert_says(capsys.readouterr().err, "already exists")
    assert main([*args, "--force", "--retrain", "--device", "cpu"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    retrained = metrics["retrained"]
    assert retrained["train_queries"] > 0 and 0 < retrained["test"]["ndcg@10"] <= 1
    assert json.loads((out / "ranker.json").read_text())["retrained"] is True


@pytest.mark.parametrize("architecture", ["frozen", "two_tower", "cross"])
def test_every_architecture_exports_and_ranks_like_the_study(tmp_path: Path, study_toml,
                                                             architecture: str) -> None:
    """Match features and the zero-shot prior travel with the export; two-tower tokenises query and product
    apart."""
    import optuna
    from study.models.train import predict

    from study.export.scoring import Ranker
    from study.runtime.checkpoints import load_trial_model
    from study.runtime.request import load_config
    from study.runtime.trials import best_trial
    from study.workspace import prepare_workspace

    path = study_toml()
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    assert main(["run", "--config", str(path), "--n-trials", "1", "--set", "study.baselines=false", "--quiet",
                 "--set", f"model.architecture={architecture}", "--set", "model.match_features=true"]) == 0
    assert main(["export", "--name", "t", "--storage", storage, "--out", str(tmp_path / "export")]) == 0
    spec = json.loads((tmp_path / "export" / "ranker.json").read_text())
    assert spec["model"]["architecture"] == architecture and spec["match"] is True
    assert (tmp_path / "export" / "match_features.json").is_file()
    assert (tmp_path / "export" / "prior_encoder" / "config.json").is_file() == (architecture == "frozen")
    config = load_config(path, overrides=[f"model.architecture={architecture}", "model.match_features=true"])
    ws = prepare_workspace(config, CPU)
    study = optuna.load_study(study_name="t", storage=storage)
    model, trial_config, _ = load_trial_model(best_trial(study))
    split = ws.tensors("test", trial_config.model)
    expected = predict(model, split, batch_size=64, dtype=torch.float32)
    frame = split.frame.drop(columns=["label"]).sample(frac=1.0, random_state=0)
    ranked = Ranker.load(tmp_path / "export").rank(frame)
    got = _scores(ranked).reindex(pd.MultiIndex.from_arrays([split.frame["query_id"].astype(str),
                                                             split.frame["product_id"].astype(str)]))
    np.testing.assert_allclose(got.to_numpy(), expected, rtol=1e-5, atol=1e-5)
