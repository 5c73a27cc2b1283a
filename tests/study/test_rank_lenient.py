"""`study rank` takes the candidates users have: a missing text column is scored as empty text (with a
warning), product_id and label are optional, --map renames columns, and only what rank needs is ever demanded.
A bad output name is refused before the model is loaded."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pandas as pd
import pytest

from study.cli import main
from tests.messages import assert_not_says, assert_says, flatten, says


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory, study_toml_in) -> dict:
    """A one-trial tiny study exported, and candidates (its built-in catalogue's first queries, no labels)."""
    from study.data.config import DataConfig
    from study.data.sources import load_dataset

    tmp = tmp_path_factory.mktemp("rank-lenient")
    config = study_toml_in(tmp)
    assert main(["run", "--config", str(config), "--n-trials", "1", "--set", "train.epochs=1",
                 "--set", "study.baselines=false", "--quiet"]) == 0
    out = tmp / "model"
    assert main(["export", "--name", "t", "--storage", f"sqlite:///{tmp / 'studies.db'}",
                 "--out", str(out)]) == 0
    shutil.rmtree(tmp / "runs")  # the export stands alone
    pairs = load_dataset(DataConfig(n_queries=24, items_per_query=6), log_warnings=False)
    frame = pairs.frame[pairs.frame["query_id"].isin(pairs.frame["query_id"].unique()[:4])]
    spec = json.loads((out / "ranker.json").read_text())
    return {"dir": out, "frame": frame.reset_index(drop=True), "text_fields": spec["text_fields"]}


def _rank(model: dict, frame: pd.DataFrame) -> pd.DataFrame:
    from study.export.scoring import Ranker

    return Ranker.load(model["dir"]).rank(frame, source="candidates.csv")


def _by_product(ranked: pd.DataFrame) -> pd.Series:
    return ranked.set_index(["query", "product_id"])["score"].sort_index()


def test_a_missing_text_column_is_scored_as_empty_text_with_a_warning(model, caplog) -> None:
    assert "brand" in model["text_fields"]
    without = model["frame"].drop(columns=["brand", "label"])
    with caplog.at_level(logging.WARNING, logger="study.export.scoring"):
        ranked = _rank(model, without)
    [message] = [r.getMessage() for r in caplog.records if says(r.getMessage(), "text column")]
    assert_says(message, "candidates.csv: text column(s) brand missing", "empty text")
    blank = _rank(model, model["frame"].assign(brand=""))
    pd.testing.assert_series_equal(_by_product(ranked), _by_product(blank), rtol=1e-6)
    assert not np.allclose(_by_product(ranked), _by_product(_rank(model, model["frame"])))  # brand did count


def test_a_file_with_none_of_the_text_columns_is_refused_naming_only_what_rank_needs(model, tmp_path,
                                                                                      capsys) -> None:
    path = tmp_path / "ids_only.csv"
    model["frame"][["query", "product_id", "price"]].to_csv(path, index=False)
    out = tmp_path / "ranked.csv"
    assert main(["rank", "--model", str(model["dir"]), "--input", str(path), "--output", str(out)]) == 2
    err = flatten(capsys.readouterr().err)
    needed = err[err.index("missing "):err.index(". Ranking needs")]
    assert needed == f"missing one of the model's text columns ({', '.join(map(repr, model['text_fields']))})"
    assert "label" not in needed and "product_id" not in needed and not out.exists()
    no_query = tmp_path / "no_query.csv"
    model["frame"].drop(columns=["query", "label"]).to_csv(no_query, index=False)
    assert main(["rank", "--model", str(model["dir"]), "--input", str(no_query), "--output", str(out)]) == 2
    assert_says(capsys.readouterr().err, "no_query.csv: missing 'query'. Ranking needs the query text")


def test_without_product_id_rows_get_their_input_row_number(model) -> None:
    frame = model["frame"].drop(columns=["product_id", "query_id", "label"])
    ranked = _rank(model, frame)
    assert list(ranked.columns[:2]) == ["query_id", "row"]
    assert sorted(ranked["row"]) == list(range(1, len(frame) + 1))
    for row, title in zip(ranked["row"], ranked["title"], strict=True):
        assert frame.loc[row - 1, "title"] == title  # the row number leads back to the input row
    for _, group in ranked.groupby("query_id", sort=False):
        assert (group["score"].is_monotonic_decreasing
                and list(group["rank"]) == list(range(1, len(group) + 1)))


def test_equal_scores_keep_the_input_order(model) -> None:
    frame = model["frame"].drop(columns=["product_id", "label"])
    first = frame[frame["query"] == frame["query"][0]]
    # the same candidate three times: equal scores
    twins = pd.concat([first.iloc[[0]]] * 3, ignore_index=True)
    ranked = _rank(model, twins)
    assert ranked["row"].tolist() == [1, 2, 3] and ranked["score"].nunique() == 1


def test_labels_are_never_read_and_are_kept(model) -> None:
    frame = model["frame"].assign(label=["?", "", None, "E"] * (len(model["frame"]) // 4))
    ranked = _rank(model, frame)
    assert len(ranked) == len(frame) and set(ranked["label"].dropna()) <= {"?", "", "E"}


def test_map_renames_columns_as_in_data_check(model, tmp_path) -> None:
    shop = model["frame"].drop(columns=["label"]).rename(columns={"query": "search_term", "title": "name"})
    path = tmp_path / "shop.csv"
    shop.to_csv(path, index=False)
    out = tmp_path / "ranked.csv"
    assert main(["rank", "--model", str(model["dir"]), "--input", str(path), "--output", str(out),
                 "--map", "query=search_term", "--map", "title=name"]) == 0
    ranked = pd.read_csv(out, dtype={"product_id": str})
    expected = _rank(model, model["frame"].drop(columns=["label"]))
    np.testing.assert_allclose(_by_product(ranked), _by_product(expected), rtol=1e-5, atol=1e-6)


def test_a_bad_output_name_is_refused_before_the_model_is_loaded(tmp_path, capsys) -> None:
    path = tmp_path / "candidates.csv"
    path.write_text("query,title\nshoe,Red shoe\n")
    code = main(["rank", "--model", str(tmp_path / "no-model-here"), "--input", str(path),
                 "--output", str(tmp_path / "ranked.xlsx")])
    err = capsys.readouterr().err
    assert code == 2
    assert_says(err, "output format", "ranked.xlsx")
    assert_not_says(err, "exported model")


def test_a_query_with_a_single_candidate_is_counted_in_a_warning(model, caplog) -> None:
    frame = model["frame"].drop(columns=["label"])
    lone = frame[frame["query"] == frame["query"].iloc[-1]].head(1)
    with caplog.at_level(logging.WARNING, logger="study.export.scoring"):
        ranked = _rank(model, pd.concat([frame[frame["query"] != lone["query"].iloc[0]], lone]))
    assert any(says(r.getMessage(), "1 of 4 queries have a single candidate") for r in caplog.records)
    assert ranked["rank"].iloc[-1] == 1


@pytest.mark.parametrize("output", ["folder", "folder.csv", "input"])
def test_an_output_that_is_a_folder_or_the_input_is_refused_before_the_model_is_loaded(tmp_path, capsys,
                                                                                      output) -> None:
    """Issue 19, item 9: a folder as --output gave a traceback after all the scoring; the input itself was
    overwritten without a word."""
    path = tmp_path / "candidates.csv"
    path.write_text("query,title\nshoe,Red shoe\n")
    target = path if output == "input" else tmp_path / output
    if output != "input":
        target.mkdir()
    code = main(["rank", "--model", str(tmp_path / "no-model-here"), "--input", str(path),
                 "--output", str(target)])
    err = capsys.readouterr().err
    assert code == 2
    assert_says(err, f"--output {target}", "is the input file" if output == "input" else "is a folder")
    assert_not_says(err, "exported model", "Traceback")
    assert path.read_text() == "query,title\nshoe,Red shoe\n"


def test_the_inputs_own_score_and_rank_columns_are_replaced_with_a_warning(model, caplog) -> None:
    frame = model["frame"].drop(columns=["label"]).assign(score=-1.0, rank=99)
    with caplog.at_level(logging.WARNING, logger="study.export.scoring"):
        ranked = _rank(model, frame)
    assert any(says(r.getMessage(), "candidates.csv: its own column(s) 'score', 'rank' are replaced")
               for r in caplog.records)
    assert (ranked["score"] != -1.0).all() and 99 not in set(ranked["rank"])
    assert list(ranked.columns).count("score") == 1
