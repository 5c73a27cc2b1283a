"""DataConfig: defaults, unknown keys refused by name, lists become tuples, bad values named."""

from __future__ import annotations

import dataclasses

import pytest
from study.data.config import DataConfig

from study.errors import UserInputError
from tests.messages import assert_says


def test_defaults_are_the_builtin_catalogue() -> None:
    cfg = DataConfig()
    assert cfg.source == "auto" and cfg.builtin  # auto without a path is the built-in catalogue
    assert (cfg.n_queries, cfg.items_per_query, cfg.cold_start_fraction) == (300, 10, 0.2)
    assert (cfg.val_fraction, cfg.test_fraction, cfg.n_folds, cfg.fold) == (0.2, 0.2, 0, 0)
    assert cfg.columns == {} and cfg.label_map == {} and cfg.text_fields == ()


def test_from_dict_rejects_unknown_key_naming_it_and_listing_valid_ones() -> None:
    with pytest.raises(UserInputError) as info:
        DataConfig.from_dict({"source": "synthetic", "n_querys": 10})
    assert_says(info.value, "'n_querys'", "n_queries", "label_map")


def test_from_dict_converts_lists_to_tuples_and_keeps_mappings() -> None:
    cfg = DataConfig.from_dict({
        "source": "file", "path": "x.csv", "text_fields": ["title", "brand"], "feature_fields": ["price"],
        "columns": {"query": "search_term"}, "label_map": {"E": 3, "S": 2, "C": 1, "I": 0},
    })
    assert cfg.text_fields == ("title", "brand")
    assert cfg.feature_fields == ("price",)
    assert cfg.columns == {"query": "search_term"}
    assert cfg.label_map == {"E": 3.0, "S": 2.0, "C": 1.0, "I": 0.0}
    assert all(isinstance(v, float) for v in cfg.label_map.values())


def test_to_dict_roundtrips() -> None:
    cfg = DataConfig.from_dict({"source": "file", "path": "x.csv", "text_fields": ["title"], "n_folds": 5,
                                "fold": 4, "label_map": {"E": 3}})
    assert DataConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"source": "csv"}, "'csv'"),
        ({"source": "file"}, "data.path"),
        ({"format": "xlsx"}, "'xlsx'"),
        ({"val_fraction": 0.0}, "val_fraction"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "test_fraction"),
        ({"n_folds": 1}, "n_folds"),
        ({"n_folds": 5, "fold": 5}, "fold"),
        ({"items_per_query": 2}, "items_per_query"),
        ({"cold_start_fraction": 1.5}, "cold_start_fraction"),
        ({"label_map": {"E": "high"}}, "label_map['E']"),
        ({"source": "synthetic", "path": "pairs.csv"}, "data.path = 'pairs.csv'"),
    ],
)
def test_bad_values_are_named(values: dict, named: str) -> None:
    with pytest.raises(UserInputError) as info:
        DataConfig.from_dict(values)
    assert_says(info.value, named)


def test_a_single_field_name_is_one_field_not_its_letters() -> None:
    # TOML lets a user write text_fields = "title"; a copy with a changed field (how --set and trial params
    # make configs) is normalised and checked the same way
    assert DataConfig.from_dict({"text_fields": "title", "feature_fields": "price"}).text_fields == ("title",)
    assert (DataConfig.from_dict({"text_fields": "title", "feature_fields": "price"}).feature_fields
            == ("price",))
    assert dataclasses.replace(DataConfig(), text_fields="brand").text_fields == ("brand",)
    with pytest.raises(UserInputError) as info:
        dataclasses.replace(DataConfig(), n_folds=1)
    assert_says(info.value, "data.n_folds")


def test_a_path_means_a_file_unless_the_source_says_otherwise() -> None:
    assert not DataConfig(path="pairs.csv").builtin
    assert DataConfig(source="synthetic").builtin
    assert not DataConfig(source="file", path="pairs.csv").builtin
    with pytest.raises(UserInputError) as info:
        DataConfig(source="synthetic", path="pairs.csv")
    assert_says(info.value, "synthetic")
