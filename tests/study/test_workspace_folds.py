"""``data.n_folds`` / ``data.fold`` through the workspace a worker prepares: validation is fold ``fold`` of a
``n_folds``-way partition of the queries outside the test split, which is the same as without folds."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from study.runtime.request import load_config
from study.workspace import prepare_workspace
from tests.messages import assert_says

CPU = torch.device("cpu")


def queries(ws, split: str) -> set[str]:
    return set(ws.split(split).frame["query_id"])


@pytest.mark.parametrize("n_folds", [2, 3, 5])
def test_each_fold_validates_on_its_own_part_of_the_non_test_queries(study_toml, n_folds) -> None:
    path = study_toml()  # 24 queries
    config = load_config(path)
    plain = prepare_workspace(config, CPU)
    everything = set(plain.pairs.frame["query_id"])
    test = queries(plain, "test")
    rest = everything - test
    assert len(everything) == 24 and len(test) == round(24 * config.data.test_fraction)

    vals = []
    for fold in range(n_folds):
        ws = prepare_workspace(load_config(path, overrides=[f"data.n_folds={n_folds}", f"data.fold={fold}"]),
                               CPU)
        # the test split is unchanged, row for row: a k-fold study is scored on the same held-out pairs
        pd.testing.assert_frame_equal(ws.split("test").frame.sort_values(["query_id", "product_id"])
                                      .reset_index(drop=True),
                                      plain.split("test").frame.sort_values(["query_id", "product_id"])
                                      .reset_index(drop=True))
        val, train = queries(ws, "val"), queries(ws, "train")
        assert val and not val & train and val | train == rest  # train is the other folds
        # every pair of a validation query is in the validation split, none left in train
        assert len(ws.split("val")) == int(plain.pairs.frame["query_id"].isin(val).sum())
        assert ws.summary()["splits"]["val"] == {"pairs": len(ws.split("val")), "queries": len(val)}
        vals.append(val)

    # the validation sets of the folds partition the non-test queries, in parts of nearly equal size
    assert sum(len(v) for v in vals) == len(rest) and set().union(*vals) == rest
    assert max(len(v) for v in vals) - min(len(v) for v in vals) <= 1
    # the same fold again is the same split
    again = prepare_workspace(load_config(path, overrides=[f"data.n_folds={n_folds}", "data.fold=1"]), CPU)
    assert queries(again, "val") == vals[1]


def test_a_fold_outside_n_folds_is_refused_by_name(study_toml) -> None:
    from study.errors import UserInputError

    with pytest.raises(UserInputError) as info:
        load_config(study_toml(), overrides=["data.n_folds=3", "data.fold=3"])
    assert_says(info.value, "data.fold must be in [0, 2], got 3")
