"""The new user's path on a file with its own column names: ``data check``, ``run --map``, ``export``,
``rank`` without ``--map`` (the export remembers the mapping), and the Python API the same way; every
refusal speaks of what the caller used (``--map`` or ``columns=``) and suggests the closest name."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import study
from study.cli import main
from study.errors import UserInputError
from tests.messages import assert_not_says, assert_says

WORDS = ["red", "blue", "green", "shoe", "boot", "sofa", "lamp", "table", "chair", "mug", "cup", "desk"]


def shop_frame(n_queries: int = 24) -> pd.DataFrame:
    """A shop's export: ``search_term, product_name, relevance``, one pair judged twice by two raters."""
    rows = [{"search_term": f"{WORDS[q % 12]} {WORDS[(q * 5 + 3) % 12]} {q}",
             "product_name": f"{WORDS[(q + i) % 12]} {WORDS[(q + 2 * i) % 12]} {i}", "relevance": (6 - i) % 4}
            for q in range(n_queries) for i in range(6)]
    rows.append({**rows[0], "relevance": 1})  # repeated judgment, another label
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> dict:
    tmp = tmp_path_factory.mktemp("remembers")
    path = tmp / "shop.csv"
    shop_frame().to_csv(path, index=False)
    storage = f"sqlite:///{tmp / 's.db'}"
    assert main(["run", "--data", str(path), "--map", "query=search_term", "--map", "title=product_name",
                 "--map", "label=relevance", "--storage", storage, "--n-trials", "1", "--device", "cpu",
                 "--set", "train.epochs=1", "--set", f"model.encoder={str(tiny_bert)!r}",
                 "--set", "model.max_length=24", "--set", f"study.runs_dir={str(tmp / 'runs')!r}",
                 "--set", "study.baselines=false", "--quiet"]) == 0
    out = tmp / "model"
    assert main(["export", "shop", "--storage", storage, "--out", str(out)]) == 0
    return {"dir": out, "path": path, "tmp": tmp}


def test_rank_reads_a_file_shaped_like_the_training_file_without_map(exported, capsys) -> None:
    ranked_path = exported["tmp"] / "ranked.csv"
    capsys.readouterr()
    assert main(["rank", "--model", str(exported["dir"]), "--input", str(exported["path"]),
                 "--output", str(ranked_path)]) == 0
    ranked = pd.read_csv(ranked_path)
    assert {"query", "title", "score", "rank"} <= set(ranked.columns) and len(ranked) == 24 * 6 + 1
    other = exported["tmp"] / "other.csv"
    shop_frame(4).rename(columns={"search_term": "q"}).to_csv(other, index=False)
    assert main(["rank", "--model", str(exported["dir"]), "--input", str(other),
                 "--output", str(ranked_path)]) == 2
    err = capsys.readouterr().err
    assert_says(err, "missing 'query'", "trained on a file with query=search_term", "--map query=search_term")
    assert main(["rank", "--model", str(exported["dir"]), "--input", str(other), "--output", str(ranked_path),
                 "--map", "query=q"]) == 0


def test_the_api_remembers_the_mapping_and_its_errors_never_mention_map(exported) -> None:
    frame = shop_frame(4)
    ranked = study.rank(exported["dir"], frame)
    assert ranked.groupby("query")["rank"].max().eq(7).any() and ranked["score"].notna().all()
    from_file = study.rank(exported["dir"], exported["path"])
    assert len(from_file) == 24 * 6 + 1
    renamed = frame.rename(columns={"search_term": "q", "product_name": "name"})
    mapped = study.rank(exported["dir"], renamed, columns={"query": "q", "title": "name"})
    pd.testing.assert_series_equal(mapped["score"], ranked["score"], rtol=1e-5)
    with pytest.raises(UserInputError) as missing:
        study.rank(exported["dir"], renamed)
    assert_says(str(missing.value), "missing 'query'", "columns={'query': 'search_term'}")
    assert_not_says(str(missing.value), "--map", "`study rank`")
    with pytest.raises(UserInputError) as typo:
        study.rank(exported["dir"], renamed, columns={"query": "qq"})
    assert_says(str(typo.value), "columns={'query': 'qq'}, but the file has no such column",
                "Did you mean 'q'?")
    assert_not_says(str(typo.value), "--map")


def test_the_model_card_says_what_rank_requires_and_what_it_does_without(exported) -> None:
    card = (exported["dir"] / "README.md").read_text()
    assert_says(card, "- required: `query` and at least one of the text fields (`title`)",
                "- optional, with a warning: each text field (`title`); a missing one is scored as empty "
                "text",
                "- never read: `label`", "`query` from `search_term`", "`title` from `product_name`")
    assert_not_says(card, "required columns")


def test_map_typos_are_refused_with_the_closest_column_in_the_flags_own_words(exported, capsys) -> None:
    code = main(["run", "--data", str(exported["path"]), "--map", "query=search_trm", "--storage",
                 f"sqlite:///{exported['tmp'] / 'typo.db'}"])
    err = capsys.readouterr().err
    assert code == 2
    assert_says(err, "--map query=search_trm, but the file has no such column. Did you mean 'search_term'?")
    assert_not_says(err, "data.columns", "Traceback")
    assert main(["data", "check", str(exported["path"]), "--map", "title=product_nme"]) == 2
    assert_says(capsys.readouterr().err, "Did you mean 'product_name'?")
    with pytest.raises(UserInputError) as api:
        study.load_config(data=exported["path"], columns={"query": "search_trm"})
    assert_says(str(api.value), "columns={'query': 'search_trm'}", "Did you mean 'search_term'?")
    assert_not_says(str(api.value), "--map")
    assert not (exported["tmp"] / "typo.db").exists()


def test_a_missing_data_path_is_the_first_thing_said_with_the_closest_file(exported, capsys) -> None:
    typo = exported["path"].with_name("shpo.csv")
    assert main(["run", "--data", str(typo), "--storage", f"sqlite:///{exported['tmp'] / 'typo.db'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert_says(err, f"The data file {typo} does not exist. Did you mean '{exported['path']}'?")


def test_config_key_typos_get_the_closest_key(capsys) -> None:
    assert main(["run", "--set", "train.epoch=3", "--print-config"]) == 2
    assert_says(capsys.readouterr().err, "unknown key(s) ['epoch'] in [train]. Did you mean 'train.epochs'?")
