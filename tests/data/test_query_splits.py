"""Splits by query: disjoint, covering, seeded, non-empty; k-fold with a fixed test set."""

from __future__ import annotations

import pandas as pd
import pytest
from study.data.config import DataConfig
from study.data.schema import JudgedPairs
from study.data.splits import Splits, kfold_by_query, make_splits, split_by_query
from study.data.synthetic import generate_catalogue

from study.errors import UserInputError
from tests.messages import assert_not_says, assert_says


@pytest.fixture(scope="module")
def pairs() -> JudgedPairs:
    return generate_catalogue(n_queries=50, items_per_query=4, seed=3)


def _queries(split: JudgedPairs) -> set[str]:
    return set(split.frame["query_id"])


def _check_partition(pairs: JudgedPairs, splits: Splits) -> None:
    train, val, test = _queries(splits.train), _queries(splits.val), _queries(splits.test)
    assert train and val and test
    assert not train & val and not train & test and not val & test
    assert train | val | test == _queries(pairs)
    assert len(splits.train) + len(splits.val) + len(splits.test) == len(pairs)
    for split in (splits.train, splits.val, splits.test):
        # Whole queries move together: each query keeps all its judged items.
        sizes = split.frame.groupby("query_id").size()
        assert (sizes == pairs.frame.groupby("query_id").size()[sizes.index]).all()
        assert split.text_fields == pairs.text_fields and split.feature_fields == pairs.feature_fields


def test_split_is_a_partition_by_query(pairs: JudgedPairs) -> None:
    splits = split_by_query(pairs, val_fraction=0.2, test_fraction=0.2, seed=0)
    _check_partition(pairs, splits)
    assert (splits.train.n_queries, splits.val.n_queries, splits.test.n_queries) == (30, 10, 10)


def test_split_is_seeded_and_independent_of_row_order(pairs: JudgedPairs) -> None:
    a = split_by_query(pairs, val_fraction=0.2, test_fraction=0.2, seed=0)
    b = split_by_query(pairs, val_fraction=0.2, test_fraction=0.2, seed=0)
    c = split_by_query(pairs, val_fraction=0.2, test_fraction=0.2, seed=1)
    assert _queries(a.test) == _queries(b.test) and _queries(a.val) == _queries(b.val)
    assert _queries(a.test) != _queries(c.test)
    shuffled = JudgedPairs(pairs.frame.sample(frac=1.0, random_state=0).reset_index(drop=True),
                           pairs.text_fields, pairs.feature_fields, pairs.name)
    d = split_by_query(shuffled, val_fraction=0.2, test_fraction=0.2, seed=0)
    assert _queries(a.test) == _queries(d.test) and _queries(a.train) == _queries(d.train)


def test_tiny_fractions_still_give_every_side_a_query(pairs: JudgedPairs) -> None:
    splits = split_by_query(pairs, val_fraction=0.01, test_fraction=0.01, seed=0)
    _check_partition(pairs, splits)
    assert splits.val.n_queries == 1 and splits.test.n_queries == 1


def test_too_few_queries_is_a_clear_error() -> None:
    frame = pd.DataFrame({"query_id": ["a", "a", "b", "b"], "query": ["x", "x", "y", "y"],
                          "product_id": ["1", "2", "1", "2"], "title": ["t"] * 4,
                          "label": [1.0, 0.0, 1.0, 0.0]})
    two = JudgedPairs(frame, ("title",), (), "tiny.csv")
    with pytest.raises(UserInputError) as info:
        split_by_query(two, val_fraction=0.2, test_fraction=0.2, seed=0)
    assert_says(info.value, "tiny.csv: 2 queries are too few")


def test_kfold_keeps_the_test_set_and_rotates_validation(pairs: JudgedPairs) -> None:
    folds = [kfold_by_query(pairs, n_folds=4, fold=k, test_fraction=0.2, seed=5) for k in range(4)]
    plain = split_by_query(pairs, val_fraction=0.2, test_fraction=0.2, seed=5)
    for splits in folds:
        _check_partition(pairs, splits)
        assert _queries(splits.test) == _queries(plain.test)  # same held-out queries as the plain split
    vals = [_queries(s.val) for s in folds]
    assert set().union(*vals) == _queries(pairs) - _queries(plain.test)
    assert sum(len(v) for v in vals) == len(set().union(*vals))  # validation folds are disjoint
    assert max(map(len, vals)) - min(map(len, vals)) <= 1


def test_kfold_errors(pairs: JudgedPairs) -> None:
    with pytest.raises(ValueError, match="fold"):
        kfold_by_query(pairs, n_folds=3, fold=3, test_fraction=0.2, seed=0)
    with pytest.raises(ValueError, match="n_folds"):
        kfold_by_query(pairs, n_folds=1, fold=0, test_fraction=0.2, seed=0)
    with pytest.raises(UserInputError) as info:
        kfold_by_query(pairs, n_folds=60, fold=0, test_fraction=0.2, seed=0)
    assert_says(info.value, "too few for 60 folds")


def test_make_splits_follows_the_config(pairs: JudgedPairs) -> None:
    plain = make_splits(pairs, DataConfig(seed=2))
    assert _queries(plain.test) == _queries(split_by_query(pairs, val_fraction=0.2, test_fraction=0.2,
                                                           seed=2).test)
    folded = make_splits(pairs, DataConfig(seed=2, n_folds=5, fold=1))
    assert _queries(folded.val) == _queries(kfold_by_query(pairs, n_folds=5, fold=1, test_fraction=0.2,
                                                           seed=2).val)


def test_a_split_too_small_to_compare_trials_is_pointed_out(tmp_path, caplog) -> None:
    import logging

    from study.data.config import DataConfig
    from study.data.sources import load_dataset

    rows = ["query,title,label"] + [f"q{q},item {q} {i},{i % 3}" for q in range(10) for i in range(4)]
    (tmp_path / "toy.csv").write_text("\n".join(rows) + "\n")
    with caplog.at_level(logging.WARNING, logger="study.data.splits"):
        load_dataset(DataConfig.from_dict({"source": "auto", "path": str(tmp_path / "toy.csv")}))
    assert_says(caplog.text, "only 2 validation and 2 test queries can be ranked")
    caplog.clear()
    rows = ["query,title,label"] + [f"q{q},item {q} {i},{i % 3}" for q in range(120) for i in range(4)]
    (tmp_path / "big.csv").write_text("\n".join(rows) + "\n")
    with caplog.at_level(logging.WARNING, logger="study.data.splits"):
        load_dataset(DataConfig.from_dict({"source": "auto", "path": str(tmp_path / "big.csv")}))
    assert_not_says(caplog.text, "can be ranked")
