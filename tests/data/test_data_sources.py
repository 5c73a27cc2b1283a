"""load_dataset dispatches on the config's source; check_file gives the `study data check` summary."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from study.data.config import DataConfig
from study.data.sources import check_file, load_dataset, resolve_source
from study.data.synthetic import generate_catalogue

from study.errors import UserInputError
from tests.messages import assert_says

SHOP = pd.DataFrame({  # three queries: the fewest a study can split into train, validation and test
    "search_term": ["red shoe", "red shoe", "sofa", "sofa", "sofa", "desk lamp", "desk lamp", "desk lamp"],
    "sku": ["1", "2", "3", "4", "1", "5", "6", "2"],
    "name": ["Red shoe", "Blue boot", "Grey couch", "Sofa cover", "Red shoe", "Desk lamp", "Floor lamp",
             "Blue boot"],
    "grade": ["E", "I", "E", "C", "I", "E", "S", "I"],
    "views": [10, 20, None, 5, 3, 8, 1, 2],
})
HOMEDEPOT = ("id,product_uid,product_title,search_term,relevance\n1,7,Hammer,hammer,3\n2,8,Nail,hammer,1\n"
             "3,9,Drill,drill,3\n4,7,Hammer,drill,1.33\n5,10,Saw,saw,2.67\n6,8,Nail,saw,1\n")


def test_synthetic_source_is_the_generator() -> None:
    cfg = DataConfig(n_queries=20, items_per_query=5, seed=4, cold_start_fraction=0.1)
    expected = generate_catalogue(n_queries=20, items_per_query=5, seed=4, cold_start_fraction=0.1)
    pd.testing.assert_frame_equal(load_dataset(cfg).frame, expected.frame)
    assert load_dataset(cfg).fingerprint() == expected.fingerprint()


def test_file_source_maps_columns_labels_and_fields(tmp_path: Path) -> None:
    path = tmp_path / "shop.parquet"
    SHOP.to_parquet(path, index=False)
    cfg = DataConfig.from_dict({
        "source": "file", "path": str(path),
        "columns": {"query": "search_term", "product_id": "sku", "title": "name", "label": "grade"},
        "label_map": {"E": 3, "S": 2, "C": 1, "I": 0}, "feature_fields": ["views"],
    })
    pairs = load_dataset(cfg)
    assert pairs.name == "shop"
    assert pairs.text_fields == ("title",) and pairs.feature_fields == ("views",)
    assert pairs.frame["label"].tolist() == [3.0, 0.0, 3.0, 1.0, 0.0, 3.0, 2.0, 0.0]
    assert pairs.n_queries == 3


def test_file_errors_reach_the_user(tmp_path: Path) -> None:
    path = tmp_path / "shop.csv"
    SHOP.rename(columns={"search_term": "typed", "grade": "verdict"}).to_csv(path, index=False)
    with pytest.raises(UserInputError) as info:
        load_dataset(DataConfig(source="file", path=str(path)))
    assert_says(info.value, "shop.csv: required column(s) 'query', 'label'")


def test_adapter_source(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text(HOMEDEPOT)
    pairs = load_dataset(DataConfig(source="homedepot", path=str(path)))
    assert pairs.name == "homedepot" and pairs.frame["label"].tolist() == [2.0, 0.0, 2.0, 0.33, 1.67, 0.0]


def test_check_file_reports_or_explains(tmp_path: Path) -> None:
    path = tmp_path / "shop.csv"
    SHOP.to_csv(path, index=False)
    report = check_file(path, columns={"query": "search_term", "product_id": "sku", "title": "name",
                                       "label": "grade"})
    assert report.startswith("shop: OK")
    assert_says(report, "pairs 8, queries 3", "missing views: 12.5%")
    # without a map: 'search_term' and 'grade' are read by their names, the sku is an id, not a feature
    report = check_file(path)
    assert_says(report, "text fields: name", "feature fields: views")
    SHOP.rename(columns={"search_term": "typed", "grade": "verdict"}).to_csv(path, index=False)
    with pytest.raises(UserInputError) as info:
        check_file(path)
    assert_says(info.value, "'query', 'label'")
    with pytest.raises(UserInputError) as info:
        check_file(path, n_querys=3)
    assert_says(info.value, "n_queries")


def test_auto_source_detects_adapters_by_file_and_column_names(tmp_path: Path) -> None:
    homedepot = tmp_path / "hd.csv"
    homedepot.write_text(HOMEDEPOT)
    assert resolve_source(DataConfig(path=str(homedepot))) == "homedepot"
    assert load_dataset(DataConfig(path=str(homedepot))).name == "homedepot"
    folder = tmp_path / "hd"
    folder.mkdir()
    (folder / "train.csv").write_text(homedepot.read_text())
    assert resolve_source(DataConfig(path=str(folder))) == "homedepot"
    wands = tmp_path / "wands" / "dataset"
    wands.mkdir(parents=True)
    for name in ("product", "query", "label"):
        (wands / f"{name}.csv").write_text("x\n")
    assert resolve_source(DataConfig(path=str(tmp_path / "wands"))) == "wands"
    esci = tmp_path / "examples.parquet"
    pd.DataFrame({"query": ["a"], "query_id": [1], "product_id": ["p"], "esci_label": ["E"],
                  "product_locale": ["us"]}).to_parquet(esci, index=False)
    assert resolve_source(DataConfig(path=str(esci))) == "esci"
    own = tmp_path / "shop.parquet"
    SHOP.to_parquet(own, index=False)
    assert resolve_source(DataConfig(path=str(own))) == "file"
    assert resolve_source(DataConfig(path=str(homedepot), source="file")) == "file"  # --source forces
    assert resolve_source(DataConfig()) == "synthetic"


def test_a_folder_in_no_known_format_is_explained(tmp_path: Path) -> None:
    with pytest.raises(UserInputError) as info:
        load_dataset(DataConfig(path=str(tmp_path)))
    assert_says(info.value, "WANDS")
